"""`finetune` in one call, on a catalog whose cards say nothing (codenames): real embedder, real Chroma.

The base router can only guess which codename serves a request; labelled requests must fix that at once
(usage memory) and the held-out decision must be the one the printed figures support.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_jsonl

import agentic_router.training.finetune as finetune_module
from agentic_router.cli import main
from agentic_router.indexes.errors import InputError
from agentic_router.indexes.schema import ToolSpec
from agentic_router.router.app import AgenticRouter
from agentic_router.router.retrieval.scoring import Weights
from agentic_router.training.evaluate import LabelledQuery
from agentic_router.training.finetune import SYNTHETIC_TRAIN_SECONDS, Candidate, finetune, split, synthetic_winner

CODENAMES = ["orion", "lyra", "vega", "draco", "cygnus"]
TOPICS = {
    "orion": ["will it rain in {} tomorrow", "weather forecast for {}", "how hot is it in {} today",
              "is it snowing in {}", "do I need an umbrella in {}", "temperature in {} this weekend",
              "wind speed in {} right now", "sunny or cloudy in {} later"],
    "lyra": ["convert 20 euros to dollars for {}", "exchange rate of yen for my trip to {}",
             "how many pounds is 50 dollars in {}", "change 100 francs into euros before {}",
             "currency conversion for {}", "what is 30 dollars in pesos for {}",
             "swap my rupees to euros in {}", "price of one euro in dollars for {}"],
    "vega": ["email my manager that I am late to {}", "send a message to the team about {}",
             "write to alice about the {} meeting", "mail the invoice to the {} office",
             "notify bob by email about {}", "send an email reminder about {}",
             "drop a note to hr about {}", "email the client the {} report"],
    "draco": ["open a support ticket about the {} outage", "my laptop in {} is broken, file a ticket",
              "report a bug in the {} portal", "help desk request for {} printer",
              "raise an incident for the {} server", "log a ticket: vpn fails in {}",
              "create a helpdesk case for {}", "the {} website is down, tell support"],
    "cygnus": ["book a table for two in {}", "reserve a restaurant in {} tonight",
               "find a dinner reservation in {}", "table for four at a sushi place in {}",
               "book brunch in {} on sunday", "reserve seats at a bistro in {}",
               "get me a dinner booking in {}", "make a lunch reservation in {}"],
}
# every request names another city: a city shared across topics would make requests alike for the wrong reason
CITIES = ["Lisbon", "Oslo", "Kyoto", "Quito", "Perth", "Accra", "Hanoi", "Tunis", "Lima", "Riga", "Dakar", "Porto",
          "Cusco", "Bergen", "Osaka", "Cairo", "Tallinn", "Nairobi", "Seville", "Hobart", "Bogota", "Turin", "Minsk",
          "Malmo", "Busan", "Lagos", "Zagreb", "Sapporo", "Leeds", "Dublin", "Havana", "Split", "Austin", "Denver",
          "Geneva", "Krakow", "Manila", "Ghent", "Bremen", "Halifax"]


def _requests() -> list[dict]:
    rows = []
    for t, (tool, patterns) in enumerate(TOPICS.items()):
        for i, pattern in enumerate(patterns):
            rows.append({"qid": f"{tool}-{i}", "query": pattern.format(CITIES[8 * t + i]), "gold": [tool]})
    return rows


@pytest.fixture
def codename_router(make_router):
    router = make_router()
    router.add_tools([ToolSpec(name=n, description=f"The {n.title()} service.", kind="external") for n in CODENAMES])
    return router


def test_split_is_seeded_and_disjoint() -> None:
    queries = [LabelledQuery(str(i), f"q{i}", ("t",)) for i in range(50)]
    train, held = split(queries, 0.2, seed=3)
    assert len(held) == 10 and len(train) == 40
    assert not {q.qid for q in train} & {q.qid for q in held}
    assert split(queries, 0.2, seed=3) == (train, held) and split(queries, 0.2, seed=4) != (train, held)


def test_finetune_from_logs_records_judges_on_held_out_and_activates_only_a_winner(codename_router,
                                                                                   tmp_path: Path) -> None:
    rows = _requests()
    logs = write_jsonl(tmp_path / "logs.jsonl", rows + [{"qid": "x", "query": "play some jazz", "gold": []}])
    before = sum(codename_router.route(r["query"], k=1)[0].name == r["gold"][0] for r in rows) / len(rows)
    assert before < 0.6  # the premise: codenames leave the base router guessing

    report = finetune(codename_router.view, from_queries=logs, methods=["full"], heldout_share=0.25,
                      progress=False, max_steps=4, batch_size=8, threads=1)
    assert report.mode == "logs" and report.labelled == 40 and report.unanswerable == 1
    assert report.recorded == 40 and codename_router.catalog.usage.count() == 40
    assert (report.train, report.heldout) == (30, 10)
    names = [c["name"] for c in report.candidates]
    assert names[0] == "current" and any(n.startswith("finetune-full-") for n in names)
    current = report.candidates[0]
    best = max(report.candidates, key=lambda c: (c["hit@1"], c["mrr"]))
    # held-out requests are routed with their own records left out: the records of the others must carry them
    assert best["hit@1"] >= 0.8 > before and report.chosen == best["name"] != "current"
    trained_won = report.chosen.startswith("finetune-full-")
    assert trained_won == (report.activated == report.chosen)
    if trained_won:
        assert best["hit@1"] > current["hit@1"] and codename_router.registry.active()["embedder"] == report.chosen
    else:
        assert codename_router.registry.active()["embedder"] is None
    # an off-catalog request among the logs sets an abstain threshold: the fit that keeps 90% of the answerable
    # requests answered (codename cards fit real requests barely at all, so it may come out 0: never abstain)
    assert report.weights is not None and report.weights["abstain_below"] >= 0
    assert any(d.startswith("abstain below fit") and "keeps 90%" in d for d in report.decisions), report.decisions
    reopened = AgenticRouter.open(codename_router.config.workspace, llm_provider="none")  # as the next command would
    try:
        assert reopened.route("will it be windy in Madrid", k=1)[0].name == "orion"
        assert reopened.view.weights.abstain_below == report.weights["abstain_below"]
    finally:
        reopened.close()


def test_no_activate_changes_nothing_but_the_memory(codename_router, tmp_path: Path) -> None:
    logs = write_jsonl(tmp_path / "logs.jsonl", _requests())
    report = finetune(codename_router.view, from_queries=logs, methods=[], activate_result=False, progress=False)
    assert report.recorded == 40 and not report.weights_changed and report.activated is None
    assert not codename_router.workspace.weights_path.exists()
    assert codename_router.registry.active()["embedder"] is None


def test_few_labelled_requests_only_fill_the_memory(codename_router, tmp_path: Path) -> None:
    logs = write_jsonl(tmp_path / "logs.jsonl", _requests()[:5])
    report = finetune(codename_router.view, from_queries=logs, progress=False)
    assert report.recorded == 5 and report.candidates == [] and report.train == 0
    assert "nothing trained" in report.decisions[-1]


def test_recorded_feedback_counts_as_labelled_requests(codename_router) -> None:
    codename_router.record_requests([(r["query"], r["gold"][0]) for r in _requests()])
    report = finetune(codename_router.view, methods=[], activate_result=False, progress=False)
    assert report.mode == "logs" and report.labelled == 40 and report.recorded == 0


def test_bad_arguments_are_one_line_errors(codename_router, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown method 'cross'"):
        finetune(codename_router.view, methods=["cross"], progress=False)
    with pytest.raises(InputError, match="no such file"):
        finetune(codename_router.view, from_queries=tmp_path / "missing.jsonl", progress=False)
    runner = CliRunner()
    ws = ["--workspace", str(codename_router.config.workspace), "--llm", "none"]
    out = runner.invoke(main, [*ws, "finetune", "--methods", "nope"])
    assert out.exit_code == 1 and "unknown method 'nope'" in out.output


def test_cli_finetune_json(codename_router, tmp_path: Path) -> None:
    logs = write_jsonl(tmp_path / "logs.jsonl", _requests())
    ws = ["--workspace", str(codename_router.config.workspace), "--llm", "none"]
    out = CliRunner().invoke(main, [*ws, "finetune", "--from-queries", str(logs), "--methods", "", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["mode"] == "logs" and data["recorded"] == 40 and data["candidates"][0]["name"] == "current"


def test_generated_evidence_activates_only_what_ranks_better_at_the_top_and_no_worse_on_average() -> None:
    current = Candidate("current", None, Weights(), hit1=0.80, mrr=0.88)

    def trained(hit1: float, mrr: float) -> Candidate:
        return Candidate("t", "t", Weights(), trained=True, hit1=hit1, mrr=mrr)

    assert synthetic_winner(trained(0.81, 0.88), current)
    assert not synthetic_winner(trained(0.80, 0.90), current)  # a tie at the top is not a reason to change
    assert not synthetic_winner(trained(0.82, 0.87), current)  # better first, worse on average: keep
    assert not synthetic_winner(trained(0.79, 0.86), current)


def test_finetune_without_logs_generates_trains_one_epoch_budget_and_decides_on_generated_questions(
        router, monkeypatch: pytest.MonkeyPatch) -> None:
    budgets: list[float] = []
    real_train = finetune_module.train_version

    def observed(view, method, path, **settings):
        budgets.append(settings["max_seconds"])
        return real_train(view, method, path, **settings)

    monkeypatch.setattr(finetune_module, "train_version", observed)
    report = finetune(router.view, llm=None, methods=["full"], progress=False, max_steps=2, batch_size=8, threads=1)
    assert report.mode == "synthetic" and report.warning and report.labelled == 0
    assert budgets == [SYNTHETIC_TRAIN_SECONDS]  # a whole epoch by default, not the five minutes of the logs path
    assert report.heldout > 0 and report.train > report.heldout
    current, trained = report.candidates
    assert current["name"] == "current" and trained["name"].startswith("finetune-full-")
    as_candidates = [Candidate(c["name"], None, Weights(), hit1=c["hit@1"], mrr=c["mrr"]) for c in (current, trained)]
    wins = synthetic_winner(as_candidates[1], as_candidates[0])
    assert (report.activated == trained["name"]) == wins
    assert router.registry.active()["embedder"] == (trained["name"] if wins else None)
    assert not router.workspace.weights_path.exists()  # generated questions never move the weights
