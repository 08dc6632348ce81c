"""Micro-batching of question embeddings across concurrent callers.

A service routes many questions at once. Encoding them one by one in each request's thread makes the
threads compete for the same cores, and a transformer encodes a batch of 16 short questions in little more
time than one. So concurrent callers hand their question to one encoder thread, which waits a few
milliseconds for others to arrive, encodes them together and hands each its vector back. A lone caller
pays at most the window. One thread also means the model's tokenizer is never used by two threads at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr

from agentic_router.indexes.embeddings import embed_queries

logger = logging.getLogger(__name__)
MAX_BATCH = 64


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
            batch = [self._queue.get()]
            deadline = time.monotonic() + self.window
            while len(batch) < self.max_batch:
                left = deadline - time.monotonic()
                try:
                    batch.append(self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait())
                except queue.Empty:
                    break
            self._encode(batch)

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
