"""Comparing routing systems on the same queries in one run, and reporting the figures.

System names for ``eval --compare``: ``base`` (configured embedder, no adapter, no reranker), ``active``
(what ``models activate`` chose), any registry version name, one channel of the active router alone
(``dense``: card and chunk embeddings; ``card``; ``chunk``; ``lexical``: its BM25 over cards and chunks;
``no-memory``: everything but usage memory; ``lookup``: the tool of the nearest recorded request),
``bm25`` (BM25 over tool cards, a baseline of its own) and ``lead`` (title + first 2,000 characters of
each document). ``--rerank N`` adds ``<system>+rerank`` rows for the
embedding systems, reordering their top N with the active (or a named) cross-encoder; naming
``<system>+rerank`` in the list instead adds just that row.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from agentic_router.indexes.encoders.embeddings import embed_queries
from agentic_router.indexes.errors import InputError
from agentic_router.indexes.schema import RouteHit
from agentic_router.router.activation import sync_collections
from agentic_router.router.retrieval.scoring import LEXICAL_NORMS, Weights
from agentic_router.router.workspace import RouterView
from agentic_router.training.baselines import Bm25Baseline, LeadEmbeddingBaseline
from agentic_router.training.evaluate import LabelledQuery, RoutingSystem, evaluate
from agentic_router.training.metrics import HIT_KS

MULTI_COLUMNS = ["recall@5", "complete@5"]
ABSTAIN_COLUMNS = ["answered", "abstain_precision", "abstain_recall"]
# Each channel of the router alone, as weights of the same scoring function.
CHANNELS: dict[str, Callable[[Weights], Weights]] = {
    "dense": lambda w: replace(w.lexical(0.0), memory_weight=0.0),  # card + best chunk embeddings
    "card": lambda w: replace(w.lexical(0.0), card_weight=1.0, memory_weight=0.0),
    "chunk": lambda w: replace(w.lexical(0.0), card_weight=0.0, memory_weight=0.0),
    "lexical": lambda w: replace(w.lexical(1.0), memory_weight=0.0),  # BM25 over cards and chunks
    "no-memory": lambda w: replace(w, memory_weight=0.0),
    # the tool of the nearest recorded request (what semantic-router does with utterances)
    "lookup": lambda w: Weights(card_weight=0.0, lexical_weight=0.0, kind_bonus=0.0, memory_weight=1.0,
                                memory_floor=0.0, tool_lexical_weight=0.0),
}
TABLE_COLUMNS = ["hit@1", "hit@3", "hit@5", "hit@10", "mrr", "ndcg@10", "latency_ms_mean", "latency_ms_p95"]


class RouterSystem:
    """A router (any embedder / reranker combination) as an evaluated system."""

    def __init__(self, view: Any, name: str, rerank: int | None = None) -> None:
        self.router, self.name, self.rerank = view, name, rerank
        self._vectors: dict[str, Any] = {}

    def prepare(self, queries: Sequence[str]) -> None:
        """Encode every question in batches first: one at a time, encoding was most of an evaluation's
        time (and all of it on a busy machine)."""
        if not hasattr(self.router, "query_embedder"):  # an AgenticRouter rather than a view: one at a time
            return
        texts = list(dict.fromkeys(queries))
        self._vectors = dict(zip(texts, np.asarray(embed_queries(self.router.query_embedder, texts), dtype=np.float32)))

    def rank(self, query: str, depth: int) -> list[RouteHit]:
        if not isinstance(self.router, RouterView):  # the facade: one question at a time
            return self.router.route(query, depth, rerank=self.rerank)
        return self.router.rank(query, depth, rerank=self.rerank, qvec=self._vectors.get(query))

    def abstains(self, hits: list[RouteHit]) -> bool:
        return self.router.abstains(hits)


def weights_from_spec(base: Weights, spec: str) -> Weights:
    """``KEY=VALUE`` pairs joined by ``+`` applied to ``base`` (numbers where the field is a number), so
    that every weight setting a table compares is a system of one ``eval --compare`` run."""
    changes: dict[str, Any] = {}
    for part in spec.split("+"):
        key, _, value = part.partition("=")
        field = Weights.__dataclass_fields__.get(key.strip())
        if field is None or not value.strip():
            raise InputError(f"system {spec!r}: {key.strip()!r} is not a routing weight "
                             f"({', '.join(Weights.__dataclass_fields__)})")
        if field.type == "str" and value.strip() not in LEXICAL_NORMS:
            raise InputError(f"system {spec!r}: {key.strip()} must be one of {', '.join(LEXICAL_NORMS)}")
        try:
            changes[key.strip()] = value.strip() if field.type == "str" else float(value)
        except ValueError:
            raise InputError(f"system {spec!r}: {key.strip()} needs a number, not {value.strip()!r}") from None
    return replace(base, **changes)


def build_systems(view: Any, names: Sequence[str], rerank: int | None = None,
                  reranker: str | None = None) -> list[RoutingSystem]:

    workspace = view.workspace
    systems: list[RoutingSystem] = []
    ce = reranker if reranker is not None else view.reranker_version
    if rerank and ce is None:
        raise InputError("--rerank needs a cross-encoder: activate one or name it with --reranker")
    for name in names:
        if name == "bm25":
            systems.append(Bm25Baseline(view.list_tools()))
            continue
        if name == "lead":
            docs = view.catalog.document_leads()
            if not docs:
                raise InputError("the 'lead' baseline needs ingested documents")
            systems.append(LeadEmbeddingBaseline(view.embedder, docs))
            continue
        if name in CHANNELS:  # one channel of the active router alone (an ablation)
            target = workspace.view(view.embedder_version, ce, weights=CHANNELS[name](view.weights))
            systems.append(RouterSystem(target, name))
            continue
        if "=" in name:  # the active router with other weights: "tool_lexical_weight=0.4+tool_lexical_norm=best"
            target = workspace.view(view.embedder_version, ce, weights=weights_from_spec(view.weights, name))
            systems.append(RouterSystem(target, name))
            continue
        reranked = name.endswith("+rerank")  # e.g. "base+rerank": only this row is reranked
        if reranked:
            if ce is None:
                raise InputError(f"{name} needs a cross-encoder: activate one or name it with --reranker")
            name = name[: -len("+rerank")]
        if name == "active":
            emb = view.embedder_version
        elif name == "base":
            emb = None
        else:
            version = view.registry.get(name)
            if version.method == "cross-encoder":  # the active embedder, reranked by this version
                systems.append(RouterSystem(workspace.view(view.embedder_version, name), name, rerank or 20))
                continue
            emb = name
        target = workspace.view(emb, ce)
        sync_collections(target)
        if reranked:
            systems.append(RouterSystem(target, f"{name}+rerank", rerank or 20))
            continue
        systems.append(RouterSystem(target, name))
        if rerank and not any(n.endswith("+rerank") for n in names):
            systems.append(RouterSystem(target, f"{name}+rerank", rerank))
    return systems


def run_systems(systems: Sequence[RoutingSystem], queries: Sequence[LabelledQuery], level: str,
                details: dict[str, list[dict]] | None = None) -> dict[str, dict]:
    """Evaluate every system; ``details`` (if given) collects per-query rows for failure reports."""
    if not queries:
        raise InputError("no queries to evaluate")
    out = {}
    for system in systems:
        rows: list[dict] = []

        def record(q: LabelledQuery, hits: list[RouteHit], ranked: list[str], rows: list[dict] = rows) -> None:
            top = hits[0] if hits else None
            rows.append({
                "qid": q.qid, "query": q.query, "gold": list(q.gold), "gold_kind": q.kind, "ranked": ranked[:10],
                "first": ranked[0] if ranked else None, "first_tool": top.name if top else None,
                "first_kind": top.kind if top else None, "score": top.score if top else None,
            })

        metrics = evaluate(system, queries, level=level, progress=True, on_query=record)
        metrics.update(kind_accuracy(rows))
        out[system.name] = metrics
        if details is not None:
            details[system.name] = rows
    return out


def kind_accuracy(rows: list[dict]) -> dict[str, float]:
    """Among queries with a known gold kind whose first document is right: how often the kind is right too."""
    known = [r for r in rows if r["gold_kind"] and r["first"] in r["gold"]]
    if not known:
        return {}
    return {"kind_accuracy": sum(r["first_kind"] == r["gold_kind"] for r in known) / len(known), "kind_n": len(known)}


def print_table(results: dict[str, dict], level: str) -> None:
    from rich.console import Console
    from rich.table import Table

    first = next(iter(results.values()))
    columns = TABLE_COLUMNS + [c for c in MULTI_COLUMNS + ABSTAIN_COLUMNS if c in first]
    table = Table("system", *columns, title=f"{level}-level routing, n={first['n']}"
                  + (f" ({first['multi_n']} need several tools)" if "multi_n" in first else ""))
    for name, m in results.items():
        table.add_row(name, *(f"{m.get(c, 0):.1f}" if "latency" in c else f"{m.get(c, 0):.3f}" for c in columns))
    Console(width=170).print(table)


def write_report(out_dir: Path, results: dict[str, dict], details: dict[str, list[dict]], level: str,
                 queries_path: Path) -> Path:
    """Markdown report with PNG plots (hit@k per system, per-kind hit@1) and a failures file per system.

    The plots are drawn on bare ``matplotlib.figure.Figure`` objects: no pyplot, so no backend is chosen for
    the whole process and no figure is kept in pyplot's registry."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = _figure()
    for name, m in results.items():
        ax.plot(HIT_KS, [m[f"hit@{k}"] for k in HIT_KS], marker="o", label=name)
    ax.set(xlabel="k", ylabel="hit@k", title=f"{level}-level hit@k", xticks=list(HIT_KS), ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, out_dir / "hit_at_k.png")

    per_kind = _per_kind_hit1(details)
    if per_kind:
        kinds = sorted({k for v in per_kind.values() for k in v})
        fig, ax = _figure()
        width = 0.8 / max(1, len(per_kind))
        for i, (name, values) in enumerate(per_kind.items()):
            ax.bar([j + i * width for j in range(len(kinds))], [values.get(k, 0.0) for k in kinds], width, label=name)
        ax.set(xticks=[j + 0.4 - width / 2 for j in range(len(kinds))], xticklabels=kinds, ylabel="hit@1", ylim=(0, 1),
               title="hit@1 by the index kind the question calls for")
        ax.legend()
        _save(fig, out_dir / "per_kind.png")

    for name, rows in details.items():
        with (out_dir / f"failures-{_safe(name)}.jsonl").open("w", encoding="utf-8") as fh:
            for r in rows:
                if r["first"] not in r["gold"]:
                    fh.write(json.dumps({k: r[k] for k in ("qid", "query", "gold", "first", "first_tool", "score")},
                                        ensure_ascii=False) + "\n")
    lines = [f"# Routing report: {queries_path.name}", "", f"{level}-level, n = {next(iter(results.values()))['n']}", "",
             "| system | " + " | ".join(TABLE_COLUMNS) + " |", "|---" * (len(TABLE_COLUMNS) + 1) + "|"]
    for name, m in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{m.get(c, 0):.3f}" for c in TABLE_COLUMNS) + " |")
    lines += ["", "![hit@k](hit_at_k.png)", ""]
    if per_kind:
        lines += ["![per kind](per_kind.png)", ""]
    lines += ["Failures (first result wrong) per system: " + ", ".join(f"`failures-{_safe(n)}.jsonl`" for n in details)]
    report = out_dir / "report.md"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return report


def _figure() -> tuple[Any, Any]:
    """A 6x4 inch figure and its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    return fig, fig.add_subplot()


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _per_kind_hit1(details: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, rows in details.items():
        groups: dict[str, list[bool]] = {}
        for r in rows:
            kind = r["gold_kind"]
            if kind:
                groups.setdefault(kind, []).append(r["first"] in r["gold"])
        if groups:
            out[name] = {k: sum(v) / len(v) for k, v in groups.items()}
    return out


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
