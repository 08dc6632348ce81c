"""Exact nearest tool cards in process, for catalogs small enough to keep their card vectors in memory.

A route asks for the cards nearest to the question, then for the similarity of a few more cards (the ones
only BM25 or the usage memory proposed). Through Chroma that is an HNSW query plus a ``get`` of vectors:
about 3.5 ms of a 9 ms route at 10k cards, and the largest share of the service's time under load. A float32
matrix of 10k × 384 answers both exactly in about 0.3 ms. Above ``CARD_EXACT_MAX`` cards a scan costs more
than Chroma's graph search, so Chroma answers there.

The matrix follows the catalog version as the BM25 indexes do: the change log names the cards each version
touched, and only those vectors are read again (adding one tool to 10k copies a 15 MB matrix, no Chroma scan).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from agentic_router.indexes.storage.chroma import iter_collection

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

CARD_EXACT_MAX = 20_000  # 30 MB at 384 dims; a scan of 20k takes ~1 ms, about half of Chroma's query
REBUILD_SHARE = 0.25  # a step changing more than this share of the cards reads the whole collection instead
READ_BATCH = 500
ChangeLog = Callable[[int], "list[tuple[int, str, str | None]] | None"]


class CardMatrix:
    """Unit-length card vectors with their tool names; immutable, so routes read one without a lock."""

    def __init__(self, names: Sequence[str], vectors: np.ndarray) -> None:
        self.names = list(names)
        self.rows = {name: i for i, name in enumerate(self.names)}
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(self.names), -1)
        self.vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def __len__(self) -> int:
        return len(self.names)

    def nearest(self, qvec: np.ndarray, n: int) -> dict[str, float]:
        """Cosine similarity of the ``n`` cards nearest to ``qvec``, nearest first (ties by row)."""
        return self.nearest_many(np.asarray(qvec, dtype=np.float32).reshape(1, -1), n)[0]

    def nearest_many(self, qvecs: np.ndarray, n: int) -> list[dict[str, float]]:
        """``nearest`` for each row of ``qvecs``, in one product: the matrix is read from memory once for
        the batch instead of once per question (at 10k cards it is larger than the CPU's caches)."""
        n = min(n, len(self.names))
        q = np.asarray(qvecs, dtype=np.float32).reshape(-1, self.vectors.shape[1] if len(self.names) else 1)
        if n <= 0:
            return [{} for _ in range(len(q))]
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        sims = scan(self.vectors, q)
        out = []
        for row in sims:
            top = np.argpartition(-row, n - 1)[:n] if n < len(row) else np.arange(len(row))
            top = top[np.lexsort((top, -row[top]))]
            out.append({self.names[i]: float(row[i]) for i in top})
        return out

    def similarity(self, qvec: np.ndarray, names: Sequence[str]) -> dict[str, float]:
        """Cosine similarity of ``qvec`` to the cards of ``names`` that exist."""
        rows = [(name, self.rows[name]) for name in names if name in self.rows]
        if not rows:
            return {}
        sims = self.vectors[[i for _, i in rows]] @ _unit(qvec)
        return {name: float(s) for (name, _), s in zip(rows, sims.tolist())}

    def updated(self, vectors: dict[str, "list[float] | None"]) -> "CardMatrix":
        """A copy with these cards replaced, added, or (None) removed."""
        keep = [i for i, name in enumerate(self.names) if name not in vectors]
        fresh = [(name, vec) for name, vec in vectors.items() if vec is not None]
        names = [self.names[i] for i in keep] + [name for name, _ in fresh]
        parts = [self.vectors[keep]]
        if fresh:
            parts.append(np.asarray([vec for _, vec in fresh], dtype=np.float32))
        return CardMatrix(names, np.concatenate(parts) if len(parts) > 1 else parts[0])


_BLAS_LOCK = threading.Lock()
_blas_libs: list[Any] | None = None


def scan(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``queries @ vectors.T`` on one BLAS thread. numpy's OpenBLAS threads keep spinning after a product,
    and in a process that also runs torch (card embedding) they took its cores: adding one tool after
    routes took 125 ms instead of 42 at 10k tools. One thread costs ~0.2 ms more per product. The lock:
    two threads restoring the thread count in the wrong order would leave it changed."""
    global _blas_libs
    with _BLAS_LOCK:
        if _blas_libs is None:
            from threadpoolctl import ThreadpoolController

            _blas_libs = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
        before = [lib.num_threads for lib in _blas_libs]
        for lib in _blas_libs:
            lib.set_num_threads(1)
        try:
            return (vectors @ queries[0])[None, :] if len(queries) == 1 else queries @ vectors.T
        finally:
            for lib, n in zip(_blas_libs, before):
                lib.set_num_threads(n)


def _unit(qvec: np.ndarray) -> np.ndarray:
    q = np.asarray(qvec, dtype=np.float32).ravel()
    return q / (np.linalg.norm(q) or 1.0)


def changed_cards(log: list[tuple[int, str, str | None]], since: int, upto: int) -> set[str] | None:
    """Tool names whose cards steps ``since``..``upto`` changed (step ``since`` itself included: a matrix
    read while that step's writer was between its Chroma write and its commit may hold either state);
    None when a step says "any card"."""
    keys: set[str] = set()
    for step, kind, key in log:
        if step < since or step > upto or kind != "cards":
            continue
        if key is None:
            return None
        keys.add(key)
    return keys


class CardMatrixCache:
    """The card matrix of one collection at the newest catalog version a route has asked for."""

    def __init__(self, max_cards: int = CARD_EXACT_MAX) -> None:
        self.max_cards = max_cards
        self._entry: tuple[int, CardMatrix] | None = None
        self._lock = threading.Lock()  # one thread updates after a change; the others wait for its matrix
        self.full_reads = 0  # whole-collection reads (tests watch these)

    def get(self, coll: "Collection", version: int, n_cards: int, changes: ChangeLog) -> CardMatrix | None:
        """The matrix at ``version`` or newer; None when the catalog is too large to scan (Chroma answers)."""
        if n_cards > self.max_cards:
            self._entry = None
            return None
        entry = self._entry
        if entry is not None and entry[0] >= version:
            return entry[1]
        with self._lock:
            entry = self._entry
            if entry is not None and entry[0] >= version:
                return entry[1]
            matrix = self._catch_up(coll, entry, version, changes) if entry is not None else None
            if matrix is None:
                matrix = self._read_all(coll)
            self._entry = (version, matrix)
            return matrix

    def _catch_up(self, coll: "Collection", entry: tuple[int, CardMatrix], version: int,
                  changes: ChangeLog) -> CardMatrix | None:
        since, matrix = entry
        log = changes(since - 1)
        if log is None:
            log = changes(since)  # the log starts at ``since``: its own step cannot be read again
        keys = changed_cards(log, since, version) if log is not None else None
        if keys is None or len(keys) > max(READ_BATCH, REBUILD_SHARE * len(matrix)):
            return None
        vectors: dict[str, list[float] | None] = dict.fromkeys(keys)
        ordered = sorted(keys)
        for start in range(0, len(ordered), READ_BATCH):
            got = coll.get(ids=ordered[start:start + READ_BATCH], include=["embeddings"])
            if got["embeddings"] is not None:
                vectors.update(zip(got["ids"], (list(v) for v in got["embeddings"])))
        return matrix.updated(vectors) if vectors else matrix

    def _read_all(self, coll: "Collection") -> CardMatrix:
        self.full_reads += 1
        names, vectors = [], []
        for row in iter_collection(coll, ("embeddings",)):
            names.append(row["id"])
            vectors.append(row["embedding"])
        return CardMatrix(names, np.asarray(vectors, dtype=np.float32) if vectors else np.zeros((0, 1), np.float32))
