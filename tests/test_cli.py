"""The CLI contract: commands, --json on stdout only, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentic_router.cli import main
from helpers import write_jsonl


@pytest.fixture
def run(tmp_path: Path):
    runner = CliRunner()
    workspace = tmp_path / "ws"

    def invoke(*args: str):
        return runner.invoke(main, ["--workspace", str(workspace), "--llm", "none", *args], catch_exceptions=False)

    return invoke


def test_ingest_list_route_query_eval(run, corpus_dir: Path, tmp_path: Path) -> None:
    result = run("ingest", str(corpus_dir))
    assert result.exit_code == 0, result.output
    assert "added 3" in result.stdout

    listed = run("tools", "list", "--json")
    tools = json.loads(listed.stdout)
    assert len(tools) == 9 and {"name", "kind", "doc_id", "tool_id", "description"} <= set(tools[0])

    routed = run("route", "What does the borrow checker verify?", "-k", "2", "--json")
    data = json.loads(routed.stdout)
    assert len(data["tools"]) == 2 and data["tools"][0]["name"].startswith("vector_the_rust")
    assert {"score", "kind", "doc_id"} <= set(data["tools"][0])

    answered = run("query", "What does the borrow checker verify?", "--json")
    data = json.loads(answered.stdout)
    assert data["mode"] == "direct" and "references" in data["answer"]
    assert data["tools_offered"] and data["tools_called"][0]["name"] in data["tools_offered"]
    assert data["sources"][0]["doc_id"].startswith("borrow")

    doc_ids = {t["doc_id"] for t in tools}
    borrow = next(d for d in doc_ids if d.startswith("borrow"))
    queries = write_jsonl(tmp_path / "q.jsonl", [
        {"qid": "1", "query": "What does the borrow checker verify?", "gold": [borrow]},
        {"qid": "2", "query": "garbage collector in Rust", "gold": [borrow]},
    ])
    out = tmp_path / "metrics.json"
    evaluated = run("eval", "--queries", str(queries), "--json", str(out))
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(out.read_text())
    assert set(metrics) >= {"n", "hit@1", "hit@3", "hit@5", "mrr", "ndcg@10"} and metrics["n"] == 2
    assert metrics["hit@1"] == 1.0

    compared = run("eval", "--queries", str(queries), "--compare", "active,lead", "--json", str(out))
    assert compared.exit_code == 0, compared.output
    assert set(json.loads(out.read_text())) == {"active", "lead"}


def test_tools_add_and_route_external(run, tmp_path: Path) -> None:
    catalog = write_jsonl(tmp_path / "tools.jsonl", [
        {"name": "get_weather", "description": "Current weather for a city"},
        {"name": "send_email", "description": "Send an email message to a recipient"},
    ])
    assert run("tools", "add", str(catalog)).exit_code == 0
    data = json.loads(run("route", "email my boss", "--json").stdout)
    assert data["tools"][0]["name"] == "send_email" and data["tools"][0]["kind"] == "external"


def test_errors_are_one_line_with_exit_1(run, tmp_path: Path) -> None:
    result = run("ingest", str(tmp_path / "nope.md"))
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and "no such file or directory" in result.stderr
    assert result.stdout == ""
    result = run("route", "x" * 100_000)
    assert result.exit_code == 1 and "limit is 10,000" in result.stderr


def test_usage_errors_exit_2(run) -> None:
    assert run("route").exit_code == 2
    assert run("query", "hi", "--mode", "dance").exit_code == 2
    assert run("frobnicate").exit_code == 2
