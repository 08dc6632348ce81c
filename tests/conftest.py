"""Shared fixtures: a tiny real corpus, isolated workspaces, and the real embedder loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentic_router.router.app import AgenticRouter
from helpers import CORPUS

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
