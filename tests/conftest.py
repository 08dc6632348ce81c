"""Shared fixtures: a tiny real corpus, isolated workspaces, the real embedder loaded once per session, and a real
PostgreSQL (started only for the tests that ask for it)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentic_router.router.app import AgenticRouter
from helpers import CORPUS, free_port, wait_until
from postgres_server import PostgresServer

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


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One real PostgreSQL for the whole session, started only when a test asks for it (one start costs about a
    second; a database per test costs far less). Stopped and its folder removed at the end."""
    server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    try:
        server.start()
        yield server
    finally:
        server.stop_and_remove()


@pytest.fixture
def state_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database of its own for this test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    yield url
    try:
        postgres_server.drop_database(name)
    except Exception:
        pass  # the server may have been stopped by the test; the session's end removes everything anyway


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[str]:
    """A real Chroma server (`chroma run`) on a free loopback port, stopped after the test."""
    port = free_port()
    log = (tmp_path / "chroma.log").open("wb")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "chroma"), "run", "--path", str(tmp_path / "chroma-data"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: proc.poll() is None and _heartbeat(url), 60, "chroma server up", every=0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _heartbeat(url: str) -> bool:
    try:
        return httpx.get(url + "/api/v2/heartbeat", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
