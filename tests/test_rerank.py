"""Reranking is fused with the router's score, and the fusion weight is chosen on held-out questions."""

from __future__ import annotations

from agentic_router.indexes.schema import RouteHit
from agentic_router.router.retrieval.rerank import (
    ALONE,
    best_window,
    fuse,
    passage_windows,
    reranker_scores,
    window_scores,
)
from agentic_router.training.evaluate import LabelledQuery
from agentic_router.training.fusion import calibrate_fusion


class KeywordReranker:
    """A stand-in cross-encoder that scores a passage 1.0 when it contains ``word`` (deterministic)."""

    def __init__(self, word: str) -> None:
        self.word = word

    def predict(self, pairs, show_progress_bar=False):  # noqa: ANN001, ANN201
        return [1.0 if self.word in text.lower() else 0.0 for _, text in pairs]


def _hits() -> list[RouteHit]:
    return [RouteHit(name=n, score=s, kind="external", doc_id=None, tool_id=n, description=d)
            for n, s, d in (("a", 0.9, "first"), ("b", 0.5, "second"), ("c", 0.4, "third"))]


def test_fuse_weight_zero_keeps_the_router_order_and_alone_is_the_reranker_alone() -> None:
    hits, scores = _hits(), [0.0, 0.2, 1.0]
    assert [h.name for h in fuse(hits, scores, 0.0)] == ["a", "b", "c"]
    assert [h.name for h in fuse(hits, scores, ALONE)] == ["c", "b", "a"]
    assert [h.name for h in fuse(hits, scores, 1.0)] == ["c", "a", "b"]  # 1.4 > 0.9 > 0.7


def test_a_long_passage_is_read_in_windows_and_scores_as_its_best_window() -> None:
    words = [f"filler{i}" for i in range(200)]
    words[170] = "needle"  # far beyond what one 128-token read of the passage would show
    text = " ".join(words)
    windows = passage_windows(text)
    assert len(windows) > 1 and windows[0].startswith("filler0 ") and windows[-1].endswith("filler199")
    assert all(len(w.split()) <= 80 for w in windows)
    covered = {word for w in windows for word in w.split()}
    assert covered == set(words)  # nothing falls between two windows
    assert passage_windows("a short card") == ["a short card"]
    assert "needle" in best_window("where is the needle?", text)
    assert window_scores(KeywordReranker("needle"), "q", [text, "no match here"]) == [1.0, 0.0]


def test_document_passages_are_read_in_windows_and_tool_cards_whole() -> None:
    seen: list[str] = []

    class Recording(KeywordReranker):
        def predict(self, pairs, show_progress_bar=False):  # noqa: ANN001, ANN201
            seen.extend(text for _, text in pairs)
            return super().predict(pairs)

    long_text = " ".join(f"w{i}" for i in range(200)) + " needle"
    doc = RouteHit(name="vector_d", score=0.5, kind="vector", doc_id="d", tool_id="vector_d", description="x",
                   evidence=long_text)
    sibling = RouteHit(name="summary_d", score=0.4, kind="summary", doc_id="d", tool_id="summary_d",
                       description="x", evidence=long_text)
    bare = RouteHit(name="keyword_e", score=0.3, kind="keyword", doc_id="e", tool_id="keyword_e", description="x")
    tool = RouteHit(name="t", score=0.2, kind="external", doc_id=None, tool_id="t", description=long_text)
    assert reranker_scores(Recording("needle"), "q", [doc, sibling, bare, tool]) == [1.0, 1.0, 0.0, 1.0]
    assert seen.count(f"t: {long_text}") == 1  # the card, whole
    assert len(seen) == len(passage_windows(long_text)) + 1  # the shared passage once, in windows


def test_calibration_gives_a_useless_reranker_weight_zero_and_a_useful_one_weight(router) -> None:
    docs = {title.split()[-1].lower(): doc_id for doc_id, title, _ in router.catalog.document_leads()}
    right = [LabelledQuery("q1", "Which pigment absorbs red and blue light?", (docs["plants"],)),
             LabelledQuery("q2", "How do references and borrowing work?", (docs["checker"],))]
    # labelled with the Rust document although the router (rightly, by content) puts another document first
    misled = [LabelledQuery(f"m{i}", q, (docs["checker"],)) for i, q in enumerate((
        "What erupts from a volcano in Hawaii?", "What do pyroclastic flows come from?",
        "Which pigment absorbs red and blue light?", "What does the Calvin cycle fix?"))]
    useless = calibrate_fusion(router.view, KeywordReranker("magma"), right)
    assert useless["calibrated"] and useless["weight"] == 0.0 and useless["grid"]["0.0"]["hit@1"] == 1.0
    useful = calibrate_fusion(router.view, KeywordReranker("borrow"), [right[1], *misled])
    chosen = str(useful["weight"])
    assert useful["weight"] != 0.0 and useful["grid"]["0.0"]["hit@1"] == 0.2 and useful["grid"][chosen]["hit@1"] == 1.0
    assert useful["grid"][chosen]["fixed"] == 4 and useful["grid"][chosen]["broken"] == 0
    # one question fixed is noise: the weight stays 0
    lucky = calibrate_fusion(router.view, KeywordReranker("borrow"), [right[1], misled[0]])
    assert lucky["weight"] == 0.0 and lucky["grid"]["alone"]["fixed"] == 1
    assert calibrate_fusion(router.view, KeywordReranker("x"), [])["calibrated"] is False


def test_clearly_better_is_a_sign_test() -> None:
    from agentic_router.training.fusion import clearly_better

    assert not clearly_better(1, 0) and not clearly_better(3, 1) and not clearly_better(0, 0)
    assert clearly_better(4, 0) and clearly_better(12, 2)
