"""Contracts scripts rely on: ``--json`` prints one JSON document on stdout and nothing else, whatever the
libraries underneath print; tool names are ones every client accepts, checked where they enter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import CORPUS, write_jsonl
from llama_index.core.tools import FunctionTool

from agentic_router.cli import main
from agentic_router.indexes.errors import InputError
from agentic_router.indexes.schema import ToolSpec, safe_tool_name
from agentic_router.indexes.sources.mcp_servers import Listing, to_specs
from agentic_router.training.evaluate import LabelledQuery

TOOLS = [
    {"name": "get_weather", "description": "Current weather and forecast for a city."},
    {"type": "function", "function": {"name": "send_email", "description": "Send an email to a recipient.",
                                      "parameters": {"type": "object", "properties": {"to": {"type": "string"}}}}},
    {"name": "convert_currency", "description": "Convert an amount between two currencies."},
]


def _cli(ws: Path, *args: str) -> tuple[int, str, str]:
    run = CliRunner().invoke(main, ["--workspace", str(ws), "--llm", "none", *args])
    return run.exit_code, run.stdout, run.stderr


def test_every_json_command_prints_one_json_document(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in CORPUS.items():
        (docs / name).write_text(text, encoding="utf-8")
    catalog = write_jsonl(tmp_path / "tools.jsonl", TOOLS)
    log = write_jsonl(tmp_path / "log.jsonl", [
        {"qid": "1", "query": "will it rain in Oslo", "gold": ["get_weather"]},
        {"qid": "2", "query": "turn 30 dollars into yen", "gold": ["convert_currency"]},
    ])
    with_unanswerable = write_jsonl(tmp_path / "log2.jsonl", [
        {"qid": "1", "query": "will it rain in Oslo", "gold": ["get_weather"]},
        {"qid": "3", "query": "play some jazz", "gold": []},
    ])
    commands = [
        ("ingest", str(docs), "--json"),
        ("tools", "add", str(catalog), "--json"),
        ("tools", "list", "--json"),
        ("tools", "sync", "--json"),
        ("route", "will it rain in Lisbon", "--json"),
        ("route", "will it rain in Lisbon", "--format", "openai"),
        ("route", "will it rain in Lisbon", "--format", "anthropic", "--call-id", "toolu_01"),
        ("route", "will it rain in Lisbon", "-k", "auto", "--format", "openai-tool-search"),
        ("query", "What does the borrow checker verify?", "--json"),
        ("feedback", "--query", "ping the boss", "--tool", "send_email", "--json"),
        ("feedback", "--from-queries", str(log), "--json"),
        ("calibrate", "--queries", str(with_unanswerable), "--level", "tool", "--json"),
        ("eval", "--queries", str(with_unanswerable), "--level", "tool", "--compare", "active,dense,bm25", "--json", "-"),
        ("models", "list", "--json"),
    ]
    for args in commands:
        code, out, err = _cli(ws, *args)
        assert code == 0, (args, err[-500:])
        try:
            json.loads(out)
        except ValueError as exc:
            pytest.fail(f"{' '.join(args)}: stdout is not one JSON document ({exc}): {out[:300]!r}")
    code, out, _ = _cli(ws, "eval", "--queries", str(log), "--level", "tool", "--json", "-")
    assert set(json.loads(out)) >= {"hit@1", "mrr", "n"}  # the metrics, and the table went to stderr


def test_finetune_json_is_json_although_the_trainer_prints(tmp_path: Path) -> None:
    """A real process: the trainer writes its loss dictionaries with print(); they must not reach stdout."""
    ws = tmp_path / "ws"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cli = [sys.executable, "-m", "agentic_router.cli", "--workspace", str(ws), "--llm", "none"]
    add = subprocess.run([*cli, "tools", "add", str(write_jsonl(tmp_path / "t.jsonl", TOOLS)), "--json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert add.returncode == 0, add.stderr[-500:]
    run = subprocess.run([*cli, "finetune", "--max-steps", "2", "--no-activate", "--json"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-800:]
    report = json.loads(run.stdout)
    assert report["mode"] == "synthetic" and report["candidates"]
    assert "'train_runtime'" in run.stderr  # what the trainer printed is still shown, on stderr


BAD_NAMES = ["../../etc/passwd", "a b; DROP TABLE tools;--", "x" * 65, "getPM2.5Level", "名前"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_python_registration_refuses_a_name_clients_refuse(make_router, name: str) -> None:
    router = make_router()
    with pytest.raises(InputError, match=r"does not match \^\[A-Za-z0-9_-\]\{1,64\}\$") as info:
        router.add_tools([ToolSpec(name="fine_tool", description="ok", kind="external"),
                          ToolSpec(name=name, description="a tool", kind="external")])
    assert "tool 1" in str(info.value) and "\n" not in str(info.value)
    assert router.catalog.count_tools() == 0  # nothing of the rejected batch

    def helper(x: int) -> int:
        """Adds one."""
        return x + 1

    with pytest.raises(InputError, match="register_tool: tool name"):
        router.register_tool(FunctionTool.from_defaults(fn=helper, name=name))
    assert router.catalog.count_tools() == 0


def test_cli_refuses_a_bad_name_in_one_line_and_fix_names_renames(make_router, tmp_path: Path) -> None:
    router = make_router()
    ws = router.config.workspace
    rows = [*TOOLS, {"doc_id": "getPM2.5Level", "title": "PM2.5", "text": "Air quality: PM2.5 level of a city."}]
    catalog = write_jsonl(tmp_path / "tools.jsonl", rows)
    code, out, err = _cli(ws, "tools", "add", str(catalog))
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("error: ") and "line 4: tool name 'getPM2.5Level' does not match" in err
    assert router.catalog.count_tools() == 0
    code, out, err = _cli(ws, "tools", "add", "--fix-names", str(catalog), "--json")
    assert code == 0, err
    assert json.loads(out)["added"][-1] == "getPM2_5Level"
    # a gold label written with the original name still counts, at tool level
    assert LabelledQuery("q", "air", ("getPM2.5Level",)).golds("tool") == {"getPM2_5Level"}
    assert router.route("PM2.5 air quality in Delhi", k=1)[0].name == "getPM2_5Level"


def test_a_workspace_with_old_bad_names_opens_and_lists_them_marked(make_router) -> None:
    router = make_router()
    legacy = ToolSpec(name="requestFirst Aid Assistance", description="Ask for first aid.", kind="external")
    # registered as an earlier version did, before names were checked
    router.catalog.add_tools([legacy], lambda texts: router.view.embedder.encode(texts, "text"))
    router.close()
    reopened = make_router()
    assert reopened.route("someone fainted, get help", k=1)[0].name == legacy.name
    code, out, _ = _cli(reopened.config.workspace, "tools", "list", "--json")
    assert code == 0 and json.loads(out) == [{**legacy.to_dict(), "valid_name": False}]
    code, out, _ = _cli(reopened.config.workspace, "tools", "list")
    assert "(!)" in out and "1 name(s) outside ^[A-Za-z0-9_-]{1,64}$" in out


def test_mcp_tool_names_become_valid_catalog_names() -> None:
    listing = Listing("toy", [
        {"name": "files/read", "description": "Read a file.", "title": "read", "input_schema": {}},
        {"name": "add", "description": "Add numbers.", "title": "add", "input_schema": {}},
    ])
    specs = to_specs("toy", listing)
    assert {name: server_name for name, (_, server_name) in specs.items()} == {"toy__files_read": "files/read",
                                                                                "toy__add": "add"}
    clash = Listing("toy", [{"name": n, "description": "x", "title": n, "input_schema": {}} for n in ("a.b", "a/b")])
    with pytest.raises(InputError, match="'a.b' and 'a/b' would both be registered as 'toy__a_b'"):
        to_specs("toy", clash)


def test_safe_names_keep_valid_names_as_they_are() -> None:
    assert safe_tool_name("get_weather") == "get_weather" and safe_tool_name("_private-1") == "_private-1"
    assert safe_tool_name("requestFirst Aid Assistance") == "requestFirst_Aid_Assistance"
    assert len(safe_tool_name("a." * 80)) == 64
