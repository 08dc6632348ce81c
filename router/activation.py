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

from agentic_router.indexes.embeddings import embed_texts
from agentic_router.router.registry import BASE

if TYPE_CHECKING:
    from agentic_router.router.app import AgenticRouter

logger = logging.getLogger(__name__)


def sync_collections(router: "AgenticRouter", progress: bool = False) -> dict[str, int]:
    """Embed whatever tool cards or document chunks this router's collections lack; drop stale chunks."""
    catalog = router.catalog
    missing = catalog.missing_cards()
    if missing:
        catalog.upsert_cards(missing, embed_texts(router.embedder, [s.card() for s in missing], show_progress=progress))
    expected = _expected_chunks(router)
    have = set(router.chunks.get(include=[])["ids"]) if router.chunks.count() else set()
    todo = [node for node_id, node in expected.items() if node_id not in have]
    stale = sorted(have - set(expected))
    if todo:
        from llama_index.core.schema import MetadataMode
        from llama_index.vector_stores.chroma import ChromaVectorStore

        vectors = embed_texts(router.embedder, [n.get_content(MetadataMode.EMBED) for n in todo], show_progress=progress)
        for node, vec in zip(todo, vectors):
            node.embedding = vec
        store = ChromaVectorStore(chroma_collection=router.chunks)
        for start in range(0, len(todo), catalog.max_batch):
            store.add(todo[start : start + catalog.max_batch])
    for start in range(0, len(stale), catalog.max_batch):
        router.chunks.delete(ids=stale[start : start + catalog.max_batch])
    if missing or todo or stale:
        catalog.bump_version()
    return {"cards_embedded": len(missing), "chunks_embedded": len(todo), "chunks_removed": len(stale)}


def _expected_chunks(router: "AgenticRouter") -> dict[str, Any]:
    """Every chunk of every catalog document, read from the per-document stores the workspace keeps."""
    from llama_index.core.storage.docstore import SimpleDocumentStore

    nodes: dict[str, Any] = {}
    rows = router.catalog._db.execute("SELECT storage FROM documents WHERE storage IS NOT NULL").fetchall()  # noqa: SLF001
    for (storage,) in rows:
        folder = router.config.docs_dir / storage
        if not folder.is_dir():
            logger.warning("document store %s is missing; its chunks cannot be re-embedded", folder)
            continue
        for node_id, node in SimpleDocumentStore.from_persist_dir(str(folder)).docs.items():
            nodes[node_id] = node
    return nodes


def activate(router: "AgenticRouter", name: str, progress: bool = False) -> dict[str, Any]:
    """Make ``name`` (or ``base``) the active version; returns what was done."""
    from agentic_router.router.app import AgenticRouter

    registry = router.registry
    if name == BASE:
        target = AgenticRouter(router.config, llm=None, embedder_version=None, reranker_version=None)
        done = sync_collections(target, progress)
        return {"active": registry.set_active(embedder=None, reranker=None), **done}
    version = registry.get(name)
    if version.method == "cross-encoder":
        target = AgenticRouter(router.config, llm=None, embedder_version=router.embedder_version, reranker_version=name)
        target.reranker  # load it now: a broken checkpoint must fail before the switch  # noqa: B018
        return {"active": registry.set_active(reranker=name)}
    target = AgenticRouter(router.config, llm=None, embedder_version=name, reranker_version=None)
    target.query_embedder  # noqa: B018 - load (and validate) the model before anything changes
    done = sync_collections(target, progress)
    return {"active": registry.set_active(embedder=name), **done}
