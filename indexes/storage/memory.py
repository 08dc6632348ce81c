"""Usage memory: the requests a catalog has been told each tool served, as vectors of the question embedder.

Feedback and router logs (``AgenticRouter.record``, ``finetune --from-queries``) land here. The retriever
asks which recorded requests are nearest to a new question, so a request seen before finds its tool even
when the tool's own card shares no words with it. The rows live in SQLite (``feedback``, the source of
truth, shared by every embedder); this module keeps one embedder's vectors of them in Chroma and, while
they are few enough, an exact in-process copy that answers far faster than a Chroma query.

Only ``Catalog`` constructs it (``catalog.usage``): recording checks tool names against the catalog first.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from agentic_router.indexes.schema import stable_hash
from agentic_router.indexes.storage.card_matrix import scan
from agentic_router.indexes.storage.chroma import collection, iter_collection, upsert

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from agentic_router.indexes.storage.catalog_db import CatalogDB

MEMORY_EXACT_MAX = 50_000  # recorded requests searched exactly in process (75 MB of float32 at 384 dims)
Matrix = tuple[list[str], list[str], np.ndarray]  # (request ids, tools, normalised vectors)


class UsageMemory:
    """Recorded ``(request, tool)`` pairs seen through one question embedder (an adapter included: the
    vectors are compared with questions, so they are made the way questions are)."""

    def __init__(self, db: "CatalogDB", client: "ClientAPI", query_tag: str, max_batch: int) -> None:
        self.db = db
        self.vectors = collection(client, f"memory__{query_tag}")
        self.max_batch = max_batch
        self._cache: tuple[tuple[int, int], Matrix] | None = None

    def count(self) -> int:
        return self.vectors.count()

    def nearest(self, qvec: np.ndarray, n: int) -> list[tuple[str, str, float]]:
        """``(request id, tool, similarity)`` of the ``n`` recorded requests nearest to ``qvec``, best first.

        Up to ``MEMORY_EXACT_MAX`` recorded requests are searched exactly in an in-process matrix (a
        fraction of a millisecond; two Chroma calls cost ~6 ms at 2,000), refreshed when the SQLite stamp
        of the recorded requests moves; beyond that, or while the vectors are being filled, Chroma answers."""
        if n <= 0:
            return []
        exact = self._matrix()
        if exact is None:
            count = self.vectors.count()
            if not count:
                return []
            res = self.vectors.query(query_embeddings=[qvec.tolist()], n_results=min(n, count),
                                     include=["metadatas", "distances"])
            return [(rid, str((meta or {}).get("tool", "")), 1.0 - float(dist))
                    for rid, meta, dist in zip(res["ids"][0], res["metadatas"][0], res["distances"][0])]
        ids, tools, vectors = exact
        if not ids:
            return []
        q = np.asarray(qvec, dtype=np.float32)
        sims = scan(vectors, (q / (np.linalg.norm(q) or 1.0)).reshape(1, -1))[0]
        n = min(n, len(ids))
        top = np.argpartition(-sims, n - 1)[:n]
        top = top[np.argsort(-sims[top], kind="stable")]
        return [(ids[i], tools[i], float(sims[i])) for i in top]

    def _matrix(self) -> Matrix | None:
        stamp = self.db.feedback_stamp()
        if stamp[0] > MEMORY_EXACT_MAX:
            return None
        cached = self._cache
        if cached is not None and cached[0] == stamp:
            return cached[1]
        rows = list(iter_collection(self.vectors, ("metadatas", "embeddings")))
        if len(rows) != stamp[0]:
            return None  # vectors and rows disagree (a sync is filling them): do not cache a partial copy
        vectors = np.asarray([r["embedding"] for r in rows], dtype=np.float32)
        if not rows:
            vectors = vectors.reshape(0, 0)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        matrix = ([r["id"] for r in rows], [str((r["metadata"] or {}).get("tool", "")) for r in rows], vectors)
        self._cache = (stamp, matrix)
        return matrix

    def add(self, rows: Sequence[tuple[str, str]], embed_queries: Callable[[list[str]], list[list[float]]],
            source: str) -> int:
        """Remember ``(request, tool)`` pairs whose tools the caller has checked. Vectors first, then the rows;
        recording the same pair again changes nothing. Returns how many were new."""
        fresh: dict[str, tuple[str, str]] = {}
        for query, tool in rows:
            fresh.setdefault(stable_hash(query, tool), (query, tool))
        have = self.db.known_requests(list(fresh))
        todo = [(rid, q, t) for rid, (q, t) in fresh.items() if rid not in have]
        if not todo:
            return 0
        vectors = embed_queries([r[1] for r in todo])
        now = time.time()
        with self.db.exclusive():
            self._upsert(todo, vectors)
            with self.db.transaction() as change:
                change.add_requests([(rid, q, t, source, now) for rid, q, t in todo])
        return len(todo)

    def forget_tools(self, names: Sequence[str]) -> None:
        """Drop the vectors of requests served by tools the catalog no longer has."""
        if names:
            self.vectors.delete(where={"tool": {"$in": list(names)}})

    def fill(self, embed_queries: Callable[[list[str]], list[list[float]]]) -> int:
        """Embed the recorded requests this embedder has no vector for (a new embedder, an interrupted write)."""
        have = {row["id"] for row in iter_collection(self.vectors, ())}
        todo = [r for r in self.db.feedback() if r[0] not in have]
        if todo:
            self._upsert(todo, embed_queries([r[1] for r in todo]))
        return len(todo)

    def sweep(self) -> int:
        """Drop vectors of requests no row records (a writer killed before its commit); the caller holds
        the catalog's ``exclusive``, so none of them is about to be committed."""
        recorded = {r[0] for r in self.db.feedback()}
        orphans = [row["id"] for row in iter_collection(self.vectors, ()) if row["id"] not in recorded]
        for start in range(0, len(orphans), self.max_batch):
            self.vectors.delete(ids=orphans[start:start + self.max_batch])
        return len(orphans)

    def _upsert(self, todo: Sequence[tuple[str, str, str]], vectors: Sequence[Sequence[float]]) -> None:
        upsert(self.vectors, ids=[r[0] for r in todo], embeddings=vectors,
               metadatas=[{"tool": r[2]} for r in todo], documents=[r[1] for r in todo], max_batch=self.max_batch)
