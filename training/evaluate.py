"""Evaluation harness: run a routing system over labelled queries and score it.

A *system* is anything with ``rank(query) -> list[RouteHit]``. The router itself is one; baselines
(e.g. an embedding of each document's title + first 2,000 characters) are others, so they can be compared
on the same queries in the same run.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from agentic_router.indexes.errors import InputError
from agentic_router.indexes.schema import RouteHit, safe_tool_name
from agentic_router.indexes.sources.documents import iter_jsonl
from agentic_router.router.retrieval.scoring import fit
from agentic_router.training.metrics import dedupe, score_rankings

LEVELS = ("document", "tool")


@dataclass(frozen=True)
class LabelledQuery:
    qid: str
    query: str
    gold: tuple[str, ...]
    kind: str | None = None  # the index kind that should answer, when known (generated questions)

    def golds(self, level: str) -> set[str]:
        """The gold ids as ``ranked_ids`` gives them: at tool level, a label that clients would refuse
        (Seal-Tools' ``getPM2.5Level``) in the form the catalog registered it under (``--fix-names``)."""
        return {safe_tool_name(g) for g in self.gold} if level == "tool" else set(self.gold)


class RoutingSystem(Protocol):
    name: str

    def rank(self, query: str, depth: int) -> list[RouteHit]: ...


def load_queries(path: str | Path, limit: int | None = None, seed: int = 0,
                 allow_unanswerable: bool = False) -> list[LabelledQuery]:
    """Read ``{"qid","query","gold"}`` rows; ``limit`` takes a seeded random sample. With
    ``allow_unanswerable``, ``"gold": []`` means no tool fits the request (evaluation of abstaining)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    rows = []
    for lineno, row in iter_jsonl(path):
        where = f"{path} line {lineno}"
        query, gold = row.get("query"), row.get("gold")
        if not isinstance(query, str) or not query.strip():
            raise InputError(f"{where}: missing or empty 'query'")
        if isinstance(gold, str):
            gold = [gold]
        if not isinstance(gold, list) or not all(isinstance(g, (str, int)) for g in gold) or (
                not gold and not allow_unanswerable):
            raise InputError(f"{where}: 'gold' must be a non-empty list of ids")
        kind = row.get("kind") if isinstance(row.get("kind"), str) else None
        rows.append(LabelledQuery(str(row.get("qid", lineno)), query.strip(), tuple(str(g) for g in gold), kind))
    if limit is not None and limit < len(rows):
        rows = random.Random(seed).sample(rows, limit)
    return rows


def ranked_ids(hits: Sequence[RouteHit], level: str) -> list[str]:
    if level == "document":
        return dedupe(h.doc_id or h.name for h in hits)
    return dedupe(safe_tool_name(h.name) for h in hits)


def evaluate(
    system: RoutingSystem,
    queries: Sequence[LabelledQuery],
    level: str = "document",
    depth: int = 10,
    progress: bool = False,
    on_query: Callable[[LabelledQuery, list[RouteHit], list[str]], None] | None = None,
) -> dict[str, Any]:
    """Score ``system``; ``depth`` distinct ids are ranked per query (tools per document: x3)."""
    if level not in LEVELS:
        raise InputError(f"level must be one of {', '.join(LEVELS)}")
    from tqdm.auto import tqdm

    rankings, golds, latencies, fits, abstained = [], [], [], [], []
    tool_depth = depth * 3 if level == "document" else depth
    decide = getattr(system, "abstains", None)
    prepare = getattr(system, "prepare", None)  # batch work over all questions (encoding them), if any
    start = time.perf_counter()
    if prepare is not None:
        prepare([q.query for q in queries])
    shared = (time.perf_counter() - start) / max(len(queries), 1)  # each question's share of it counts
    for q in tqdm(queries, desc=f"eval {system.name}", unit="q", disable=not progress):
        start = time.perf_counter()
        hits = system.rank(q.query, tool_depth)
        elapsed = time.perf_counter() - start + shared
        ranked = ranked_ids(hits, level)[:depth]
        no_fit = bool(decide(hits)) if decide is not None else False
        rankings.append([] if no_fit else ranked)  # an abstain on an answerable request is a miss
        golds.append(q.golds(level))
        latencies.append(elapsed)
        fits.append(fit(hits))
        abstained.append(no_fit)
        if on_query is not None:
            on_query(q, hits, ranked)
    answerable = [i for i, g in enumerate(golds) if g]
    metrics: dict[str, Any] = dict(score_rankings([rankings[i] for i in answerable], [golds[i] for i in answerable]))
    if len(answerable) < len(golds):
        metrics.update(abstain_metrics(abstained, [not g for g in golds]))
        metrics["abstain_curve"] = abstain_curve(fits, [not g for g in golds])
    if latencies:
        metrics["latency_ms_mean"] = float(np.mean(latencies) * 1000)
        metrics["latency_ms_p95"] = float(np.percentile(latencies, 95) * 1000)
    return metrics


def abstain_metrics(abstained: Sequence[bool], unanswerable: Sequence[bool]) -> dict[str, float]:
    """How well "no tool fits" was said: precision and recall of the abstentions against the requests no
    tool fits, and the share of answerable requests that got an answer."""
    both = sum(a and u for a, u in zip(abstained, unanswerable))
    n_abstained, n_unanswerable = sum(abstained), sum(unanswerable)
    n_answerable = len(unanswerable) - n_unanswerable
    return {"abstain_precision": both / n_abstained if n_abstained else 0.0,
            "abstain_recall": both / n_unanswerable if n_unanswerable else 0.0,
            "answered": sum(not a for a, u in zip(abstained, unanswerable) if not u) / n_answerable
            if n_answerable else 0.0,
            "unanswerable_n": n_unanswerable}


def abstain_curve(fits: Sequence[float], unanswerable: Sequence[bool], points: int = 11) -> list[dict[str, float]]:
    """Precision/coverage of abstaining below each of ``points`` thresholds spread over the observed fits."""
    if not fits:
        return []
    qs = np.quantile(np.asarray(fits, dtype=np.float64), np.linspace(0.0, 0.5, points))
    out = []
    for threshold in dict.fromkeys(round(float(t), 4) for t in qs):
        m = abstain_metrics([f < threshold for f in fits], unanswerable)
        out.append({"abstain_below": threshold, **{k: round(v, 4) for k, v in m.items() if k != "unanswerable_n"}})
    return out
