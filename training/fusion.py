"""Choose how much a trained reranker's opinion adds to the router's score (see ``router.rerank``).

Each held-out question is routed once and its short list reranked once; every candidate weight is then a
cheap re-sort. The smallest weight with the best hit@1 (then MRR) wins, so a reranker that adds nothing
gets weight 0 and leaves routing as it was on those questions rather than making it worse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from router.rerank import DEFAULT_WEIGHT, fuse, reranker_scores
from training.evaluate import LabelledQuery, ranked_ids
from training.metrics import score_rankings

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

    from router.app import AgenticRouter

GRID: tuple[float | None, ...] = (0.0, 0.03, 0.1, 0.3, 1.0, 3.0, None)  # None: the reranker's order alone
DEPTH = 10


def calibrate_fusion(router: "AgenticRouter", reranker: "CrossEncoder", queries: Sequence[LabelledQuery],
                     depth: int = DEPTH, level: str = "document", progress: bool = False) -> dict[str, Any]:
    """``{"weight", "calibrated", "n", "depth", "grid": {weight: {"hit@1", "mrr"}}}`` for ``queries``."""
    from tqdm.auto import tqdm

    if not queries:
        return {"weight": DEFAULT_WEIGHT, "calibrated": False, "n": 0,
                "reason": "no held-out questions; default weight"}
    rankings: dict[float | None, list[list[str]]] = {w: [] for w in GRID}
    for q in tqdm(queries, desc="fusion weight", unit="q", disable=not progress):
        hits = router.retriever.route(q.query, depth)
        scores = reranker_scores(reranker, q.query, hits) if hits else []
        for w in GRID:
            rankings[w].append(ranked_ids(fuse(hits, scores, w), level))
    golds = [set(q.gold) for q in queries]
    scored = {w: score_rankings(r, golds) for w, r in rankings.items()}
    best = max(GRID, key=lambda w: (round(scored[w]["hit@1"], 9), round(scored[w]["mrr"], 9), -GRID.index(w)))
    return {"weight": best, "calibrated": True, "n": len(queries), "depth": depth, "level": level,
            "grid": {("alone" if w is None else str(w)): {"hit@1": round(scored[w]["hit@1"], 4),
                                                           "mrr": round(scored[w]["mrr"], 4)} for w in GRID}}
