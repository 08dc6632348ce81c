"""Ranking metrics and the fusion sign test on hand-computed examples.

Every expected figure is written out as the arithmetic that produces it, independently of the code under
test, so a changed formula (a log base, an off-by-one rank, a different tie rule) makes a test fail.
"""

from __future__ import annotations

import math

import pytest

from agentic_router.router.retrieval.rerank import DEFAULT_WEIGHT
from agentic_router.training.fusion import calibrate_fusion, clearly_better
from agentic_router.training.metrics import HIT_KS, dedupe, first_rank, ndcg_at, score_rankings

LOG2_3 = 1.584962500721156  # log2(3)
LOG2_5 = 2.321928094887362  # log2(5)


def test_log_constants_are_what_the_comments_say() -> None:
    """The hand computations below lean on these two numbers."""
    assert LOG2_3 == pytest.approx(math.log2(3)) and LOG2_5 == pytest.approx(math.log2(5))


# ---- dedupe and first_rank -----------------------------------------------------------------------------
def test_dedupe_keeps_the_first_occurrence_in_order() -> None:
    # a tool ranking seen at document level: d1's second tool (rank 3) must not push d3 down
    assert dedupe(["d1", "d2", "d1", "d3", "d2"]) == ["d1", "d2", "d3"]
    assert dedupe([3, 1, 3, 2, 1]) == [3, 1, 2]  # the adapter ranks row numbers
    assert dedupe([]) == []
    assert dedupe(iter("abca")) == ["a", "b", "c"]  # any iterable, read once


def test_first_rank_is_one_based_and_takes_the_best_gold() -> None:
    assert first_rank(["a", "b", "c"], {"a"}) == 1
    assert first_rank(["x", "y", "g2", "g1"], {"g1", "g2"}) == 3  # either gold id counts
    assert first_rank(["x", "y"], {"g"}) is None
    assert first_rank([], {"g"}) is None


# ---- NDCG@10 -------------------------------------------------------------------------------------------
def test_ndcg_single_gold() -> None:
    assert ndcg_at(["g", "x"], {"g"}) == 1.0
    # gold at rank 2: DCG = 1/log2(3), ideal = 1/log2(2) = 1  ->  1/1.58496 = 0.63093
    assert ndcg_at(["x", "g"], {"g"}) == pytest.approx(1 / LOG2_3) == pytest.approx(0.6309297536)
    # gold at rank 4: DCG = 1/log2(5) = 0.43068
    assert ndcg_at(["x", "y", "z", "g"], {"g"}) == pytest.approx(0.4306765581)


def test_ndcg_several_gold_ids() -> None:
    # gold at ranks 2 and 4: DCG = 1/log2(3) + 1/log2(5) = 0.63093 + 0.43068 = 1.06161
    # ideal puts both first: 1/log2(2) + 1/log2(3) = 1 + 0.63093 = 1.63093  ->  1.06161/1.63093 = 0.65092
    assert ndcg_at(["x", "a", "y", "b"], {"a", "b"}) == pytest.approx(0.6509209298)
    # only one of two gold ids found, at rank 1: DCG = 1, ideal = 1.63093  ->  0.61315
    assert ndcg_at(["a", "x"], {"a", "b"}) == pytest.approx(0.6131471928)
    assert ndcg_at(["b", "a", "x"], {"a", "b"}) == 1.0  # both gold first, in either order


def test_ndcg_counts_only_the_first_ten_and_caps_the_ideal_at_ten() -> None:
    ranked = [f"x{i}" for i in range(10)] + ["g"]
    assert ndcg_at(ranked, {"g"}) == 0.0  # rank 11 is outside NDCG@10
    assert ndcg_at(ranked, {"g"}, k=11) == pytest.approx(1 / math.log2(12))  # 1/log2(12) = 0.27894
    # twelve gold ids, all ranked first: the ideal DCG stops at ten, so this is a perfect 1.0, not 10/12ths
    gold = {f"g{i}" for i in range(12)}
    assert ndcg_at(sorted(gold), gold) == pytest.approx(1.0)


def test_ndcg_with_nothing_to_find_is_zero() -> None:
    assert ndcg_at([], {"g"}) == 0.0
    assert ndcg_at(["x", "y"], set()) == 0.0  # no gold: no division by a zero ideal


# ---- aggregate figures ---------------------------------------------------------------------------------
def test_score_rankings_on_four_hand_computed_queries() -> None:
    rankings = [
        ["a", "b", "c"],  # gold a at rank 1
        ["x", "y", "g", "z"],  # golds g, z: first at rank 3, second at rank 4
        ["p", "q"],  # no hit
        ["v1", "v2", "v3", "v4", "v5", "v6", "h", "v8"],  # gold h at rank 7
    ]
    golds = [{"a"}, {"g", "z"}, {"r"}, {"h"}]
    scores = score_rankings(rankings, golds)
    assert set(scores) == {"n", "mrr", "ndcg@10", *(f"hit@{k}" for k in HIT_KS), "recall@5", "complete@5", "multi_n"}
    assert scores["n"] == 4
    # the one request needing two tools (g, z) has both in its top 5
    assert (scores["multi_n"], scores["recall@5"], scores["complete@5"]) == (1, 1.0, 1.0)
    # first ranks 1, 3, none, 7
    assert scores["hit@1"] == 1 / 4  # rank 1
    assert scores["hit@3"] == 2 / 4  # ranks 1 and 3
    assert scores["hit@5"] == 2 / 4  # rank 7 is still out
    assert scores["hit@10"] == 3 / 4
    # MRR = (1/1 + 1/3 + 0 + 1/7) / 4 = (1 + 0.33333 + 0.14286) / 4 = 0.36905
    assert scores["mrr"] == pytest.approx(0.3690476190)
    # NDCG: q1 = 1
    #       q2 = (1/log2(4) + 1/log2(5)) / (1 + 1/log2(3)) = (0.5 + 0.43068) / 1.63093 = 0.57064
    #       q3 = 0
    #       q4 = (1/log2(8)) / 1 = 1/3
    #       mean = (1 + 0.57064 + 0 + 0.33333) / 4 = 0.47599
    assert scores["ndcg@10"] == pytest.approx(0.4759938)


def test_score_rankings_of_no_queries_is_all_zero() -> None:
    assert score_rankings([], []) == {"n": 0, "hit@1": 0.0, "hit@3": 0.0, "hit@5": 0.0, "hit@10": 0.0,
                                      "mrr": 0.0, "ndcg@10": 0.0}


def test_an_empty_ranking_is_a_miss_not_an_error() -> None:
    # the router found nothing for the second question: it counts in n and scores 0 everywhere
    scores = score_rankings([["g"], []], [{"g"}, {"g"}])
    assert scores["n"] == 2
    assert scores["hit@1"] == scores["hit@10"] == scores["mrr"] == scores["ndcg@10"] == 0.5


def test_score_rankings_on_row_numbers() -> None:
    # the adapter trainer scores row indices: rank 2 -> hit@1 0, hit@3 1, MRR 1/2, NDCG 1/log2(3)
    scores = score_rankings([[5, 2, 9]], [{2}])
    assert (scores["hit@1"], scores["hit@3"], scores["mrr"]) == (0.0, 1.0, 0.5)
    assert scores["ndcg@10"] == pytest.approx(0.6309297536)


# ---- the fusion sign test ------------------------------------------------------------------------------
@pytest.mark.parametrize(("fixed", "broken", "expected"), [
    (4, 0, True),  # net 4 >= 2*sqrt(4) = 4: exactly on the line passes
    (3, 0, False),  # net 3 <  2*sqrt(3) = 3.46
    (9, 1, True),  # net 8 >= 2*sqrt(10) = 6.32
    (12, 4, True),  # net 8 >= 2*sqrt(16) = 8: on the line
    (11, 4, False),  # net 7 <  2*sqrt(15) = 7.75
    (10, 4, False),  # net 6 <  2*sqrt(14) = 7.48
    (3, 2, False),  # "one more right" is noise: net 1 < 2*sqrt(5) = 4.47
    (30, 15, True),  # net 15 >= 2*sqrt(45) = 13.42
    (0, 0, False),  # nothing changed
    (0, 4, False),  # a clear loss is never "clearly better"
    (4, 4, False),  # net 0
])
def test_clearly_better_is_a_two_standard_error_sign_test(fixed: int, broken: int, expected: bool) -> None:
    assert clearly_better(fixed, broken) is expected


def test_calibration_without_questions_keeps_the_default_weight() -> None:
    """No held-out questions: nothing to measure, so no model is touched and the default weight stands."""
    result = calibrate_fusion(view=None, reranker=None, queries=[])  # type: ignore[arg-type]
    assert result["weight"] == DEFAULT_WEIGHT and result["calibrated"] is False and result["n"] == 0


def test_requests_needing_several_tools_get_recall_and_complete_at_5() -> None:
    rankings = [["a", "x", "b", "y", "z", "c"], ["p", "q", "r", "s", "t"], ["m"]]
    golds = [{"a", "b", "c"}, {"q", "s"}, {"m"}]
    m = score_rankings(rankings, golds)
    # first request: a and b in the top 5, c at 6 -> 2/3, not complete; second: both -> 1, complete.
    # The third needs one tool and does not count.
    assert m["multi_n"] == 2
    assert m["recall@5"] == pytest.approx((2 / 3 + 1.0) / 2)
    assert m["complete@5"] == pytest.approx(0.5)
    assert "recall@5" not in score_rankings([["a"]], [{"a"}])
