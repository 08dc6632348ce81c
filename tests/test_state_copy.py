"""`state copy`: a workspace copied to another folder routes, answers and remembers as the original does, and
a copy that fails leaves nothing behind (real embedder, real Chroma, real SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentic_router.cli import main
from agentic_router.indexes.errors import InputError
from agentic_router.indexes.schema import ToolSpec
from agentic_router.indexes.storage import copy as state_copy
from agentic_router.router.app import AgenticRouter

QUESTIONS = ("What does the borrow checker verify?", "will it rain in Oslo tomorrow", "let my landlord know the rent is late")


def _router_with_state(make_router, corpus_dir: Path) -> AgenticRouter:
    router = make_router("source")
    router.ingest([corpus_dir])
    router.add_tools([ToolSpec(name="get_weather", kind="external", description="Weather forecast for a city."),
                      ToolSpec(name="send_email", kind="external", description="Send an email to someone.")])
    router.feedback("let my landlord know the rent is late", "send_email")
    (router.config.workspace / "datasets").mkdir()
    (router.config.workspace / "datasets" / "train.json").write_text("{}")
    return router


def test_the_copy_routes_and_remembers_as_the_original(make_router, corpus_dir: Path, tmp_path: Path) -> None:
    source = _router_with_state(make_router, corpus_dir)
    report = state_copy.copy_workspace(source.config, tmp_path / "copy")
    assert report["tools"] == source.catalog.count_tools() == 11 and report["documents"] == 3
    assert report["version"] == source.catalog.version() and sum(report["collections"].values()) > 11
    assert not (tmp_path / "copy" / "lexical").exists()  # derived: rebuilt by the first route
    assert (tmp_path / "copy" / "datasets" / "train.json").read_text() == "{}"  # every other file comes along
    copied = make_router("copy")
    assert copied.catalog.recorded_requests() == source.catalog.recorded_requests()
    for question in QUESTIONS:
        assert copied.route(question, k=5) == source.route(question, k=5)
    assert [d["doc_id"] for d in copied.list_documents()] == [d["doc_id"] for d in source.list_documents()]
    answer = copied.query("What does the borrow checker verify?", mode="direct")
    assert "borrow checker" in answer.answer.lower()  # a document index was copied, not only its vectors
    copied.add_tools([ToolSpec(name="book_taxi", kind="external", description="Book a taxi to an address.")])
    assert source.catalog.get_tool("book_taxi") is None  # the copy is a workspace of its own


def test_a_copy_refuses_a_used_folder_and_leaves_nothing_when_it_fails(make_router, corpus_dir: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    source = _router_with_state(make_router, corpus_dir)
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="exists and is not an empty folder"):
        state_copy.copy_workspace(source.config, used)
    assert sorted(p.name for p in used.iterdir()) == ["notes.txt"]
    with pytest.raises(InputError, match="into itself"):
        state_copy.copy_workspace(source.config, source.config.workspace / "inner")

    def broken(*_args, **_kwargs):  # the files fail last, after the rows and the vectors were copied
        raise OSError("disk full")

    monkeypatch.setattr(state_copy, "_copy_files", broken)
    with pytest.raises(OSError, match="disk full"):
        state_copy.copy_workspace(source.config, tmp_path / "half")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name not in {"source", "corpus"}) == ["used"]


def test_cli_state_copy(make_router, corpus_dir: Path, tmp_path: Path) -> None:
    source = _router_with_state(make_router, corpus_dir)
    runner = CliRunner()
    args = ["--workspace", str(source.config.workspace), "--llm", "none", "state", "copy"]
    done = runner.invoke(main, [*args, "--to", str(tmp_path / "cli-copy"), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["tools"] == 11
    again = runner.invoke(main, [*args, "--to", str(tmp_path / "cli-copy")])
    assert again.exit_code == 1 and again.stderr.startswith("error: ") and len(again.stderr.splitlines()) == 1
    pg = runner.invoke(main, [*args, "--to", "postgresql://localhost/router"])
    assert pg.exit_code == 1 and "needs --to-chroma" in pg.stderr
    other = runner.invoke(main, [*args, "--to", "mysql://localhost/router"])
    assert other.exit_code == 1 and "takes a folder or a postgresql:// URL" in other.stderr
