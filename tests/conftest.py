"""Shared fixtures: a tiny real corpus, isolated workspaces, and the real embedder loaded once per session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from router.app import AgenticRouter

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

CORPUS = {
    "photosynthesis.md": (
        "# Photosynthesis in plants\n\n"
        "Photosynthesis converts light energy into chemical energy stored in glucose. Chlorophyll in the "
        "chloroplasts absorbs mostly red and blue light and reflects green light. The Calvin cycle fixes carbon "
        "dioxide using ATP and NADPH produced by the light-dependent reactions in the thylakoid membranes.\n"
    ),
    "borrow.txt": (
        "The Rust borrow checker\n\n"
        "Rust enforces memory safety without a garbage collector. The borrow checker verifies that references "
        "never outlive the data they point to, and that a mutable reference is exclusive: while it exists no "
        "other reference to the same value may be used.\n"
    ),
    "volcano.html": (
        "<html><head><title>Volcanic eruptions</title><style>p{}</style></head><body>"
        "<p>Volcanoes erupt when magma rises through the crust. Explosive eruptions such as Mount St. Helens in "
        "1980 release pyroclastic flows, while effusive eruptions in Hawaii produce slow lava flows.</p>"
        "<script>var x = 1;</script></body></html>"
    ),
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach a model hub: make any accidental attempt fail fast instead of hanging."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.delenv("AGENTIC_ROUTER_HOME", raising=False)
    monkeypatch.delenv("AGENTIC_ROUTER_CONFIG", raising=False)


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, text in CORPUS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def make_router(tmp_path: Path):
    """Build routers on fresh workspaces (no LLM unless asked)."""
    made: list[AgenticRouter] = []

    def make(name: str = "ws", **overrides) -> AgenticRouter:
        overrides.setdefault("llm_provider", "none")
        router = AgenticRouter.open(tmp_path / name, **overrides)
        made.append(router)
        return router

    yield make
    for router in made:
        router.close()


@pytest.fixture
def router(make_router, corpus_dir: Path) -> AgenticRouter:
    r = make_router()
    r.ingest([corpus_dir])
    return r


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def shared_available(*parts: str) -> bool:
    return SHARED_DATA.joinpath(*parts).exists() and not os.environ.get("AGENTIC_ROUTER_SKIP_SHARED")
