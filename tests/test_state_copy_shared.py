"""`state copy` between an embedded workspace and shared state: the catalog moved into a real PostgreSQL and a
real `chroma run` server routes, answers and remembers as the original did, replicas serve it, and it copies
back into a folder; a copy that fails leaves no row and no collection behind."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from agentic_router.cli import main
from agentic_router.indexes.errors import InputError
from agentic_router.indexes.schema import ToolSpec
from agentic_router.indexes.storage import copy_shared
from agentic_router.indexes.storage.chroma import chroma_client
from agentic_router.router.app import AgenticRouter

QUESTIONS = ("What does the borrow checker verify?", "will it rain in Oslo tomorrow", "let my landlord know the rent is late")


def _source(make_router, corpus_dir: Path) -> AgenticRouter:
    router = make_router("source")
    router.ingest([corpus_dir])
    router.add_tools([ToolSpec(name="get_weather", kind="external", description="Weather forecast for a city."),
                      ToolSpec(name="send_email", kind="external", description="Send an email to someone.")])
    router.feedback("let my landlord know the rent is late", "send_email")
    router.workspace.save_routing({"weights": {"memory_weight": 0.7}, "n": 0})
    router.follow_active()  # route with the weights just saved, as a replica opened on the copy will
    return router


def _rows(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_a_workspace_moves_into_shared_state_and_back(make_router, corpus_dir: Path, tmp_path: Path,
                                                      state_url: str, chroma: str) -> None:
    source = _source(make_router, corpus_dir)
    runner = CliRunner()
    done = runner.invoke(main, ["--workspace", str(source.config.workspace), "--llm", "none", "state", "copy",
                                "--to", state_url, "--to-chroma", chroma, "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["tools"] == 11 and report["documents"] == 3 and report["version"] == source.catalog.version()

    replica = make_router("replica", state_url=state_url, chroma_url=chroma)  # a fresh replica on the copy
    assert replica.catalog.version() == source.catalog.version()
    for question in QUESTIONS:
        assert replica.route(question, k=5) == source.route(question, k=5)
    assert replica.catalog.recorded_requests() == source.catalog.recorded_requests()
    assert replica.workspace.routing_weights().memory_weight == 0.7  # the file setting became a shared one
    answer = replica.query("What does the borrow checker verify?", mode="direct")
    assert "borrow checker" in answer.answer.lower()  # the documents' indexes came along (unpacked on use)

    replica.add_tools([ToolSpec(name="book_taxi", kind="external", description="Book a taxi to an address.")])
    back = copy_shared.copy_from_shared(replica.config, tmp_path / "back")  # ... and back to one machine
    assert back["tools"] == 12 and back["version"] == replica.catalog.version()
    home = make_router("back")
    assert not home.config.shared and home.catalog.get_tool("book_taxi") is not None
    for question in QUESTIONS:
        assert home.route(question, k=5) == replica.route(question, k=5)
    assert json.loads((tmp_path / "back" / "routing.json").read_text())["weights"]["memory_weight"] == 0.7
    assert "borrow checker" in home.query("What does the borrow checker verify?", mode="direct").answer.lower()


def test_a_copy_into_shared_state_refuses_a_used_target_and_leaves_nothing_when_it_fails(
        make_router, corpus_dir: Path, state_url: str, chroma: str, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _source(make_router, corpus_dir)

    def broken(*_args, **_kwargs):  # fails after the vectors went to the server, before the rows commit
        raise OSError("disk full")

    monkeypatch.setattr(copy_shared, "_document_files", broken)
    with pytest.raises(OSError, match="disk full"):
        copy_shared.copy_to_shared(source.config, state_url, chroma)
    assert _rows(state_url, "SELECT COUNT(*) FROM tools") == [(0,)]
    assert _rows(state_url, "SELECT value FROM meta WHERE key = 'version'") == [(0,)]
    assert [c.name for c in chroma_client(chroma).list_collections()] == []
    monkeypatch.undo()

    copy_shared.copy_to_shared(source.config, state_url, chroma)
    with pytest.raises(InputError, match="already holds a catalog"):
        copy_shared.copy_to_shared(source.config, state_url, chroma)
