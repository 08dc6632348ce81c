"""Running several routing systems on the same queries and presenting the figures."""

from __future__ import annotations

from typing import Any, Sequence

from router.errors import InputError
from training.evaluate import LabelledQuery, LeadEmbeddingBaseline, RouterSystem, RoutingSystem, evaluate

SYSTEMS = ("active", "lead")


def build_systems(router: Any, names: Sequence[str]) -> list[RoutingSystem]:
    systems: list[RoutingSystem] = []
    for name in names:
        if name == "active":
            systems.append(RouterSystem(router, "active"))
        elif name == "lead":
            docs = router.catalog.document_leads()
            if not docs:
                raise InputError("the 'lead' baseline needs ingested documents")
            systems.append(LeadEmbeddingBaseline(router.embedder, docs))
        else:
            raise InputError(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")
    return systems


def run_systems(systems: Sequence[RoutingSystem], queries: Sequence[LabelledQuery], level: str) -> dict[str, dict]:
    if not queries:
        raise InputError("no queries to evaluate")
    out = {}
    for system in systems:
        key = "active" if isinstance(system, RouterSystem) else "lead"
        out[key] = evaluate(system, queries, level=level, progress=True)
    return out


def print_table(results: dict[str, dict], level: str) -> None:
    from rich.console import Console
    from rich.table import Table

    cols = ["hit@1", "hit@3", "hit@5", "hit@10", "mrr", "ndcg@10", "latency_ms_mean", "latency_ms_p95"]
    first = next(iter(results.values()))
    table = Table("system", *cols, title=f"{level}-level routing, n={first['n']}")
    for name, m in results.items():
        table.add_row(name, *(f"{m.get(c, 0):.3f}" if "latency" not in c else f"{m.get(c, 0):.1f}" for c in cols))
    Console(stderr=False, width=160).print(table)
