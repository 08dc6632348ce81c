"""Switching the active model version, and keeping each embedder's collections complete.

Vectors of different embedders cannot be mixed, so every document-side embedder (the base model or a
full fine-tune) has its own cards and chunks collections. Activating a version first fills its
collections (re-embedding the catalog from the texts the workspace keeps), then flips ``active.json``;
a failure on the way leaves the previous version active and its collections untouched. Adapters embed
only questions, so they reuse the base model's collections.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from agentic_router.indexes.build import document_folder
from agentic_router.indexes.encoders.embeddings import embed_queries, embed_texts
from agentic_router.indexes.errors import CatalogError
from agentic_router.router.versions.registry import BASE
from agentic_router.router.workspace import RouterView, Workspace

if TYPE_CHECKING:
    from llama_index.core.schema import TextNode

logger = logging.getLogger(__name__)


def sync_collections(view: RouterView, progress: bool = False) -> dict[str, int]:
    """Embed whatever tool cards or document chunks this view's collections lack; drop stale chunks."""
    embedder, questions = view.embedder, view.query_embedder
    return view.catalog.sync(lambda texts: embed_texts(embedder, texts, show_progress=progress),
                             expected_chunks(view.workspace), lambda texts: embed_queries(questions, texts))


def expected_chunks(workspace: Workspace) -> dict[str, "TextNode"]:
    """Every chunk of every catalog document, read from the per-document stores the workspace keeps."""
    from llama_index.core.storage.docstore import SimpleDocumentStore

    nodes: dict[str, Any] = {}
    for doc in workspace.db.list_documents():
        try:
            folder = document_folder(workspace.config, workspace.db, doc)
        except CatalogError as exc:  # its stored indexes are unreadable: its vectors are kept as they are
            logger.warning("%s; its chunks cannot be re-embedded", exc)
            continue
        if folder is None:
            continue
        if not folder.is_dir():
            logger.warning("document store %s is missing; its chunks cannot be re-embedded", folder)
            continue
        nodes.update(SimpleDocumentStore.from_persist_dir(str(folder)).docs)
    return nodes


def activate(workspace: Workspace, name: str, progress: bool = False) -> dict[str, Any]:
    """Make ``name`` (or ``base``) the active version; returns what was done."""
    registry = workspace.registry
    if name == BASE:
        done = sync_collections(workspace.view(None, None), progress)
        return {"active": registry.set_active(embedder=None, reranker=None), **done}
    version = registry.get(name)
    if version.method == "cross-encoder":
        workspace.view(reranker=name).reranker  # load it now: a broken checkpoint must fail before the switch  # noqa: B018
        return {"active": registry.set_active(reranker=name)}
    target = workspace.view(embedder=name, reranker=None)
    target.query_embedder  # noqa: B018 - load (and validate) the model before anything changes
    done = sync_collections(target, progress)
    return {"active": registry.set_active(embedder=name), **done}
