"""Scoring, intent and weight calibration on hand-built evidence: no model, no store."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agentic_router.indexes.lexical.cache import LexicalMatch
from agentic_router.indexes.schema import ToolSpec
from agentic_router.router.retrieval.scoring import Evidence, Weights, kind_intent, score
from agentic_router.training.calibrate import Gathered, calibration_grid, choose_weights
from agentic_router.training.evaluate import LabelledQuery

EXT = {n: ToolSpec(name=n, description=f"{n} tool", kind="external") for n in ("alpha", "beta", "gamma")}
DOC = {f"{k}_d{i}": ToolSpec(name=f"{k}_d{i}", description="d", kind=k, doc_id=f"d{i}")
       for i in (1, 2) for k in ("vector", "summary", "keyword")}


@pytest.mark.parametrize("query, kind", [
    ("Give me an overview of the paper", "summary"),
    ("compare the two treatments", "summary"),
    ("ACE2 receptor", "keyword"),
    ('where does it mention "spike protein" in the text', "keyword"),
    ("What dose was given to the patients?", "vector"),
    ("how many", "vector"),  # short, but a question word: a fact is asked for
])
def test_kind_intent(query: str, kind: str) -> None:
    assert kind_intent(query) == kind


def test_external_tools_mix_card_and_bm25_by_the_lexical_weight() -> None:
    ev = Evidence(specs=dict(EXT), card={"alpha": 0.6, "beta": 0.5, "gamma": 0.1},
                  lex_cards=LexicalMatch({"beta": 4.0, "gamma": 2.0}, best=4.0, ceiling=8.0))
    # best-normalised: alpha 0.6*0.6 = 0.36; beta 0.6*0.5 + 0.4*1.0 = 0.70; gamma 0.06 + 0.4*0.5 = 0.26
    hits = score(ev, Weights(tool_lexical_weight=0.4, tool_lexical_norm="best"))
    assert [(h.name, h.score) for h in hits] == [("beta", 0.7), ("alpha", 0.36), ("gamma", 0.26)]
    # ceiling-normalised, the same BM25 is half as strong: beta 0.30 + 0.4*0.5 = 0.50
    assert score(ev, Weights(tool_lexical_weight=0.4, tool_lexical_norm="ceiling"))[0].score == 0.5
    assert [h.name for h in score(ev, Weights(tool_lexical_weight=0.0))] == ["alpha", "beta", "gamma"]
    # the documents' weight and norm do not touch application tools
    assert score(ev, Weights(lexical_weight=1.0, lexical_norm="ceiling", tool_lexical_weight=0.4,
                             tool_lexical_norm="best")) == hits


def test_document_tools_follow_their_own_lexical_weight() -> None:
    ev = Evidence(specs=dict(DOC), card={n: 0.2 for n in DOC}, chunk={"d1": 0.8, "d2": 0.5},
                  lex_docs=LexicalMatch({"d2": 3.0}, best=3.0, ceiling=3.0))
    # chunks: d1 dense 0.71 beats d2 0.455 on embeddings; with BM25 at 0.5, d2 0.2275 + 0.5 = 0.7275 > 0.355
    assert score(ev, Weights(lexical_weight=0.0, tool_lexical_weight=1.0))[0].doc_id == "d1"
    assert score(ev, Weights(lexical_weight=0.5, tool_lexical_weight=0.0))[0].doc_id == "d2"


def test_document_tools_take_their_best_chunk_and_the_kind_asked_for() -> None:
    ev = Evidence(intent="summary", specs=dict(DOC), card={n: 0.2 for n in DOC}, chunk={"d1": 0.8, "d2": 0.5},
                  passages={"d1": "the passage"})
    hits = score(ev, Weights(card_weight=0.15, lexical_weight=0.0, kind_bonus=0.05))
    # d1: 0.15*0.2 + 0.85*0.8 = 0.71, +0.05 for the summary tool; d2: 0.03 + 0.425 = 0.455; ties by name
    assert [(h.name, h.score) for h in hits[:4]] == [
        ("summary_d1", 0.76), ("keyword_d1", 0.71), ("vector_d1", 0.71), ("summary_d2", 0.505)]
    assert hits[0].evidence == "the passage" and hits[0].evidence_score == 0.8
    # a document with no chunk among the nearest gets the weakest similarity seen (0.5 here), not 0
    lone = score(replace(ev, chunk={"d1": 0.8, "d2": 0.5}, specs={**DOC}), Weights(lexical_weight=0.0))
    assert lone[-1].evidence_score == 0.5


def test_memory_votes_only_above_the_floor_and_never_for_its_own_record() -> None:
    ev = Evidence(specs=dict(EXT), card={"alpha": 0.6, "beta": 0.3, "gamma": 0.1},
                  memory=[("r1", "beta", 0.9), ("r2", "gamma", 0.45)])
    assert ev.memory_votes(0.5) == {"beta": pytest.approx(0.8)}  # (0.9 - 0.5) / 0.5; gamma is below the floor
    hits = score(ev, Weights(lexical_weight=0.0, memory_weight=0.5, memory_floor=0.5))
    assert hits[0].name == "beta"  # 0.5*0.3 + 0.5*0.8 = 0.55 > alpha 0.5*0.6 = 0.30
    assert score(replace(ev, exclude=frozenset({"r1"})), Weights(lexical_weight=0.0))[0].name == "alpha"
    assert score(ev, Weights(lexical_weight=0.0, memory_weight=0.0))[0].name == "alpha"


def _gathered(n_fixed: int, n_broken: int, n_same: int) -> Gathered:
    """Questions whose right tool BM25 finds but embeddings miss (fixed by more BM25), the reverse
    (broken by it), and questions both get right."""
    rows = []
    for i in range(n_fixed):
        rows.append(("beta", Evidence(specs=dict(EXT), card={"alpha": 0.6, "beta": 0.5},
                                      lex_cards=LexicalMatch({"beta": 5.0}, 5.0, 5.0))))
    for i in range(n_broken):
        rows.append(("alpha", Evidence(specs=dict(EXT), card={"alpha": 0.6, "beta": 0.4},
                                       lex_cards=LexicalMatch({"beta": 5.0}, 5.0, 5.0))))
    for i in range(n_same):
        rows.append(("gamma", Evidence(specs=dict(EXT), card={"gamma": 0.9, "alpha": 0.1})))
    queries = [LabelledQuery(str(i), f"q{i}", (gold,)) for i, (gold, _) in enumerate(rows)]
    return Gathered(queries, [ev for _, ev in rows], "tool")


def test_calibration_moves_the_weights_only_on_a_clear_win() -> None:
    current = Weights(tool_lexical_weight=0.0, tool_lexical_norm="best", memory_weight=0.0)
    grid = [current, replace(current, tool_lexical_weight=0.1), replace(current, tool_lexical_weight=0.5)]
    # fixed rows: at 0.0 alpha 0.6 beats beta 0.5 (wrong); at 0.1 beta 0.9*0.5 + 0.1 = 0.55 > alpha 0.54.
    # broken rows: at 0.1 beta 0.46 < alpha 0.54 (still right); at 0.5 beta 0.2 + 0.5 = 0.7 > alpha 0.3.
    clear = choose_weights(_gathered(n_fixed=12, n_broken=0, n_same=5), current, grid)
    assert clear["changed"] and clear["weights"]["tool_lexical_weight"] == 0.1
    # 3 fixed and none broken is within noise (3 < 2 * sqrt(3)): the current weights stay
    noisy = choose_weights(_gathered(n_fixed=3, n_broken=1, n_same=5), current, grid)
    assert not noisy["changed"] and noisy["weights"]["tool_lexical_weight"] == 0.0
    rows = {r["weights"]["tool_lexical_weight"]: (r["fixed"], r["broken"]) for r in noisy["grid"]}
    assert rows == {0.0: (0, 0), 0.1: (3, 0), 0.5: (3, 1)}


def test_the_calibration_grid_contains_the_default_and_varies_the_labelled_kind() -> None:
    default = Weights()
    for level, key, other in (("tool", "tool_lexical_weight", "lexical_weight"),
                              ("document", "lexical_weight", "tool_lexical_weight")):
        grid = calibration_grid(default, level)
        assert default in grid
        assert len({getattr(w, key) for w in grid}) > 1 and {getattr(w, other) for w in grid} == {getattr(default, other)}


def test_a_weight_setting_is_a_system_of_eval_compare() -> None:
    from agentic_router.indexes.errors import InputError
    from agentic_router.training.report import weights_from_spec

    got = weights_from_spec(Weights(), "tool_lexical_weight=0.4+tool_lexical_norm=best")
    assert (got.tool_lexical_weight, got.tool_lexical_norm, got.lexical_weight) == (0.4, "best", Weights().lexical_weight)
    with pytest.raises(InputError, match="'lexical' is not a routing weight"):
        weights_from_spec(Weights(), "lexical=0.4")
    with pytest.raises(InputError, match="tool_lexical_norm must be one of best, ceiling, ceiling_all"):
        weights_from_spec(Weights(), "tool_lexical_norm=max")
    with pytest.raises(InputError, match="needs a number"):
        weights_from_spec(Weights(), "memory_weight=lots")


def test_weights_calibrated_at_tool_level_before_the_split_still_mean_the_cards(tmp_path) -> None:
    import json

    from agentic_router.indexes.config import RouterConfig
    from agentic_router.router.workspace import Workspace

    workspace = Workspace(RouterConfig.load(tmp_path))
    workspace.weights_path.write_text(json.dumps({"weights": {"lexical_weight": 0.5}, "level": "tool"}))
    got = workspace.routing_weights()
    assert (got.tool_lexical_weight, got.lexical_weight) == (0.5, Weights().lexical_weight)
    workspace.close()
