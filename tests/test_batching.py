"""The micro-batcher hands every caller its own vector, encodes callers that arrive together in one call,
and reports a failed encoding to everyone who waited on it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from agentic_router.router.retrieval.batching import QueryBatcher


class Encoder:
    """A deterministic stand-in for a model: the vector of a text is (length, first code point). Its first
    call can be held until the test releases it, so that other callers queue up meanwhile."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        if len(self.calls) == 1:
            self.entered.set()
            self.release.wait(10)
        if "boom" in texts:
            raise RuntimeError("the model is gone")
        return [[float(len(t)), float(ord(t[0]))] for t in texts]


def test_concurrent_callers_share_one_call_and_get_their_own_vectors() -> None:
    encoder = Encoder()
    batcher = QueryBatcher(encoder, window_ms=20)
    texts = [f"question number {i}" + "!" * i for i in range(24)] + ["same", "same"]
    with ThreadPoolExecutor(max_workers=len(texts) + 1) as pool:
        first = pool.submit(batcher.embed, "first")
        assert encoder.entered.wait(10)  # the encoder is busy: everyone else queues behind it
        futures = [pool.submit(batcher.embed, t) for t in texts]
        while batcher._queue.qsize() < len(texts):  # noqa: SLF001 - wait until all have queued
            threading.Event().wait(0.01)
        encoder.release.set()
        vectors = [f.result(timeout=10) for f in futures]
        assert first.result(timeout=10) == [5.0, 102.0]
    assert vectors == [[float(len(t)), float(ord(t[0]))] for t in texts]
    assert len(encoder.calls) == 2 and len(encoder.calls[1]) == len(texts) - 1  # "same" encoded once
    assert batcher.batches == 2 and batcher.questions == len(texts) + 1


def test_a_failed_encoding_reaches_every_waiting_caller_and_the_next_batch_works() -> None:
    encoder = Encoder()
    encoder.release.set()
    batcher = QueryBatcher(encoder, window_ms=50)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(batcher.embed, t) for t in ("boom", "q1", "q2")]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result(timeout=10))
            except RuntimeError as exc:
                outcomes.append(str(exc))
    assert outcomes[0] == "the model is gone"
    failed = {t for call in encoder.calls if "boom" in call for t in call}  # every caller of that call hears of it
    for text, outcome in zip(("boom", "q1", "q2"), outcomes):
        assert (outcome == "the model is gone") == (text in failed)
    assert batcher.embed("after") == [5.0, 97.0]  # the same batcher's thread lives on


def test_the_route_pipeline_routes_each_caller_as_the_router_does(make_router) -> None:
    from agentic_router.indexes.errors import InputError
    from agentic_router.indexes.schema import ToolSpec
    from agentic_router.router.retrieval.batching import RoutePipeline

    router = make_router()
    nouns = "invoice flight hotel stock recipe email calendar meeting parcel currency".split()
    router.add_tools([ToolSpec(name=f"{noun}_lookup", kind="external", description=f"Look up a {noun} by its number")
                      for noun in nouns])
    pipeline = RoutePipeline(lambda: router.view, window_ms=30)
    questions = [f"find my {noun} number {i}" for i, noun in enumerate(nouns)] + [nouns[0] + "_lookup"]
    futures = [pipeline.submit(q, 3) for q in questions]
    futures.append(pipeline.submit("find my parcel", 1))  # another k in the same batch
    bad = pipeline.submit("   ", 3)
    reranked = pipeline.submit("find my hotel", 3, rerank=5)  # no cross-encoder is active
    got = [f.result(timeout=120) for f in futures]
    for question, hits in zip(questions, got):
        alone = router.route(question, 3)
        assert [h.name for h in hits] == [h.name for h in alone]
        assert [h.score for h in hits] == pytest.approx([h.score for h in alone], abs=1e-5)  # encoded in a batch or alone: the same vector
    assert got[-2][0].name == "invoice_lookup" and got[-2][0].score == 1.0  # a tool's own name comes first
    assert [h.name for h in got[-1]] == ["parcel_lookup"]
    for future in (bad, reranked):
        error = future.exception(timeout=120)
        assert isinstance(error, InputError) and "\n" not in str(error)
    assert pipeline.questions == len(futures) + 1 and pipeline.batches < pipeline.questions
