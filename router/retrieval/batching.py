"""Micro-batching of questions across concurrent callers.

A service routes many questions at once, and a transformer encodes a batch of 16 short questions in little
more time than one. ``QueryBatcher`` (and ``BatchedQueryEmbedding`` over it) gives concurrent callers one
encoder thread that waits a few milliseconds for others and encodes them together; a lone caller pays at
most the window. ``RoutePipeline`` goes further for the HTTP service's ``/v1/route``: the whole route of a
batch (encoding, then ranking with one card scan for all) runs on two worker threads, so the service keeps
two busy threads instead of one per request.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr

from agentic_router.indexes.encoders.embeddings import embed_queries
from agentic_router.router.retrieval.retriever import check_query

logger = logging.getLogger(__name__)
MAX_BATCH = 64
ROUTE_WORKERS = 2  # one encodes while the other ranks; more only adds threads competing for 2 cores


def collect(source: "queue.SimpleQueue[Any]", window: float, max_batch: int) -> list[Any]:
    """Wait for one item, then take whatever else arrives within ``window`` seconds (at most ``max_batch``)."""
    batch = [source.get()]
    deadline = time.monotonic() + window
    while len(batch) < max_batch:
        left = deadline - time.monotonic()
        try:
            batch.append(source.get(timeout=left) if left > 0 else source.get_nowait())
        except queue.Empty:
            break
    return batch


class QueryBatcher:
    """Collects questions for ``window_ms`` after the first one arrives, encodes them in one call."""

    def __init__(self, encode: Callable[[list[str]], list[list[float]]], window_ms: float = 2.0,
                 max_batch: int = MAX_BATCH) -> None:
        self.encode = encode
        self.window = max(0.0, window_ms) / 1000.0
        self.max_batch = max_batch
        self._queue: "queue.SimpleQueue[tuple[str, Future[list[float]]]]" = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.batches = 0  # how many encoder calls were made (for tests and metrics)
        self.questions = 0

    def embed(self, text: str) -> list[float]:
        """The vector of ``text``, encoded together with whatever other callers sent meanwhile."""
        self._ensure_thread()
        future: "Future[list[float]]" = Future()
        self._queue.put((text, future))
        return future.result()

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="query-batcher", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._encode(collect(self._queue, self.window, self.max_batch))

    def _encode(self, batch: list[tuple[str, "Future[list[float]]"]]) -> None:
        texts = list(dict.fromkeys(text for text, _ in batch))  # the same question twice is encoded once
        try:
            vectors = dict(zip(texts, self.encode(texts)))
        except BaseException as exc:  # noqa: BLE001 - every waiting caller must hear about the failure
            for _, future in batch:
                future.set_exception(exc)
            return
        self.batches += 1
        self.questions += len(batch)
        for text, future in batch:
            future.set_result(vectors[text])


class BatchedQueryEmbedding(BaseEmbedding):
    """A question embedder whose single-question calls go through a ``QueryBatcher``; everything else
    (document texts, explicit batches) goes straight to the wrapped embedder."""

    _inner: Any = PrivateAttr()
    _batcher: Any = PrivateAttr()

    def __init__(self, inner: BaseEmbedding, window_ms: float = 2.0) -> None:
        super().__init__(model_name=inner.model_name, embed_batch_size=inner.embed_batch_size)
        self._inner = inner
        self._batcher = QueryBatcher(lambda texts: embed_queries(inner, texts), window_ms)

    @classmethod
    def class_name(cls) -> str:
        return "BatchedQueryEmbedding"

    @property
    def batcher(self) -> QueryBatcher:
        return self._batcher

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._batcher.embed(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._inner.get_text_embedding(text)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._inner.get_text_embedding_batch(texts)


class RoutePipeline:
    """Whole routes of concurrent callers: questions that arrive within ``window_ms`` are encoded in one
    call, then ranked, by a few worker threads; a caller (the HTTP service's event loop) awaits a future.

    Measured on 2 cores at 10k tools (``scripts/bench_http.py``): handing each request to a thread pool
    that then hands its question to the encoder thread kept 16-40 Python threads runnable at once, and the
    service spent about 4 ms of CPU per request beyond the route itself on switching between them. Here
    two workers do everything: while one encodes a batch (ONNX Runtime's own threads), the other ranks the
    previous one. Encoding is serialised (a tokenizer must not be driven by two threads at once)."""

    def __init__(self, view: Callable[[], Any], window_ms: float = 2.0, workers: int = ROUTE_WORKERS,
                 max_batch: int = MAX_BATCH) -> None:
        self.view = view  # the router view to use now (a model switch replaces it between batches)
        self.window = max(0.0, window_ms) / 1000.0
        self.max_batch = max_batch
        self.workers = workers
        self._queue: "queue.SimpleQueue[tuple[str, int, int | None, Future[Any]]]" = queue.SimpleQueue()
        self._encode_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self.batches = 0  # encoder calls (metrics and tests)
        self.questions = 0

    def submit(self, query: str, k: int, rerank: int | None = None) -> "Future[Any]":
        """A future of ``view.rank(query, k, rerank)``'s hits."""
        if not self._threads:
            with self._start_lock:
                while len(self._threads) < self.workers:
                    thread = threading.Thread(target=self._run, name=f"route-{len(self._threads)}", daemon=True)
                    thread.start()
                    self._threads.append(thread)
        future: "Future[Any]" = Future()
        self._queue.put((query, k, rerank, future))
        return future

    def _run(self) -> None:
        while True:
            self._serve(collect(self._queue, self.window, self.max_batch))

    def _serve(self, batch: list[tuple[str, int, int | None, "Future[Any]"]]) -> None:
        view = self.view()
        valid = []
        for item in batch:
            try:
                valid.append((check_query(item[0]), *item[1:]))
            except BaseException as exc:  # noqa: BLE001 - this caller's own bad input
                item[3].set_exception(exc)
        texts = list(dict.fromkeys(query for query, *_ in valid))
        if not texts:
            return
        try:
            with self._encode_lock:
                vectors = dict(zip(texts, embed_queries(view.query_embedder, texts)))
        except BaseException as exc:  # noqa: BLE001 - every waiting caller must hear about the failure
            for *_, future in valid:
                future.set_exception(exc)
            return
        self.batches += 1
        self.questions += len(valid)
        groups: dict[int | None, list[tuple[str, "Future[Any]"]]] = {}
        for query, k, rerank, future in valid:
            if rerank:  # reranked one by one (the cross-encoder scores pairs anyway)
                _deliver([future], lambda: [view.rank(query, k, rerank=rerank, qvec=np.asarray(vectors[query]))])
            else:
                groups.setdefault(k, []).append((query, future))
        for size, items in groups.items():
            queries = [query for query, _ in items]
            _deliver([future for _, future in items],
                     lambda: view.rank_many(queries, np.asarray([vectors[q] for q in queries], np.float32), size))


def _deliver(futures: list["Future[Any]"], compute: Callable[[], list[Any]]) -> None:
    """Each future gets its result, or all of them the exception ``compute`` raised."""
    try:
        results = compute()
    except BaseException as exc:  # noqa: BLE001 - delivered to the callers
        for future in futures:
            future.set_exception(exc)
        return
    for future, result in zip(futures, results):
        future.set_result(result)
