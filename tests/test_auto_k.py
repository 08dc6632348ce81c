"""k auto: the tools close to the best one, at most k_max, none when no tool fits (CLI, Python, HTTP, MCP)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from agentic_router.cli import main
from agentic_router.indexes.schema import RouteHit, ToolSpec
from agentic_router.router.retrieval.scoring import close_to_best

TOOLS = [
    ToolSpec(name="get_weather", description="Current weather and forecast for a city.", kind="external"),
    ToolSpec(name="get_air_quality", description="Air quality index and pollen forecast for a city.", kind="external"),
    ToolSpec(name="send_email", description="Send an email message to a recipient.", kind="external"),
    ToolSpec(name="convert_currency", description="Convert an amount between two currencies.", kind="external"),
    ToolSpec(name="book_table", description="Reserve a table at a restaurant.", kind="external"),
    ToolSpec(name="play_music", description="Play a song or playlist on the speaker.", kind="external"),
]


def _hit(name: str, score: float) -> RouteHit:
    return RouteHit(name=name, score=score, kind="external", doc_id=None, tool_id=name, description="")


def test_close_to_best_keeps_the_leading_tools_within_the_margin() -> None:
    hits = [_hit("a", 0.8), _hit("b", 0.7), _hit("c", 0.59), _hit("d", 0.2)]
    assert [h.name for h in close_to_best(hits, 0.2)] == ["a", "b"]
    assert [h.name for h in close_to_best(hits, 0.0)] == ["a"] and close_to_best([], 0.2) == []


@pytest.fixture
def tools_router(make_router, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AGENTIC_ROUTER_ABSTAIN_QUANTILE", "0.75")  # margins measured at this quantile (CLI too)
    router = make_router()
    router.add_tools(TOOLS)
    return router


def test_python_auto_returns_fewer_tools_than_k_max_and_none_when_nothing_fits(tools_router) -> None:
    full = tools_router.route("will it rain in Oslo tomorrow", k=5)
    auto = tools_router.route("will it rain in Oslo tomorrow", k="auto")
    assert auto and auto[0].name == "get_weather" and len(auto) < len(full)
    assert all(h.score >= auto[0].score - tools_router.config.auto_k_margin for h in auto)
    assert tools_router.abstains(tools_router.route("who painted the Mona Lisa", k=5))
    assert tools_router.route("who painted the Mona Lisa", k="auto") == []  # the router abstains: none


def test_cli_k_auto_and_a_bad_k(tools_router) -> None:
    ws = ["--workspace", str(tools_router.config.workspace), "--llm", "none"]
    got = CliRunner().invoke(main, [*ws, "route", "will it rain in Oslo tomorrow", "-k", "auto", "--json"])
    assert got.exit_code == 0, got.output
    data = json.loads(got.stdout)
    assert data["tools"][0]["name"] == "get_weather" and 1 <= len(data["tools"]) < 5 and data["abstain"] is False
    none = json.loads(CliRunner().invoke(main, [*ws, "route", "who painted the Mona Lisa", "-k", "auto",
                                                "--json"]).stdout)
    assert none == {"query": "who painted the Mona Lisa", "tools": [], "abstain": True}
    bad = CliRunner().invoke(main, [*ws, "route", "rain", "-k", "many"])
    assert bad.exit_code == 2 and "neither a number of tools nor 'auto'" in bad.output
