"""Documents -> chunks -> the three per-document indexes -> three tools, committed atomically.

Chunk vectors of every document live in *one* Chroma collection with ``doc_id`` metadata (a collection per
document would not scale to a million documents); each document's VectorStoreIndex is a view of that
collection filtered on its ``doc_id``. The Summary and Keyword indexes are persisted per document in the
workspace, so a query loads only the document it needs.

Atomicity: everything of a document is first written under names nothing points to yet (new chunk ids, a
temporary storage folder); the SQLite commit in the catalog is what makes it visible. A failure before
that removes what was written; old content (on ``replace``) is removed only after the commit.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from agentic_router.indexes.config import RouterConfig
from agentic_router.indexes.encoders.embeddings import embed_texts, token_counter
from agentic_router.indexes.errors import CatalogError
from agentic_router.indexes.lexical.cache import default_stopwords
from agentic_router.indexes.schema import IngestReport, ToolSpec, stable_hash
from agentic_router.indexes.sources.describe import (
    describe_document,
    extractive_summary,
    llm_summary,
    salient_keywords,
    tool_names,
)
from agentic_router.indexes.sources.documents import SourceDocument, slugify
from agentic_router.indexes.storage.catalog import Catalog
from agentic_router.indexes.storage.catalog_db import CatalogDB
from agentic_router.indexes.storage.docstore import HASH_FILE, DocStore
from agentic_router.indexes.storage.postgres import PostgresCatalogDB

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.indices.keyword_table.base import BaseKeywordTableIndex
    from llama_index.core.llms import LLM
    from llama_index.core.schema import TextNode

logger = logging.getLogger(__name__)
GROUP_SIZE = 16
LEAD_CHARS = 2000  # kept per document for the title+lead baseline and for previews


@dataclass
class _Prepared:
    doc: SourceDocument
    nodes: list["TextNode"]
    specs: list[ToolSpec]
    replace: bool


def storage_name(doc_id: str) -> str:
    return f"{slugify(doc_id, 40) or 'doc'}-{stable_hash(doc_id, length=10)}"


class DocumentIndexer:
    """Builds and commits the indexes and tools of documents."""

    def __init__(
        self,
        config: RouterConfig,
        embedder: "BaseEmbedding",
        catalog: Catalog,
        llm: "LLM | None" = None,
        llm_summaries: bool = False,
    ) -> None:
        from llama_index.core.node_parser import SentenceSplitter

        self.config = config
        self.embedder = embedder
        self.catalog = catalog
        self.llm = llm
        self.llm_summaries = llm_summaries and llm is not None
        self.splitter = SentenceSplitter(
            chunk_size=config.chunk_size, chunk_overlap=config.chunk_overlap, tokenizer=token_counter(embedder)
        )
        self._stopwords = set(default_stopwords())

    # ---- public ------------------------------------------------------------------------------------
    def ingest(self, docs: Sequence[SourceDocument], replace: bool = False, progress: bool = False) -> IngestReport:
        """Index ``docs``; unchanged ones are skipped without embedding anything."""
        report = IngestReport()
        todo: list[tuple[SourceDocument, bool]] = []
        for doc in docs:  # validate the whole batch before writing anything
            known = self.catalog.get_document(doc.doc_id)
            if known is None:
                todo.append((doc, False))
            elif known["content_hash"] == doc.content_hash:
                report.unchanged.append(doc.doc_id)
            elif not replace:
                raise CatalogError(
                    f"doc_id {doc.doc_id!r} is already ingested with different content; "
                    "re-run with --replace to update it"
                )
            else:
                todo.append((doc, True))
        bar = _progress(len(todo), progress)
        for start in range(0, len(todo), GROUP_SIZE):
            group = [self._prepare(doc, rep) for doc, rep in todo[start : start + GROUP_SIZE]]
            self._embed_chunks(group)
            card_vectors = embed_texts(self.embedder, [s.card() for p in group for s in p.specs])
            for i, prepared in enumerate(group):
                self._commit(prepared, card_vectors[3 * i : 3 * i + 3])
                (report.replaced if prepared.replace else report.added).append(prepared.doc.doc_id)
                report.tools += len(prepared.specs)
                report.chunks += len(prepared.nodes)
                bar.update(1)
        bar.close()
        return report

    def chunk(self, doc: SourceDocument) -> list["TextNode"]:
        from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

        texts = self.splitter.split_text_metadata_aware(doc.text, metadata_str=f"title: {doc.title}")
        nodes = []
        for i, text in enumerate(t for t in texts if t.strip()):
            node = TextNode(
                id_=stable_hash(doc.doc_id, doc.content_hash, i, length=32),
                text=text,
                metadata={"doc_id": doc.doc_id, "title": doc.title, "chunk": i},
                excluded_embed_metadata_keys=["doc_id", "chunk"],
                excluded_llm_metadata_keys=["doc_id", "chunk"],
                # The source relationship makes LlamaIndex store ``doc_id`` = our doc_id in Chroma metadata
                # (it overwrites that key with the node's ref_doc_id).
                relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc.doc_id)},
            )
            nodes.append(node)
        return nodes

    # ---- steps -------------------------------------------------------------------------------------
    def _prepare(self, doc: SourceDocument, replace: bool) -> _Prepared:
        nodes = self.chunk(doc)
        summary = (llm_summary(self.llm, doc) if self.llm_summaries and self.llm else None) or extractive_summary(
            doc.text, doc.title, self.config.summary_sentences
        )
        keywords = salient_keywords(doc.text, self.config.keywords_per_tool, self._stopwords)
        names = tool_names(doc, lambda name: self.catalog.name_taken(name, by_other_than=doc.doc_id))
        return _Prepared(doc, nodes, describe_document(doc, names, summary, keywords), replace)

    def _embed_chunks(self, group: list[_Prepared]) -> None:
        from llama_index.core.schema import MetadataMode

        nodes = [n for p in group for n in p.nodes]
        vectors = embed_texts(self.embedder, [n.get_content(MetadataMode.EMBED) for n in nodes])
        for node, vec in zip(nodes, vectors):
            node.embedding = vec

    def _commit(self, p: _Prepared, card_vectors: list[list[float]]) -> None:
        """Persist the document's own indexes under a temporary name; the catalog commit publishes them."""
        doc_id = p.doc.doc_id
        final_dir = self.config.docs_dir / storage_name(doc_id)
        tmp_dir = final_dir.with_name(final_dir.name + ".tmp")
        old_dir = final_dir.with_name(final_dir.name + ".old")

        def publish() -> None:  # runs inside the catalog transaction
            if final_dir.exists():
                final_dir.rename(old_dir)
            tmp_dir.rename(final_dir)

        row = {"doc_id": doc_id, "title": p.doc.title, "content_hash": p.doc.content_hash, "source": p.doc.source,
               "n_chunks": len(p.nodes), "storage": final_dir.name, "lead": p.doc.text[:LEAD_CHARS]}
        docstore = shared_docstore(self.catalog.db)
        try:
            self._persist_doc_indexes(p.nodes, tmp_dir)
            (tmp_dir / HASH_FILE).write_text(p.doc.content_hash, encoding="utf-8")
            if docstore is not None:  # other replicas unpack it from the server once the commit names it
                docstore.put(doc_id, p.doc.content_hash, tmp_dir)
            self.catalog.commit_document(row, p.specs, card_vectors, p.nodes, p.replace, publish)
        except BaseException:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            if old_dir.exists() and not final_dir.exists():
                old_dir.rename(final_dir)
            if docstore is not None:
                committed = self.catalog.get_document(doc_id)
                docstore.drop(doc_id, keep=committed["content_hash"] if committed else None)
            raise
        shutil.rmtree(old_dir, ignore_errors=True)
        if docstore is not None:
            docstore.drop(doc_id, keep=p.doc.content_hash)

    def _persist_doc_indexes(self, nodes: list["TextNode"], target: Path) -> None:
        """Summary + keyword index of one document, persisted to ``target`` (a fresh folder)."""
        from llama_index.core import SimpleKeywordTableIndex, StorageContext, SummaryIndex
        from llama_index.core.indices.keyword_table import KeywordTableIndex

        shutil.rmtree(target, ignore_errors=True)
        plain = [n.model_copy(update={"embedding": None}) for n in nodes]
        ctx = StorageContext.from_defaults()
        ctx.docstore.add_documents(plain)
        summary = SummaryIndex(plain, storage_context=ctx)
        summary.set_index_id("summary")
        keyword: BaseKeywordTableIndex
        if self.llm_summaries and self.llm is not None:
            keyword = KeywordTableIndex(plain, storage_context=ctx, llm=self.llm, show_progress=False)
        else:
            # The simple (regex) table never calls its LLM; a MockLLM keeps LlamaIndex from resolving OpenAI.
            from llama_index.core.llms import MockLLM

            keyword = SimpleKeywordTableIndex(
                plain, storage_context=ctx, llm=MockLLM(), max_keywords_per_chunk=64, show_progress=False
            )
        keyword.set_index_id("keyword")
        target.parent.mkdir(parents=True, exist_ok=True)
        ctx.persist(persist_dir=str(target))


def shared_docstore(db: CatalogDB) -> DocStore | None:
    """Where documents' persisted indexes are shared with other replicas, if the catalog is shared."""
    if not isinstance(db, PostgresCatalogDB):
        return None
    store = getattr(db, "docstore", None)
    if store is None:
        store = db.docstore = DocStore(db)  # type: ignore[attr-defined]
    return store


def document_folder(config: RouterConfig, db: CatalogDB, doc: dict[str, Any]) -> Path | None:
    """The folder of a document's persisted indexes; with a shared catalog it is unpacked from the shared
    state first when this replica lacks it or holds another content of the document."""
    if not doc.get("storage"):
        return None
    folder = config.docs_dir / doc["storage"]
    docstore = shared_docstore(db)
    if docstore is not None:
        docstore.ensure(doc["doc_id"], doc["content_hash"], folder)
    return folder


def delete_document(config: RouterConfig, catalog: Catalog, doc_id: str) -> list[str]:
    """Remove a document with its three tools, its chunks and its persisted indexes, all or none.

    The folder is renamed aside inside the catalog transaction and removed after the commit; if the
    transaction fails it is renamed back, so the document stays whole. Returns the removed tool names."""
    doc = catalog.get_document(doc_id)
    if doc is None:
        raise CatalogError(f"unknown document {doc_id!r}")
    folder = config.docs_dir / doc["storage"] if doc.get("storage") else None
    aside = folder.with_name(folder.name + ".deleted") if folder is not None else None

    def unpublish() -> None:  # runs inside the catalog transaction
        if folder is not None and aside is not None and folder.exists():
            shutil.rmtree(aside, ignore_errors=True)
            folder.rename(aside)

    try:
        names = catalog.delete_document(doc_id, unpublish)
        docstore = shared_docstore(catalog.db)
        if docstore is not None:
            docstore.drop(doc_id)
    except BaseException:
        if aside is not None and folder is not None and aside.exists() and not folder.exists() \
                and catalog.get_document(doc_id) is not None:
            aside.rename(folder)  # the rows are still there: so is the document's folder
        raise
    finally:
        if aside is not None and catalog.get_document(doc_id) is None:
            shutil.rmtree(aside, ignore_errors=True)
    return names


def _progress(total: int, enabled: bool):  # noqa: ANN202 - tqdm type
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="ingest", unit="doc", disable=not enabled or total < 2)
