""""No tool fits": the router abstains below a calibrated fit, eval scores it, the agent calls nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_jsonl

from agentic_router.cli import main
from agentic_router.indexes.schema import RouteHit, ToolSpec
from agentic_router.router.retrieval.scoring import fit
from agentic_router.training.calibrate import abstain_threshold
from agentic_router.training.evaluate import LabelledQuery, abstain_metrics, evaluate

TOOLS = [
    ToolSpec(name="get_weather", description="Current weather and forecast for a city.", kind="external"),
    ToolSpec(name="send_email", description="Send an email message to a recipient.", kind="external"),
    ToolSpec(name="convert_currency", description="Convert an amount between two currencies.", kind="external"),
]


class FixedSystem:
    """Answers every question with one hit of a given fit; abstains below 0.5."""

    name = "fixed"

    def __init__(self, fits: dict[str, float]) -> None:
        self.fits = fits

    def rank(self, query: str, depth: int) -> list[RouteHit]:
        return [RouteHit(name="t", score=1.0, kind="external", doc_id=None, tool_id="t", description="",
                         card_score=self.fits[query])]

    def abstains(self, hits: list[RouteHit]) -> bool:
        return (hits[0].card_score or 0.0) < 0.5


def test_eval_counts_an_abstain_on_an_answerable_request_as_a_miss() -> None:
    queries = [LabelledQuery("1", "a", ("t",)), LabelledQuery("2", "b", ("t",)), LabelledQuery("3", "c", ()),
               LabelledQuery("4", "d", ())]
    m = evaluate(FixedSystem({"a": 0.9, "b": 0.3, "c": 0.2, "d": 0.7}), queries, level="tool")
    # answerable: a answered and right, b abstained (a miss) -> hit@1 1/2, answered 1/2
    # unanswerable: c abstained (right), d answered (wrong) -> recall 1/2; abstentions b, c -> precision 1/2
    assert m["n"] == 2 and m["hit@1"] == 0.5 and m["answered"] == 0.5
    assert (m["abstain_precision"], m["abstain_recall"], m["unanswerable_n"]) == (0.5, 0.5, 2)
    assert m["abstain_curve"][0]["answered"] == 1.0  # the lowest threshold abstains on nothing
    assert "answered" not in evaluate(FixedSystem({"a": 0.9}), queries[:1], level="tool")


def test_abstain_metrics_and_threshold_by_hand() -> None:
    assert abstain_metrics([True, False, False], [True, True, False]) == {
        "abstain_precision": 1.0, "abstain_recall": 0.5, "answered": 1.0, "unanswerable_n": 2}
    fits = [0.1 * i for i in range(1, 11)]  # 0.1 .. 1.0: keeping 90% answered means abstaining below ~0.19
    assert abstain_threshold(fits) == pytest.approx(0.19)
    assert abstain_threshold([]) == 0.0


def test_route_abstains_below_the_threshold_and_query_calls_nothing(make_router) -> None:
    never = make_router("never", abstain_quantile=0.0)
    never.add_tools(TOOLS)
    hits = never.route("What is the capital of Mongolia?", k=3)
    assert never.abstains(hits) is False  # abstain_quantile 0 and no calibrated threshold: never abstains
    strict = make_router("strict", abstain_below=0.95)
    strict.add_tools(TOOLS)
    assert strict.abstains(strict.route("What is the capital of Mongolia?", k=3)) is True
    result = strict.query("What is the capital of Mongolia?")
    assert result.answer == "No tool in the catalog fits this request." and result.tools_called == []


def test_with_no_labels_a_request_that_fits_no_better_than_small_talk_gets_no_tool(make_router) -> None:
    router = make_router(abstain_quantile=0.75)  # the margins below were measured at this quantile
    router.add_tools(TOOLS)
    view = router.view
    threshold = view.background.threshold(view.weights.abstain_quantile)
    assert 0.0 < threshold < 0.3
    for question, none_fits in (("will it rain in Oslo", False), ("send a message to Ana", False),
                                ("who painted the Mona Lisa", True), ("how tall is Everest", True)):
        hits = router.route(question, k=3)
        assert abs(fit(hits) - threshold) >= 0.05, (question, fit(hits), threshold)  # the premise, with a margin
        assert router.abstains(hits) is none_fits, question
    # measured once per catalog size: a catalog that grew by more than a tenth is measured again
    measured = view.background._measured
    router.add_tools([ToolSpec(name=f"extra_{i}", description=f"Book room {i} of the office", kind="external")
                      for i in range(3)])
    view.background.threshold(0.5)
    assert view.background._measured is not measured and view.background._measured.size == 6


def test_eval_and_calibrate_with_requests_no_tool_fits(make_router, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTIC_ROUTER_ABSTAIN_QUANTILE", "0")  # what calibrate does from never abstaining
    router = make_router()
    router.add_tools(TOOLS)
    rows = [{"qid": f"w{i}", "query": q, "gold": ["get_weather"]} for i, q in enumerate(
        ["will it rain in Oslo", "weather in Paris tomorrow", "forecast for Lisbon", "is it sunny in Rome"])]
    rows += [{"qid": f"e{i}", "query": q, "gold": ["send_email"]} for i, q in enumerate(
        ["email my boss", "send a message to Ana", "write an email to the team"])]
    rows += [{"qid": f"n{i}", "query": q, "gold": []} for i, q in enumerate(
        ["who painted the Mona Lisa", "how tall is Everest", "tell me a joke about cats"])]
    queries = write_jsonl(tmp_path / "q.jsonl", rows)
    ws = ["--workspace", str(router.config.workspace), "--llm", "none"]
    out = tmp_path / "m.json"
    run = CliRunner().invoke(main, [*ws, "eval", "--queries", str(queries), "--level", "tool", "--json", str(out)])
    assert run.exit_code == 0, run.output
    m = json.loads(out.read_text())
    assert m["n"] == 7 and m["unanswerable_n"] == 3 and m["answered"] == 1.0 and m["abstain_recall"] == 0.0
    cal = CliRunner().invoke(main, [*ws, "calibrate", "--queries", str(queries), "--json"])
    assert cal.exit_code == 0, cal.output
    chosen = json.loads(cal.output)
    assert chosen["changed"] is True and 0.0 < chosen["weights"]["abstain_below"] < 1.0
    assert json.loads(router.workspace.weights_path.read_text())["weights"]["abstain_below"] == \
        chosen["weights"]["abstain_below"]
    again = CliRunner().invoke(main, [*ws, "eval", "--queries", str(queries), "--level", "tool", "--json", str(out)])
    assert again.exit_code == 0, again.output
    after = json.loads(out.read_text())
    # the 10% quantile of 7 answerable fits lies between the lowest two: one request loses its answer
    assert after["answered"] == pytest.approx(6 / 7) and after["hit@1"] <= m["hit@1"]
    threshold = chosen["weights"]["abstain_below"]
    for question in ("will it rain in Oslo", "weather in Paris tomorrow", "how tall is Everest"):
        shown = json.loads(CliRunner().invoke(main, [*ws, "route", question, "--json"]).output)
        top = shown["tools"][0]
        assert shown["abstain"] is (max(top["card_score"] or 0, top["evidence_score"] or 0) < threshold)
