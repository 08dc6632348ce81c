"""Usage memory: a recorded request changes routing at once, with the real embedder and a real Chroma."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import assert_first, assert_not_first, write_jsonl

from agentic_router.cli import main
from agentic_router.indexes.errors import CatalogError, InputError
from agentic_router.indexes.schema import ToolSpec
from agentic_router.router.activation import activate, sync_collections
from agentic_router.router.versions.registry import ModelVersion

TOOLS = [
    ToolSpec(name="get_weather", description="Current weather and forecast for a city.", kind="external"),
    ToolSpec(name="send_email", description="Send an email message to a recipient.", kind="external"),
    ToolSpec(name="convert_currency", description="Convert an amount between two currencies.", kind="external"),
    ToolSpec(name="open_ticket", description="Open a support ticket in the help desk.", kind="external"),
]
# An idiosyncratic request: nothing in it says "email", so the router does not put send_email first:
# open_ticket leads it by 0.07 without memory (0.07 with int8 questions too), the premise's margin.
REQUEST = "give my manager a heads-up that I'll miss standup"
PARAPHRASE = "give my boss a heads-up that I will miss the standup"


@pytest.fixture
def tools_router(make_router):
    router = make_router()
    router.add_tools(TOOLS)
    return router


def test_a_recorded_request_routes_its_tool_first_at_once(tools_router) -> None:
    assert_not_first(tools_router.route(PARAPHRASE, k=4), "send_email")  # premise: without memory it is wrong
    assert tools_router.feedback(REQUEST, "send_email") is True
    assert tools_router.feedback(REQUEST, "send_email") is False  # the same pair again changes nothing
    assert tools_router.catalog.usage.count() == 1
    assert_first(tools_router.route(REQUEST, k=4), "send_email")
    assert_first(tools_router.route(PARAPHRASE, k=4), "send_email")
    # an unrelated request is not pulled towards the remembered tool
    assert tools_router.route("will it rain in Lisbon tomorrow?", k=4)[0].name == "get_weather"


def test_memory_weight_zero_ignores_the_memory(tools_router) -> None:
    tools_router.feedback(REQUEST, "send_email")
    from dataclasses import replace

    view = tools_router.workspace.view(weights=replace(tools_router.view.weights, memory_weight=0.0))
    assert_not_first(view.rank(PARAPHRASE, k=4), "send_email")


def test_feedback_refuses_unknown_tools_and_empty_requests(tools_router) -> None:
    with pytest.raises(CatalogError, match="unknown tool or document 'nope'"):
        tools_router.feedback(REQUEST, "nope")
    with pytest.raises(InputError, match="the question is empty"):
        tools_router.feedback("  ", "send_email")
    assert tools_router.catalog.usage.count() == 0  # nothing half-written


def test_a_document_id_stands_for_its_vector_tool(router) -> None:
    doc_id = next(s.doc_id for s in router.list_tools() if s.doc_id and s.doc_id.startswith("borrow"))
    assert router.feedback("who guards references in that language?", doc_id)
    assert router.catalog.db.feedback()[0][2].startswith("vector_")


def test_cli_feedback_one_pair_or_a_log_file(tools_router, tmp_path: Path) -> None:
    ws = ["--workspace", str(tools_router.config.workspace), "--llm", "none"]
    runner = CliRunner()
    one = runner.invoke(main, [*ws, "feedback", "--query", REQUEST, "--tool", "send_email", "--json"])
    assert one.exit_code == 0, one.output
    assert json.loads(one.output) == {"recorded": 1, "already_known": 0, "memory": 1}
    log = write_jsonl(tmp_path / "log.jsonl", [
        {"qid": "a", "query": REQUEST, "gold": ["send_email"]},
        {"qid": "b", "query": "turn 30 dollars into yen", "gold": ["convert_currency"]},
    ])
    many = runner.invoke(main, [*ws, "feedback", "--from-queries", str(log), "--json"])
    assert json.loads(many.output) == {"recorded": 1, "already_known": 1, "memory": 2}
    bad = runner.invoke(main, [*ws, "feedback", "--query", REQUEST])
    assert bad.exit_code == 2 and "give --query and --tool" in bad.output
    unknown = runner.invoke(main, [*ws, "feedback", "--query", REQUEST, "--tool", "ghost"])
    assert unknown.exit_code == 1 and unknown.stderr.strip() == "error: unknown tool or document 'ghost'"


def test_a_new_embedder_gets_the_memory_re_embedded(tools_router) -> None:
    import shutil

    from agentic_router.indexes.encoders.embeddings import resolve_model_path

    tools_router.feedback(REQUEST, "send_email")
    target = tools_router.registry.new_dir("ft1") / "model"
    shutil.copytree(resolve_model_path(tools_router.config.embed_model), target)
    tools_router.registry.register(ModelVersion(name="ft1", method="full", base="base", path="ft1/model"))
    activate(tools_router.workspace, "ft1")
    fresh = tools_router.workspace.view()
    assert fresh.embedder_version == "ft1" and fresh.catalog.usage.count() == 1
    assert fresh.rank(PARAPHRASE, k=4)[0].name == "send_email"
    assert sync_collections(fresh)["cards_embedded"] == 0


def test_every_channel_is_a_system_in_eval_compare(tools_router, tmp_path: Path) -> None:
    assert_not_first(tools_router.route(PARAPHRASE, k=4), "send_email")  # the premise of "no-memory" 0.5
    tools_router.feedback(REQUEST, "send_email")
    queries = write_jsonl(tmp_path / "q.jsonl", [
        {"qid": "1", "query": PARAPHRASE, "gold": ["send_email"]},
        {"qid": "2", "query": "what will the weather be in Oslo", "gold": ["get_weather"]},
    ])
    out = tmp_path / "m.json"
    ws = ["--workspace", str(tools_router.config.workspace), "--llm", "none"]
    run = CliRunner().invoke(main, [*ws, "eval", "--queries", str(queries), "--level", "tool", "--compare",
                                    "active,no-memory,lookup,dense,card,chunk,lexical,bm25", "--json", str(out)])
    assert run.exit_code == 0, run.output
    result = json.loads(out.read_text())
    assert list(result) == ["active", "no-memory", "lookup", "dense", "card", "chunk", "lexical", "bm25"]
    # the recorded request fixes the paraphrase; without memory it is missed. The lookup knows only
    # send_email: it finds the paraphrase; on the weather question every vote is 0 (its similarity to the
    # recorded request is about 0), so that one is a tie and not asserted either way.
    assert result["active"]["hit@1"] == 1.0
    assert result["no-memory"]["hit@1"] == 0.5
    assert result["lookup"]["hit@1"] >= 0.5


def test_calibrate_keeps_weights_only_on_a_clear_win_and_views_read_them(tools_router, tmp_path: Path) -> None:
    from agentic_router.indexes.errors import ConfigError
    from agentic_router.router.workspace import Workspace

    queries = write_jsonl(tmp_path / "q.jsonl", [{"qid": "1", "query": PARAPHRASE, "gold": ["send_email"]},
                                                {"qid": "2", "query": "weather in Oslo", "gold": ["get_weather"]}])
    ws = ["--workspace", str(tools_router.config.workspace), "--llm", "none"]
    run = CliRunner().invoke(main, [*ws, "calibrate", "--queries", str(queries), "--json"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["changed"] is False  # two requests can never be a clear win
    path = tools_router.workspace.weights_path
    assert not path.exists()
    path.write_text(json.dumps({"weights": {"lexical_weight": 0.1, "memory_floor": 0.7}}), encoding="utf-8")
    fresh = Workspace(tools_router.config).view()
    assert (fresh.weights.lexical_weight, fresh.weights.memory_floor, fresh.weights.card_weight) == (0.1, 0.7, 0.15)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="routing.json is unreadable"):
        Workspace(tools_router.config).view()
    reset = CliRunner().invoke(main, [*ws, "calibrate", "--queries", str(queries), "--reset", "--json"])
    assert reset.exit_code == 0, reset.output  # --reset removes even a damaged file, then calibrates
    assert not path.exists() and Workspace(tools_router.config).view().weights.lexical_weight == 0.4
