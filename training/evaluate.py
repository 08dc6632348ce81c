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

from agentic_router.indexes.documents import iter_jsonl
from agentic_router.indexes.errors import InputError
from agentic_router.indexes.schema import RouteHit
from agentic_router.training.metrics import dedupe, score_rankings

LEVELS = ("document", "tool")


@dataclass(frozen=True)
class LabelledQuery:
    qid: str
    query: str
    gold: tuple[str, ...]
    kind: str | None = None  # the index kind that should answer, when known (generated questions)


class RoutingSystem(Protocol):
    name: str

    def rank(self, query: str, depth: int) -> list[RouteHit]: ...


def load_queries(path: str | Path, limit: int | None = None, seed: int = 0) -> list[LabelledQuery]:
    """Read ``{"qid","query","gold"}`` rows; ``limit`` takes a seeded random sample."""
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
        if not isinstance(gold, list) or not gold or not all(isinstance(g, (str, int)) for g in gold):
            raise InputError(f"{where}: 'gold' must be a non-empty list of ids")
        kind = row.get("kind") if isinstance(row.get("kind"), str) else None
        rows.append(LabelledQuery(str(row.get("qid", lineno)), query.strip(), tuple(str(g) for g in gold), kind))
    if limit is not None and limit < len(rows):
        rows = random.Random(seed).sample(rows, limit)
    return rows


def ranked_ids(hits: Sequence[RouteHit], level: str) -> list[str]:
    if level == "document":
        return dedupe(h.doc_id or h.name for h in hits)
    return dedupe(h.name for h in hits)


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

    rankings, golds, latencies = [], [], []
    tool_depth = depth * 3 if level == "document" else depth
    for q in tqdm(queries, desc=f"eval {system.name}", unit="q", disable=not progress):
        start = time.perf_counter()
        hits = system.rank(q.query, tool_depth)
        elapsed = time.perf_counter() - start
        ranked = ranked_ids(hits, level)[:depth]
        rankings.append(ranked)
        golds.append(set(q.gold))
        latencies.append(elapsed)
        if on_query is not None:
            on_query(q, hits, ranked)
    metrics = score_rankings(rankings, golds)
    if latencies:
        metrics["latency_ms_mean"] = float(np.mean(latencies) * 1000)
        metrics["latency_ms_p95"] = float(np.percentile(latencies, 95) * 1000)
    return metrics
