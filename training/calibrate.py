"""Choosing the router's channel weights on labelled questions, and measuring every channel alone.

Routing is two steps (``router.retrieval.retriever``): gather the evidence of a question (the I/O), then score it
(``router.retrieval.scoring``, pure). So the evidence of every question is gathered once, and any number of weight
settings is then a cheap re-scoring; that is what makes per-catalog calibration affordable and lets each
channel be evaluated alone on exactly the same candidates.

A candidate setting must beat the current one clearly, question by question, before it is chosen (the
sign test of ``training.fusion``): a handful of labelled questions must not move a default that holds on
every dev set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from agentic_router.indexes.encoders.embeddings import embed_queries
from agentic_router.router.retrieval.scoring import Evidence, Weights, fit, score
from agentic_router.training.evaluate import LabelledQuery, ranked_ids
from agentic_router.training.fusion import clearly_better
from agentic_router.training.metrics import score_rankings

if TYPE_CHECKING:
    from agentic_router.router.workspace import RouterView

DEPTH = 30  # tools ranked per question: 10 documents of 3 tools each
ANSWERED = 0.9  # share of answerable labelled requests a calibrated abstain threshold keeps answering


@dataclass
class Gathered:
    """The evidence of labelled questions, gathered once under one view."""

    queries: list[LabelledQuery]
    evidence: list[Evidence]
    level: str

    def rankings(self, weights: Weights, depth: int = 10) -> list[list[str]]:
        per_doc = 3 if self.level == "document" else 1
        return [ranked_ids(score(ev, weights)[: depth * per_doc], self.level)[:depth] for ev in self.evidence]

    def metrics(self, weights: Weights) -> dict[str, float]:
        return score_rankings(self.rankings(weights), [q.golds(self.level) for q in self.queries])

    def top1(self, weights: Weights) -> list[bool]:
        return [bool(r) and r[0] in q.golds(self.level) for r, q in zip(self.rankings(weights, 1), self.queries)]


def gather(view: "RouterView", queries: Sequence[LabelledQuery], level: str, progress: bool = False) -> Gathered:
    """Every channel's evidence for ``queries`` (BM25 included even when the view's weight for it is 0)."""
    from tqdm.auto import tqdm

    retriever = view.retriever
    if retriever.lexical is not None and not retriever.weights.uses_lexical:
        retriever = view.workspace.view(view.embedder_version, view.reranker_version,
                                        weights=view.weights.lexical(0.5)).retriever
    vectors = np.asarray(embed_queries(view.query_embedder, [q.query for q in queries]), dtype=np.float32)
    evidence = [retriever.gather(q.query, vec, DEPTH)
                for q, vec in tqdm(list(zip(queries, vectors)), desc="evidence", unit="q", disable=not progress)]
    return Gathered(list(queries), evidence, level)


LEXICAL_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
MEMORY_WEIGHTS = (0.0, 0.2, 0.35, 0.5, 0.65, 0.8)
MEMORY_FLOORS = (0.3, 0.4, 0.5, 0.6, 0.7)


def calibration_grid(base: Weights, level: str = "document") -> list[Weights]:
    """Settings around ``base`` that a catalog's labelled requests choose among: how much BM25 counts
    against embeddings (real requests share fewer words with their tool than generated ones; the weight of
    the kind the requests are labelled with: tool cards at tool level, chunks at document level), how much
    the usage memory counts, and the similarity below which a recorded request votes for nothing."""
    lexical: list[dict[str, Any]]
    if level == "tool":  # cards: the weight and what a BM25 score is divided by
        norms = dict.fromkeys((base.tool_lexical_norm, "best", "ceiling"))
        lexical = [{"tool_lexical_weight": lam, "tool_lexical_norm": norm} for lam in LEXICAL_WEIGHTS for norm in norms]
    else:
        lexical = [{"lexical_weight": lam} for lam in LEXICAL_WEIGHTS]
    return [replace(base, **lex, memory_weight=mu, memory_floor=floor)
            for lex in lexical for mu in MEMORY_WEIGHTS for floor in MEMORY_FLOORS]


def calibrate_routing(view: "RouterView", queries: Sequence[LabelledQuery], level: str,
                      progress: bool = False) -> dict[str, Any]:
    """Choose this catalog's weights on its labelled requests and keep them in the workspace when they
    beat the current ones clearly. A request recorded in the usage memory never votes for itself."""
    answerable = [q for q in queries if q.gold]
    gathered = leave_own_out(view, gather(view, answerable, level, progress=progress))
    chosen = choose_weights(gathered, view.weights, calibration_grid(view.weights, level))
    unanswerable = [q for q in queries if not q.gold]
    if unanswerable:
        weights = Weights(**chosen["weights"])
        threshold = abstain_threshold([fit(score(ev, weights)) for ev in gathered.evidence])
        chosen["weights"]["abstain_below"] = threshold
        chosen["changed"] = chosen["changed"] or threshold != view.weights.abstain_below
    if chosen["changed"]:
        view.workspace.save_routing({"weights": chosen["weights"], "n": chosen["n"], "level": level})
    return chosen


def leave_own_out(view: "RouterView", gathered: Gathered) -> Gathered:
    """Keep each request's own record (if it is in the usage memory) out of its vote: a recorded request
    matches itself with similarity 1, which would make the memory look perfect on the requests it holds."""
    own: dict[str, set[str]] = {}
    for rid, query, _tool in view.catalog.recorded_requests():
        own.setdefault(query, set()).add(rid)
    gathered.evidence = [replace(ev, exclude=frozenset(own.get(q.query, ())))
                         for ev, q in zip(gathered.evidence, gathered.queries)]
    return gathered


def abstain_threshold(answerable_fits: Sequence[float], answered: float = ANSWERED) -> float:
    """The fit below which to say "no tool fits": the largest that still answers ``answered`` of the
    labelled answerable requests (abstaining more costs right answers; it only pays off when the
    catalog's requests include ones no tool fits, which is why it is set only when they do)."""
    if not answerable_fits:
        return 0.0
    return round(float(np.quantile(np.asarray(answerable_fits, dtype=np.float64), 1.0 - answered)), 4)


def sweep(gathered: Gathered, grid: Sequence[Weights]) -> list[dict[str, Any]]:
    """Metrics of every setting in ``grid`` on the same gathered evidence."""
    return [{"weights": asdict(w), **gathered.metrics(w)} for w in grid]


def choose_weights(gathered: Gathered, current: Weights, grid: Sequence[Weights]) -> dict[str, Any]:
    """The best setting of ``grid`` by hit@1 (then MRR) among those that beat ``current`` clearly;
    ``current`` when none does."""
    golds = [q.golds(gathered.level) for q in gathered.queries]

    def judged(w: Weights) -> tuple[dict[str, float], list[bool]]:  # one ranking per setting serves both
        rankings = gathered.rankings(w)
        return score_rankings(rankings, golds), [bool(r) and r[0] in g for r, g in zip(rankings, golds)]

    base = judged(current)[1]
    rows = []
    for w in grid:
        m, top1 = judged(w)
        fixed = sum(a and not b for a, b in zip(top1, base))
        broken = sum(b and not a for a, b in zip(top1, base))
        rows.append((w, m, fixed, broken))
    passing = [r for r in rows if r[0] == current or clearly_better(r[2], r[3])]
    best = max(passing, key=lambda r: (round(r[1]["hit@1"], 9), round(r[1]["mrr"], 9)), default=None)
    chosen = best[0] if best is not None else current
    return {"weights": asdict(chosen), "changed": chosen != current, "n": len(gathered.queries),
            "grid": [{"weights": asdict(w), "hit@1": round(m["hit@1"], 4), "mrr": round(m["mrr"], 4),
                      "fixed": f, "broken": b} for w, m, f, b in rows]}
