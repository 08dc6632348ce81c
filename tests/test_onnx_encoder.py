"""The ONNX Runtime question encoder: offline export, parity with torch, cache integrity, routing, config.

Real parts only: the bundled MiniLM weights are exported for real (once per module, into a temporary copy
of the model folder, which is how a fine-tuned version in the registry gets its export), and compared
with the real sentence-transformers model on real-looking text. The router test uses the bundled folder
itself (its older layout), so both layouts are read.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from agentic_router.indexes.config import BUNDLED_EMBEDDER, RouterConfig
from agentic_router.indexes.encoders.embeddings import load_embedder, resolve_model_path
from agentic_router.indexes.encoders.onnx_encoder import (
    CACHE_DIR,
    GRAPH,
    MANIFEST,
    ModelLayout,
    OnnxQueryEncoder,
    ensure_export,
)
from agentic_router.indexes.errors import ConfigError
from agentic_router.indexes.schema import ToolSpec

TEXTS = [
    "What's the weather like in Boston tomorrow, in Fahrenheit?",
    "Book me a table for four at an Italian restaurant near Union Square at 7pm",
    "convert 250 US dollars to euros",
    "How does SARS-CoV-2 bind to the ACE2 receptor?",
    "list all open pull requests in the repo and assign them to me",
    "Send an email to Dana saying the meeting moved to Thursday.",
    "x",
    "what is the incubation period of the novel coronavirus in children compared with adults",
    "Find flights from SFO to JFK on 2024-05-03 for 2 adults, economy, cheapest first.",
    "translate 'where is the train station' into Japanese",
    # longer than MiniLM's 256-token window: truncation must match sentence-transformers'
    "Summarise the clinical findings: " + " ".join(f"patient {i} presented with fever and cough" for i in range(80)),
]

TOOLS = [
    ToolSpec("get_weather", "Current weather and forecast for a city: temperature, rain and wind.", "external"),
    ToolSpec("convert_currency", "Convert an amount of money from one currency to another at today's rate.",
             "external"),
    ToolSpec("book_restaurant", "Reserve a table at a restaurant for a party at a given time.", "external"),
    ToolSpec("search_flights", "Search flights between two airports on a date, with prices.", "external"),
    ToolSpec("send_email", "Send an email message to a contact with a subject and body.", "external"),
    ToolSpec("translate_text", "Translate a sentence from one language into another.", "external"),
    ToolSpec("list_pull_requests", "List the open pull requests of a GitHub repository.", "external"),
    ToolSpec("stock_quote", "Latest share price and daily change of a listed company.", "external"),
]
QUESTIONS = {
    "Is it going to rain in Seattle this afternoon?": "get_weather",
    "How many yen is 40 pounds sterling?": "convert_currency",
    "reserve a table for six at an Italian restaurant tonight": "book_restaurant",
    "cheapest way to fly from Berlin to Lisbon next Monday": "search_flights",
    "email my landlord that the heating is broken": "send_email",
    "how do you say good morning in Portuguese": "translate_text",
    "which PRs are still waiting for review in our backend repo": "list_pull_requests",
    "how is Apple's stock doing today": "stock_quote",
}


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled model saved again by the installed sentence-transformers, as training saves a full
    fine-tune into the registry (a newer folder layout than the bundled copy's); a writable folder."""
    target = tmp_path_factory.mktemp("model") / "minilm"
    SentenceTransformer(resolve_model_path(BUNDLED_EMBEDDER), device="cpu").save(str(target))
    return target


@pytest.fixture(scope="module")
def encoders(model_copy: Path) -> dict[str, OnnxQueryEncoder]:
    with pytest.MonkeyPatch.context() as mp:  # module scope: the autouse offline fixture is per test
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        return {backend: OnnxQueryEncoder.load(model_copy, backend) for backend in ("onnx", "onnx-int8")}


@pytest.fixture(scope="module")
def torch_vectors(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    cfg = RouterConfig.load(tmp_path_factory.mktemp("ws"), embed_backend="torch", device="cpu")
    embedder = load_embedder(cfg)
    assert embedder.backend == "torch"
    return np.asarray(embedder.encode(TEXTS, "query"), dtype=np.float32)


def test_export_lands_in_the_model_folder_whole(model_copy: Path, encoders: dict[str, OnnxQueryEncoder]) -> None:
    for variant in ("fp32", "int8"):
        folder = model_copy / CACHE_DIR / variant
        manifest = json.loads((folder / MANIFEST).read_text())
        assert manifest["variant"] == variant
        assert manifest["size"] == (folder / GRAPH).stat().st_size
    leftovers = [p.name for p in (model_copy / CACHE_DIR).iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no temporary folder survives a finished export
    int8 = (model_copy / CACHE_DIR / "int8" / GRAPH).stat().st_size
    assert int8 < 0.5 * (model_copy / CACHE_DIR / "fp32" / GRAPH).stat().st_size


def test_fp32_matches_torch_per_text(encoders: dict[str, OnnxQueryEncoder], torch_vectors: np.ndarray) -> None:
    vectors = encoders["onnx"].encode(TEXTS)
    assert vectors.shape == torch_vectors.shape
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * torch_vectors).sum(axis=1)
    assert cosines.min() >= 0.9999, dict(zip(TEXTS, cosines.round(6)))


def test_int8_stays_close_to_torch(encoders: dict[str, OnnxQueryEncoder], torch_vectors: np.ndarray) -> None:
    # Measured on these texts: worst 0.985, mean 0.994 (200 BFCL requests: worst 0.983, mean 0.995).
    cosines = (encoders["onnx-int8"].encode(TEXTS) * torch_vectors).sum(axis=1)
    assert cosines.min() >= 0.97, dict(zip(TEXTS, cosines.round(4)))
    assert cosines.mean() >= 0.99
    assert cosines.min() < 0.9999  # it is a different model: if it matched exactly, quantisation did not happen


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_batching_and_order_do_not_change_vectors(encoders: dict[str, OnnxQueryEncoder], backend: str) -> None:
    encoder = encoders[backend]  # int8 by running each text alone: its activation scales are per run
    together = encoder.encode(TEXTS, batch_size=4)
    alone = np.vstack([encoder.encode([t]) for t in TEXTS])
    assert np.allclose(together, alone, atol=1e-4)
    if backend == "onnx-int8":  # alone on the multi-threaded session, together on the one-thread lanes
        assert np.array_equal(together, alone)


def test_several_runs_share_the_cores_a_run_at_a_time(model_copy: Path,
                                                       encoders: dict[str, OnnxQueryEncoder]) -> None:
    encoder = OnnxQueryEncoder.load(model_copy, "onnx-int8", threads=2)  # the export is cached by the fixture
    seen: list[tuple[str, bool]] = []
    inner = encoder.infer

    def spy(feeds: dict[str, np.ndarray], session: object = None) -> np.ndarray:
        seen.append((threading.current_thread().name, session is encoder._lane_session))
        return inner(feeds, session)

    encoder.infer = spy  # type: ignore[method-assign]
    encoder.encode(TEXTS[:1])
    assert seen == [(threading.current_thread().name, False)]  # one run: the caller, on the two-thread session
    seen.clear()
    vectors = encoder.encode(TEXTS)
    assert len(seen) == len(TEXTS) and all(lane for _, lane in seen)
    assert all(name.startswith("onnx-lane") for name, _ in seen)
    assert np.array_equal(vectors, encoders["onnx-int8"].encode(TEXTS))


def test_corrupt_or_half_written_cache_is_rebuilt(model_copy: Path, encoders: dict[str, OnnxQueryEncoder]) -> None:
    layout = ModelLayout.read(model_copy)
    root = model_copy / CACHE_DIR
    graph, manifest = root / "int8" / GRAPH, root / "int8" / MANIFEST
    good = graph.read_bytes()

    graph.write_bytes(good[: len(good) // 2])  # a truncated graph: never handed to ONNX Runtime
    assert ensure_export(layout, "int8") == good
    assert graph.read_bytes() == good

    manifest.unlink()  # a folder without its manifest was never finished
    assert ensure_export(layout, "int8") == good
    assert manifest.is_file()

    meta = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**meta, "source": "other-weights"}))  # an export of other weights
    assert ensure_export(layout, "int8") == good
    assert json.loads(manifest.read_text())["source"] == layout.fingerprint()

    fresh = OnnxQueryEncoder.load(model_copy, "onnx-int8")
    assert np.allclose(fresh.encode(TEXTS[:3]), encoders["onnx-int8"].encode(TEXTS[:3]), atol=1e-6)


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_router_routes_like_torch(make_router, backend: str) -> None:
    base = make_router("torch", embed_backend="torch", device="cpu")
    fast = make_router(backend, embed_backend=backend, device="cpu")
    assert fast.view.embedder.backend == backend
    for router in (base, fast):
        router.add_tools(TOOLS)
    for question, tool in QUESTIONS.items():
        want, got = base.route(question, 3), fast.route(question, 3)
        assert want[0].name == tool, question
        assert got[0].name == want[0].name, question
        if backend == "onnx":
            assert abs(got[0].score - want[0].score) < 1e-3


def test_cards_are_still_embedded_by_torch(tmp_path: Path) -> None:
    """Stored vectors must not depend on the backend: the collections are keyed by the model only."""
    texts = TEXTS[:4]
    torch_cfg = RouterConfig.load(tmp_path, embed_backend="torch", device="cpu")
    int8_cfg = torch_cfg.with_overrides(embed_backend="onnx-int8")
    assert load_embedder(int8_cfg).get_text_embedding_batch(texts) == load_embedder(torch_cfg).get_text_embedding_batch(texts)


def test_unknown_backend_is_a_one_line_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as err:
        RouterConfig.load(tmp_path, embed_backend="tensorrt")
    assert "embed_backend" in str(err.value) and "tensorrt" in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setenv("AGENTIC_ROUTER_EMBED_BACKEND", "onnx-fp16")
    with pytest.raises(ConfigError, match="embed_backend must be one of torch, onnx, onnx-int8"):
        RouterConfig.load(tmp_path)
    monkeypatch.setenv("AGENTIC_ROUTER_EMBED_BACKEND", "onnx")
    assert RouterConfig.load(tmp_path).embed_backend == "onnx"


def test_runs_group_texts_of_similar_length() -> None:
    from agentic_router.indexes.encoders.onnx_encoder import length_groups

    assert length_groups([300, 290, 40, 38, 37, 12, 11, 10, 10], batch_size=8) == [[0, 1], [2, 3, 4], [5, 6, 7, 8]]
    assert length_groups([10] * 5, batch_size=2) == [[0, 1], [2, 3], [4]]
    assert length_groups([], batch_size=8) == []


def test_mixed_lengths_in_one_call_match_each_alone(encoders: dict[str, OnnxQueryEncoder]) -> None:
    texts = ["hi", "book me a table for two at an Italian restaurant near the station tonight at eight " * 6,
             "weather in Lisbon", "convert 20 US dollars to euros at today's rate"]
    together = encoders["onnx"].encode(texts, batch_size=8)
    alone = np.vstack([encoders["onnx"].encode([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-4)
