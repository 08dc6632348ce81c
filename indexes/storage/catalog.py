"""The catalog: which tools and documents exist (SQLite, the source of truth) and their vectors (Chroma).

This module is the only writer of both, and the only reader of their raw form: ingest, external tools,
removals and re-embeddings all go through ``Catalog``; the retriever asks it for nearest neighbours.

- ``CatalogDB`` (``indexes.storage.catalog_db``, one per workspace, SQLite or, shared by replicas, PostgreSQL):
  documents, tools, recorded requests and a version counter that derived indexes (BM25) follow.
- ``Catalog``: those rows seen through one embedder's vectors: a ``cards`` collection (one vector per tool
  card), a ``chunks`` collection (every document chunk, with ``doc_id`` metadata) and the usage memory
  (``indexes.storage.memory``: recorded requests, by the question embedder). Vectors of different embedders cannot be
  mixed, so each embedder has its own collections, named after it; another embedder's view of the same
  rows is another ``Catalog`` over the same ``CatalogDB`` (``Workspace.catalog``), which copies nothing.

Write order: vectors first, then the commit of the rows that makes them visible, both inside
``CatalogDB.exclusive`` (one writer at a time, across replicas when the rows are shared). An orphan vector
left by a crash is harmless (every hit is checked against the rows); the next writer drops orphan cards when
the counts disagree (``_repair_cards``), and ``sync`` (activation, ``AgenticRouter.repair``) makes every
collection match the rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from agentic_router.indexes.errors import CatalogError
from agentic_router.indexes.schema import IngestReport, ToolSpec
from agentic_router.indexes.storage.card_matrix import CardMatrix, CardMatrixCache
from agentic_router.indexes.storage.catalog_db import CatalogDB
from agentic_router.indexes.storage.chroma import collection, delete_ids, iter_collection, upsert
from agentic_router.indexes.storage.memory import UsageMemory

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from llama_index.core.schema import TextNode
    from llama_index.vector_stores.chroma import ChromaVectorStore

SPEC_CACHE_MAX = 100_000  # tool rows kept between routes of one catalog version


class Catalog:
    """Catalog rows seen through one embedder's vectors; the one reader and writer of both."""

    def __init__(self, db: CatalogDB, client: "ClientAPI", tag: str, query_tag: str | None = None) -> None:
        self.db = db
        self.client = client
        self.tag = tag
        self.query_tag = query_tag or tag
        self.cards: "Collection" = collection(client, f"tools__{tag}")
        self.chunks: "Collection" = collection(client, f"chunks__{tag}")
        self.max_batch = client.get_max_batch_size()
        self.usage = UsageMemory(db, client, self.query_tag, self.max_batch)
        self._card_matrix = CardMatrixCache()
        self._specs: tuple[int, dict[str, ToolSpec | None]] = (-1, {})  # (version, name -> row or None)
        self._counts: tuple[int, int, int] | None = None  # (version, tools, chunks) for routes

    def routing_counts(self, version: int | None = None) -> tuple[int, int, int]:
        """``(version, tools, chunks)``, counted once per catalog version: every route needs them, and
        counting rows is a table scan that grows with the catalog. ``version``: one the caller just read."""
        version = self.db.version() if version is None else version
        counts = self._counts
        if counts is None or counts[0] != version:
            counts = self._counts = (version, self.db.count_tools(), self.chunks.count())
        return counts

    def card_matrix(self, version: int | None = None) -> CardMatrix | None:
        """The card vectors in process (None above ``CARD_EXACT_MAX`` cards, where Chroma searches)."""
        version, n_tools, _ = self.routing_counts(version)
        return self._card_matrix.get(self.cards, version, n_tools, self.db.changes_since)

    # ---- rows (delegated, so callers hold one object) ----------------------------------------------
    def version(self) -> int:
        return self.db.version()

    def get_document(self, doc_id: str) -> dict[str, Any] | None:
        return self.db.get_document(doc_id)

    def document_leads(self) -> list[tuple[str, str, str]]:
        return self.db.document_leads()

    def get_tool(self, name: str) -> ToolSpec | None:
        return self.db.get_tools([name]).get(name)

    def get_tools(self, names: Sequence[str], version: int | None = None) -> dict[str, ToolSpec]:
        """The tools called ``names`` that exist. With ``version`` (one the caller just read: a route), rows
        are kept in process until the version moves: a route asks for ~50 candidates, and reading and parsing
        their rows was a third of ranking at 10k tools."""
        if version is None:
            return self.db.get_tools(names)
        cached = self._specs
        if cached[0] != version or len(cached[1]) > SPEC_CACHE_MAX:
            cached = self._specs = (version, {})
        specs = cached[1]
        missing = [name for name in names if name not in specs]
        if missing:
            found = self.db.get_tools(missing)
            specs.update((name, found.get(name)) for name in missing)
        return {name: spec for name in names if (spec := specs.get(name)) is not None}

    def tools_for_documents(self, doc_ids: Sequence[str]) -> dict[str, list[ToolSpec]]:
        return self.db.tools_for_documents(doc_ids)

    def list_tools(self, kind: str | None = None) -> list[ToolSpec]:
        return self.db.list_tools(kind)

    def count_tools(self) -> int:
        return self.db.count_tools()

    def list_documents(self) -> list[dict[str, Any]]:
        return self.db.list_documents()

    def recorded_requests(self) -> list[tuple[str, str, str]]:
        """``(id, request, tool)`` of every recorded request (feedback and router logs), oldest first."""
        return self.db.feedback()

    def chunk_store(self) -> "ChromaVectorStore":
        """Every document's chunks as a LlamaIndex vector store (what a document's Vector tool searches)."""
        from llama_index.vector_stores.chroma import ChromaVectorStore

        return ChromaVectorStore(chroma_collection=self.chunks)

    # ---- tool sources: MCP servers and OpenAPI documents ----------------------------------------------
    def sources(self) -> list[dict[str, Any]]:
        """How to reach each registered source (``mcp_servers`` rows; OpenAPI ones have transport openapi)."""
        return self.db.mcp_servers()

    def source_tools(self, name: str) -> dict[str, str]:
        """The catalog tools of source ``name``: catalog name -> its name (or request plan) at the source."""
        return self.db.mcp_tools(name)

    def source_of(self, tool: str) -> tuple[str, str] | None:
        """``(source, remote)`` of a tool that lives at a source, None for any other tool."""
        return self.db.mcp_tool(tool)

    def count_documents(self) -> int:
        return self.db.count_documents()

    def name_taken(self, name: str, by_other_than: str | None) -> bool:
        return self.db.name_taken(name, by_other_than)

    # ---- vectors: reading --------------------------------------------------------------------------
    def nearest_cards(self, qvec: np.ndarray, n: int, version: int | None = None) -> dict[str, float]:
        """Cosine similarity of the ``n`` tool cards nearest to ``qvec`` (``version``: the catalog version
        the caller read, so a route reads it once)."""
        return self.nearest_cards_many(np.asarray(qvec, dtype=np.float32).reshape(1, -1), n, version)[0]

    def nearest_cards_many(self, qvecs: np.ndarray, n: int, version: int | None = None) -> list[dict[str, float]]:
        """``nearest_cards`` of several questions in one matrix product (or one Chroma query)."""
        if n <= 0 or not len(qvecs):
            return [{} for _ in range(len(qvecs))]
        exact = self.card_matrix(version)
        if exact is not None:
            return exact.nearest_many(qvecs, n)
        res = self.cards.query(query_embeddings=np.asarray(qvecs, dtype=np.float32).tolist(), n_results=n,
                               include=["distances"])
        return [{name: 1.0 - float(d) for name, d in zip(ids, dists)} for ids, dists in zip(res["ids"], res["distances"])]

    def card_similarity(self, qvec: np.ndarray, names: Sequence[str], version: int | None = None
                        ) -> dict[str, float]:
        """Cosine similarity of ``qvec`` to the cards of ``names`` (vectors are normalised)."""
        exact = self.card_matrix(version)
        if exact is not None:
            return exact.similarity(qvec, names)
        vectors = self.card_vectors(names)
        if not vectors:
            return {}
        mat = np.asarray(list(vectors.values()), dtype=np.float32)
        return dict(zip(vectors, (mat @ qvec).tolist()))

    def card_vectors(self, names: Sequence[str]) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for start in range(0, len(names), self.max_batch):
            got = self.cards.get(ids=list(names[start:start + self.max_batch]), include=["embeddings"])
            if got["embeddings"] is not None:
                out.update((i, list(map(float, v))) for i, v in zip(got["ids"], got["embeddings"]))
        return out

    def nearest_chunks(self, qvec: np.ndarray, n: int) -> list[tuple[str, float, str]]:
        """``(doc_id, similarity, text)`` of the ``n`` chunks nearest to ``qvec``, nearest first."""
        if n <= 0:
            return []
        res = self.chunks.query(query_embeddings=[qvec.tolist()], n_results=n,
                                include=["metadatas", "distances", "documents"])
        return [(str((meta or {}).get("doc_id", "")), 1.0 - float(dist), doc or "")
                for meta, dist, doc in zip(res["metadatas"][0], res["distances"][0], res["documents"][0])]

    def count_chunks(self) -> int:
        return self.chunks.count()

    def iter_chunks(self, include: Sequence[str] = ("documents", "metadatas")) -> Iterator[dict[str, Any]]:
        """Every chunk row: ``{"id", "document", "metadata", "embedding"}``."""
        return iter_collection(self.chunks, include)

    def iter_cards(self, include: Sequence[str] = ("documents", "metadatas")) -> Iterator[dict[str, Any]]:
        return iter_collection(self.cards, include)

    # ---- writing -----------------------------------------------------------------------------------
    def add_tools(self, specs: Sequence[ToolSpec], embed: Callable[[list[str]], list[list[float]]],
                  replace: bool = False) -> IngestReport:
        """Register external tools atomically (all or none); unchanged ones embed nothing."""
        check_unique(specs)
        known = self.get_tools([s.name for s in specs])
        report, todo = IngestReport(), []
        for spec in specs:
            old = known.get(spec.name)
            if old is None:
                todo.append(spec)
                report.added.append(spec.name)
            elif old.tool_id == spec.tool_id:
                report.unchanged.append(spec.name)
            elif old.kind != "external":
                raise CatalogError(f"tool name {spec.name!r} belongs to document {old.doc_id!r}; rename the tool")
            elif not replace:
                raise CatalogError(f"tool {spec.name!r} is already registered with another description; use --replace")
            else:
                todo.append(spec)
                report.replaced.append(spec.name)
        if todo:
            vectors = embed([s.card() for s in todo])
            with self.db.exclusive():
                self._repair_cards(embed)
                self._upsert_cards(todo, vectors)
                with self.db.transaction() as change:
                    change.put_tools(todo)
                    change.log("cards", [s.name for s in todo])
        report.tools = len(todo)
        return report

    def sync_server(self, server: dict[str, Any], tools: dict[str, tuple[ToolSpec, str]],
                    embed: Callable[[list[str]], list[list[float]]]) -> dict[str, list[str]]:
        """Make the catalog hold exactly ``tools`` (catalog name -> (spec, name on the server)) for one MCP
        server, atomically. New and changed tools are embedded, unchanged ones are not, tools the server no
        longer lists are removed. A name held by any other tool refuses the whole change."""
        specs = [spec for spec, _ in tools.values()]
        check_unique(specs)
        owned = self.db.mcp_tools(server["name"])
        known = self.get_tools([s.name for s in specs])
        report: dict[str, list[str]] = {"added": [], "changed": [], "unchanged": [], "removed": []}
        for spec in specs:
            old = known.get(spec.name)
            if old is not None and spec.name not in owned:
                raise CatalogError(f"tool name {spec.name!r} is already taken by another tool; choose another server name")
            key = "added" if old is None else "unchanged" if old.tool_id == spec.tool_id else "changed"
            report[key].append(spec.name)
        report["removed"] = sorted(set(owned) - set(tools))
        todo = [tools[n][0] for n in report["added"] + report["changed"]]
        same_server = next((s for s in self.db.mcp_servers() if s["name"] == server["name"]), None) == server
        remotes = {name: remote for name, (_, remote) in tools.items()}
        if not todo and not report["removed"] and same_server and owned == remotes:
            return report  # nothing to write: the version (and so BM25) stays put
        vectors = embed([s.card() for s in todo]) if todo else []
        with self.db.exclusive():
            self._repair_cards(embed)
            self._upsert_cards(todo, vectors)
            with self.db.transaction() as change:
                change.put_tools(todo)
                change.delete_tools(report["removed"])
                change.put_source(server, remotes)
                change.log("cards", [s.name for s in todo] + report["removed"])
            delete_ids(self.cards, report["removed"], self.max_batch)
        return report

    def record(self, rows: Sequence[tuple[str, str]], embed_queries: Callable[[list[str]], list[list[float]]],
               source: str = "feedback") -> int:
        """Remember which tool served each ``(request, tool)`` in the usage memory; every tool must be in the
        catalog, or nothing is recorded. Returns how many pairs were new."""
        names = sorted({tool for _, tool in rows})
        known = self.get_tools(names)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise CatalogError(f"unknown tool {unknown[0]!r}" + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
        return self.usage.add(rows, embed_queries, source)

    def delete_tools(self, names: Sequence[str]) -> list[str]:
        """Remove external tools, all or none; a document's tools go only with their document.

        The SQLite commit is what makes them disappear (with their recorded requests); their card and memory
        vectors are removed after it, so a crash in between leaves only vectors no hit can reach (every hit is
        checked against SQLite)."""
        names = list(dict.fromkeys(names))
        specs = self.get_tools(names)
        missing = [n for n in names if n not in specs]
        if missing:
            raise CatalogError(f"unknown tool {missing[0]!r}")
        owned = [specs[n] for n in names if specs[n].kind != "external"]
        if owned:
            raise CatalogError(f"tool {owned[0].name!r} belongs to document {owned[0].doc_id!r}; delete the document")
        with self.db.exclusive():
            with self.db.transaction() as change:
                change.delete_tools(names)
                change.forget_requests(names)
                change.log("cards", names)
            self._drop_vectors(names, [])
        return names

    def delete_document(self, doc_id: str, unpublish: Callable[[], None]) -> list[str]:
        """Remove a document, its tools and its chunks, all or none; returns the removed tool names.

        ``unpublish`` moves the document's persisted indexes out of the way and runs inside the SQLite
        transaction (a failure there rolls the rows back). Vectors go after the commit, as in ``delete_tools``."""
        if self.get_document(doc_id) is None:
            raise CatalogError(f"unknown document {doc_id!r}")
        names = [s.name for s in self.tools_for_documents([doc_id]).get(doc_id, [])]
        chunk_ids = self._chunk_ids(doc_id)
        with self.db.exclusive():
            with self.db.transaction() as change:
                change.delete_document(doc_id)
                change.forget_requests(names)
                change.log("cards", names)
                change.log("chunks", [doc_id])
                unpublish()
            self._drop_vectors(names, chunk_ids, [doc_id])
        return names

    def _drop_vectors(self, names: list[str], chunk_ids: list[str], doc_ids: Sequence[str] = ()) -> None:
        """Vectors of tools and chunks the catalog no longer has. The version moves once more afterwards: a
        BM25 index rebuilt between the commit and this removal would still hold their texts."""
        delete_ids(self.chunks, chunk_ids, self.max_batch)
        delete_ids(self.cards, names, self.max_batch)
        self.usage.forget_tools(names)
        with self.db.transaction() as change:
            change.log("cards", names)
            change.log("chunks", list(doc_ids))

    def commit_document(self, doc: dict[str, Any], specs: Sequence[ToolSpec], card_vectors: Sequence[list[float]],
                        nodes: Sequence["TextNode"], replace: bool, publish: Callable[[], None]) -> None:
        """Make one document, its chunks and its tools visible together.

        ``nodes`` carry their embeddings; ``publish`` moves the document's persisted indexes into place and
        runs inside the SQLite transaction, so a failure there rolls the rows back too. On any failure the
        vectors written here are removed again; on success the replaced content's leftovers are."""
        doc_id = doc["doc_id"]
        new_ids = [n.node_id for n in nodes]
        with self.db.exclusive():
            old_chunk_ids = set(self._chunk_ids(doc_id)) if replace else set()
            old_names = {s.name for s in self.tools_for_documents([doc_id]).get(doc_id, [])}
            try:
                self._add_nodes(nodes)
                self._upsert_cards(specs, card_vectors)
                with self.db.transaction() as change:
                    change.delete_document(doc_id)
                    change.put_document(doc, len(nodes))
                    change.put_tools(specs)
                    change.log("cards", sorted(old_names | {s.name for s in specs}))
                    change.log("chunks", [doc_id])
                    publish()
            except BaseException:
                delete_ids(self.chunks, [i for i in new_ids if i not in old_chunk_ids], self.max_batch)
                if not replace:
                    delete_ids(self.cards, [s.name for s in specs], self.max_batch)
                raise
            delete_ids(self.chunks, sorted(old_chunk_ids - set(new_ids)), self.max_batch)
            delete_ids(self.cards, sorted(old_names - {s.name for s in specs}), self.max_batch)

    def sync(self, embed: Callable[[list[str]], list[list[float]]], expected_chunks: dict[str, "TextNode"],
             embed_queries: Callable[[list[str]], list[list[float]]] | None = None) -> dict[str, int]:
        """Make these collections hold exactly what the rows say: embed the cards, chunks or recorded
        requests they lack (a new embedder, an interrupted write) and drop vectors no row names (a writer
        killed between its vector write and its commit). Runs as the only writer, so no vector another
        writer is about to commit is taken for an orphan. The version moves if anything changed."""
        with self.db.exclusive():
            missing, orphans = self._card_gaps()
            if missing:
                self._upsert_cards(missing, embed([s.card() for s in missing]))
            delete_ids(self.cards, orphans, self.max_batch)
            if embed_queries is not None:
                self.usage.fill(embed_queries)
            self.usage.sweep()
            have = {row["id"]: str((row["metadata"] or {}).get("doc_id", ""))
                    for row in self.iter_chunks(include=("metadatas",))}
            todo = [node for node_id, node in expected_chunks.items() if node_id not in have]
            # Stale: chunks of no document, or of a document whose chunks were all read and do not include
            # them. A document whose stored chunks could not be read keeps its vectors.
            read = {str(node.metadata.get("doc_id", "")) for node in expected_chunks.values()}
            documents = {d["doc_id"] for d in self.db.list_documents()}
            stale = sorted(i for i, doc in have.items()
                           if i not in expected_chunks and (doc in read or doc not in documents))
            if todo:
                from llama_index.core.schema import MetadataMode

                for node, vec in zip(todo, embed([n.get_content(MetadataMode.EMBED) for n in todo])):
                    node.embedding = vec
                self._add_nodes(todo)
            delete_ids(self.chunks, stale, self.max_batch)
            if missing or orphans or todo or stale:
                with self.db.transaction() as change:
                    change.log("cards", [s.name for s in missing] + orphans)
                    change.log("chunks", None if todo or stale else [])
        return {"cards_embedded": len(missing), "cards_removed": len(orphans), "chunks_embedded": len(todo),
                "chunks_removed": len(stale)}

    def _repair_cards(self, embed: Callable[[list[str]], list[list[float]]]) -> None:
        """The next writer's repair of a writer killed between its vectors and its commit: when the card
        collection and the rows disagree in number, embed what is missing and drop what no row names.
        Costs two counts when they agree; the caller holds ``exclusive``. Only shared rows need it: an
        embedded workspace has one writer process, whose own failures remove what they wrote."""
        if not self.db.shared or self.cards.count() == self.db.count_tools():
            return
        missing, orphans = self._card_gaps()
        if missing:
            self._upsert_cards(missing, embed([s.card() for s in missing]))
        delete_ids(self.cards, orphans, self.max_batch)
        if missing or orphans:
            with self.db.transaction() as change:
                change.log("cards", [s.name for s in missing] + orphans)

    def _chunk_ids(self, doc_id: str) -> list[str]:
        return list(self.chunks.get(where={"doc_id": doc_id}, include=[])["ids"])

    def _add_nodes(self, nodes: Sequence["TextNode"]) -> None:
        """Chunks go in through LlamaIndex's Chroma store, so its ``VectorStoreIndex`` can read them back."""
        if not nodes:
            return
        from llama_index.vector_stores.chroma import ChromaVectorStore

        store = ChromaVectorStore(chroma_collection=self.chunks)
        for start in range(0, len(nodes), self.max_batch):
            store.add(list(nodes[start:start + self.max_batch]))

    def _upsert_cards(self, specs: Sequence[ToolSpec], vectors: Sequence[list[float]]) -> None:
        if specs:
            upsert(self.cards, ids=[s.name for s in specs], embeddings=vectors,
                   metadatas=[{"kind": s.kind, "doc_id": s.doc_id or "", "tool_id": s.tool_id} for s in specs],
                   documents=[s.card() for s in specs], max_batch=self.max_batch)

    def _card_gaps(self) -> tuple[list[ToolSpec], list[str]]:
        """Tools whose card vector is absent or stale (another ``tool_id``), and card ids no tool row has."""
        present = {row["id"]: row["metadata"].get("tool_id") for row in self.iter_cards(include=("metadatas",))}
        tools = self.list_tools()
        names = {s.name for s in tools}
        return ([s for s in tools if present.get(s.name, "") != s.tool_id],
                sorted(name for name in present if name not in names))


def check_unique(specs: Sequence[ToolSpec]) -> None:
    seen: set[str] = set()
    for s in specs:
        if s.name in seen:
            raise CatalogError(f"tool name {s.name!r} appears twice in one batch")
        seen.add(s.name)
