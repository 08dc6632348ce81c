"""The default question encoder gives torch's answers on this CPU.

Tool cards are always embedded by torch in fp32; questions by ``embed_backend``. When the two disagree the
router's rankings depend on the machine it runs on (an int8 graph did: ONNX Runtime's integer kernels
differ between AVX2 and AVX-512 VNNI/AMX). This test encodes a fixed set of requests written the way people
type them (``tests/data``) both ways and routes them over a small card set, so that a CPU on which the
default drifts fails here, saying so, instead of in some ranking test elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agentic_router.indexes.config import RouterConfig
from agentic_router.indexes.encoders.cpu import cpu_summary
from agentic_router.indexes.encoders.embeddings import load_embedder
from agentic_router.indexes.schema import ToolSpec

DATA = Path(__file__).parent / "data"
MIN_FIRST_TOOL_AGREEMENT = 0.99  # the bar of the default backend: >= 99% of first tools as torch
MIN_COSINE = 0.999  # per request, question vector against torch's


def _requests() -> list[str]:
    lines = (DATA / "agreement_requests.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _cards() -> list[str]:
    rows = [json.loads(line) for line in (DATA / "agreement_tools.jsonl").read_text(encoding="utf-8").splitlines()]
    return [ToolSpec(r["name"], r["description"], "external").card() for r in rows]


@pytest.fixture(scope="module")
def vectors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    ws = tmp_path_factory.mktemp("agreement")
    default = load_embedder(RouterConfig.load(ws, device="cpu"))
    reference = load_embedder(RouterConfig.load(ws, device="cpu", embed_backend="torch"))
    requests = _requests()
    return {
        "backend": np.array([default.backend]),
        "cards": np.asarray(reference.encode(_cards(), "text"), dtype=np.float32),
        "default": np.asarray(default.encode(requests, "query"), dtype=np.float32),
        "torch": np.asarray(reference.encode(requests, "query"), dtype=np.float32),
    }


def test_the_fixture_is_big_enough_to_tell() -> None:
    assert len(_requests()) >= 100  # one disagreement in 100 is the most the bar allows
    assert len(set(_requests())) == len(_requests())


def test_default_backend_routes_as_torch_does(vectors: dict[str, np.ndarray]) -> None:
    backend = str(vectors["backend"][0])
    cosine = (vectors["default"] * vectors["torch"]).sum(axis=1)
    first_default = (vectors["default"] @ vectors["cards"].T).argmax(axis=1)
    first_torch = (vectors["torch"] @ vectors["cards"].T).argmax(axis=1)
    agreement = float((first_default == first_torch).mean())
    requests = _requests()
    moved = [requests[i] for i in np.flatnonzero(first_default != first_torch)][:5]
    why = (f"embed_backend={backend} on {cpu_summary()}: first tool as torch for {agreement:.3f} of "
           f"{len(requests)} requests (bar {MIN_FIRST_TOOL_AGREEMENT}), cosine to torch min {cosine.min():.5f} "
           f"mean {cosine.mean():.5f}; moved: {moved}. Rankings on this CPU differ from torch's: set "
           "embed_backend=onnx or torch here, and see docs/benchmarks.md on encoders per CPU.")
    assert agreement >= MIN_FIRST_TOOL_AGREEMENT, why
    assert cosine.min() >= MIN_COSINE, why


def test_the_bar_is_reachable_only_by_a_faithful_encoder(vectors: dict[str, np.ndarray]) -> None:
    """The check can fail: a question vector with a little noise (far less than int8's error on AVX2)
    moves first tools on this fixture, so agreement is a property of the encoder, not of the data."""
    rng = np.random.default_rng(0)
    noisy = vectors["torch"] + rng.normal(scale=0.03, size=vectors["torch"].shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    moved = ((noisy @ vectors["cards"].T).argmax(axis=1) != (vectors["torch"] @ vectors["cards"].T).argmax(axis=1))
    assert moved.mean() > 1 - MIN_FIRST_TOOL_AGREEMENT
