"""Ranking metrics over labelled queries: hit@k, MRR and NDCG@10 with binary relevance.

``ranked`` is the system's ordered list of ids (documents or tools), ``gold`` the set of correct ids;
several gold ids are allowed (multi-tool questions), and a query counts as a hit at k when any gold id is
among the first k. Ids may be any hashable value: the adapter trainer scores row numbers of its cached
vectors. This is the one definition of the figures; the full and cross-encoder trainers validate with
sentence-transformers' evaluators, which run inside the transformers training loop.
"""

from __future__ import annotations

import math
from typing import AbstractSet, Hashable, Iterable, Sequence, TypeVar

HIT_KS = (1, 3, 5, 10)
Id = TypeVar("Id", bound=Hashable)


def dedupe(ids: Iterable[Id]) -> list[Id]:
    """Keep the first occurrence of each id: document-level ranking over a tool ranking."""
    seen: set[Id] = set()
    out = []
    for i in ids:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def first_rank(ranked: Sequence[Hashable], gold: AbstractSet[Hashable]) -> int | None:
    for i, item in enumerate(ranked, start=1):
        if item in gold:
            return i
    return None


def ndcg_at(ranked: Sequence[Hashable], gold: AbstractSet[Hashable], k: int = 10) -> float:
    dcg = sum(1.0 / math.log2(i + 1) for i, item in enumerate(ranked[:k], start=1) if item in gold)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(gold), k) + 1))
    return dcg / ideal if ideal else 0.0


def score_rankings(rankings: Sequence[Sequence[Hashable]], golds: Sequence[AbstractSet[Hashable]]) -> dict[str, float]:
    """Aggregate metrics; keys match the CLI's JSON contract (``hit@1``, ``mrr``, ``ndcg@10``...)."""
    n = len(rankings)
    out: dict[str, float] = {"n": n}
    if n == 0:
        return out | {f"hit@{k}": 0.0 for k in HIT_KS} | {"mrr": 0.0, "ndcg@10": 0.0}
    ranks = [first_rank(r, g) for r, g in zip(rankings, golds)]
    for k in HIT_KS:
        out[f"hit@{k}"] = sum(1 for r in ranks if r is not None and r <= k) / n
    out["mrr"] = sum(1.0 / r for r in ranks if r is not None) / n
    out["ndcg@10"] = sum((ndcg_at(r, g) for r, g in zip(rankings, golds)), 0.0) / n
    out.update(multi_tool(rankings, golds))
    return out


def multi_tool(rankings: Sequence[Sequence[Hashable]], golds: Sequence[AbstractSet[Hashable]], k: int = 5
               ) -> dict[str, float]:
    """For requests that need several tools (more than one gold id): the share of their tools in the top
    ``k`` (``recall@k``) and the share of requests with all of them there (``complete@k``). Empty when no
    request needs several tools; ``multi_n`` says how many did."""
    multi = [(r, g) for r, g in zip(rankings, golds) if len(g) > 1]
    if not multi:
        return {}
    found = [len(set(r[:k]) & g) / len(g) for r, g in multi]
    return {f"recall@{k}": sum(found) / len(multi), f"complete@{k}": sum(f == 1.0 for f in found) / len(multi),
            "multi_n": len(multi)}
