"""Benchmark (not a test): how far can a "no tool fits" signal built from card cosines go, with no labels?

    .venv/bin/python scripts/abstain_signals.py WORKSPACE MIX.jsonl [--hold 0.2] [--seed 0] [--json OUT]

MIX.jsonl holds labelled requests, ``"gold": []`` where no tool fits. ``--hold`` removes that share of the
gold tools from the catalog instead (seeded): requests whose every gold tool is gone become unanswerable,
requests with only some gone are left out. So a set of answerable real requests yields a set of real
requests for tools that are not there, without building a second workspace.

For each candidate signal (computed from the card matrix alone, so every candidate sees the same
vectors): AUROC (answerable against unanswerable), the operating point of the default rule (a request
abstains when its signal is below ``quantile`` of the background requests' signal over the same catalog),
and, as a ceiling no unlabelled rule can beat, the best abstain recall that *any* threshold reaches while
keeping abstain precision >= 0.75 and >= 0.90 of the answerable requests answered (issue targets).

Signals: ``top1`` (the best card's cosine: what the router uses), ``margin`` (top1 - top2), ``peak``
(top1 - mean of the top 10: a request that resembles many tools a little is not asking for one of them),
``hub`` (CSLS: 2 cos - r_tool - r_request, where r_tool is the card's mean cosine to its 30 nearest
background requests and r_request the request's mean cosine to its 30 nearest cards, correcting cards that
attract every request), and ``top1+peak``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from agentic_router import AgenticRouter
from agentic_router.indexes.encoders.cpu import cpu_summary
from agentic_router.indexes.encoders.embeddings import embed_queries
from agentic_router.indexes.schema import safe_tool_name
from agentic_router.router.retrieval.fit import background_requests

PRECISION, ANSWERED = 0.75, 0.90  # the targets the ceiling is computed for
HUB_K = 30


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that an answerable request's signal is above an unanswerable one's (ties count half)."""
    ranks = np.concatenate([pos, neg]).argsort(kind="stable").argsort() + 1.0
    values = np.concatenate([pos, neg])
    for v in np.unique(values):  # average ranks of ties
        tied = values == v
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def signals(sims: np.ndarray, r_tool: np.ndarray) -> dict[str, np.ndarray]:
    top = -np.sort(-sims, axis=1)[:, :HUB_K]
    out = {"top1": top[:, 0], "margin": top[:, 0] - top[:, 1], "peak": top[:, 0] - top[:, :10].mean(1),
           "hub": (2 * sims - r_tool[None, :]).max(1) - top.mean(1)}
    out["top1+peak"] = out["top1"] + out["peak"]
    return out


def operating_point(values: np.ndarray, answerable: np.ndarray, threshold: float) -> dict[str, float]:
    abstain = values < threshold
    right = int((abstain & ~answerable).sum())
    return {"answered": round(float(1 - abstain[answerable].mean()), 4),
            "precision": round(right / max(int(abstain.sum()), 1), 4),
            "recall": round(right / max(int((~answerable).sum()), 1), 4)}


def ceiling(values: np.ndarray, answerable: np.ndarray) -> float:
    """The best recall of any threshold meeting the precision and answered targets (0 when none does)."""
    best = 0.0
    for threshold in np.unique(values):
        point = operating_point(values, answerable, float(threshold))
        if point["answered"] >= ANSWERED and point["precision"] >= PRECISION and (values < threshold).any():
            best = max(best, point["recall"])
    return best


def load_rows(path: str, names: list[str], hold: float, seed: int) -> tuple[list[dict], np.ndarray]:
    """The requests, and which cards stay in the catalog (all of them unless ``hold``)."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    keep = np.ones(len(names), dtype=bool)
    if not hold:
        return rows, keep
    golds = sorted({safe_tool_name(g) for row in rows for g in row["gold"]})
    held = set(np.random.default_rng(seed).choice(golds, int(hold * len(golds)), replace=False).tolist())
    keep = ~np.isin(np.array(names), list(held))
    kept = []
    for row in rows:
        gone = [safe_tool_name(g) in held for g in row["gold"]]
        if gone and all(gone):
            kept.append(dict(row, gold=[]))
        elif not any(gone):
            kept.append(row)
    return kept, keep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace")
    parser.add_argument("mix")
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_out", type=Path, default=None)
    args = parser.parse_args()
    print(f"CPU: {cpu_summary()}", file=sys.stderr)
    router = AgenticRouter.open(args.workspace, llm_provider="none")
    matrix = router.view.catalog.card_matrix()
    if matrix is None or not len(matrix):
        sys.exit("error: the workspace has no tool cards")
    rows, keep = load_rows(args.mix, matrix.names, args.hold, args.seed)
    cards = matrix.vectors[keep]
    answerable = np.array([bool(row["gold"]) for row in rows])
    if answerable.all() or not answerable.any():
        sys.exit("error: the requests must include answerable and unanswerable ones (use --hold)")

    def unit(texts: list[str]) -> np.ndarray:
        vectors = np.asarray(embed_queries(router.view.query_embedder, texts), dtype=np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    requests, background = unit([row["query"] for row in rows]), unit(list(background_requests()))
    background_sims = background @ cards.T
    # a card's pull on off-catalog text; for the background's own signal, each request's own row is left out
    r_tool = -np.sort(-background_sims, axis=0)[:HUB_K].mean(0)
    r_tool_loo = -np.sort(-background_sims, axis=0)[1:HUB_K + 1].mean(0)
    of_requests, of_background = signals(requests @ cards.T, r_tool), signals(background_sims, r_tool_loo)
    report: dict = {"workspace": args.workspace, "mix": args.mix, "hold": args.hold, "cards": int(keep.sum()),
                    "answerable": int(answerable.sum()), "unanswerable": int((~answerable).sum()), "signals": {}}
    print(f"{report['cards']} cards; {report['answerable']} answerable, {report['unanswerable']} unanswerable")
    for name, values in of_requests.items():
        entry = {"auroc": round(auroc(values[answerable], values[~answerable]), 4),
                 "ceiling_recall": ceiling(values, answerable)}
        for q in (0.5, 0.75, 0.9):
            entry[f"background_q{q}"] = operating_point(values, answerable, float(np.quantile(of_background[name], q)))
        report["signals"][name] = entry
        points = "  ".join(f"q{q}: {entry[f'background_q{q}']}" for q in (0.5, 0.9))
        print(f"{name:<10} AUROC {entry['auroc']:.3f}  ceiling recall {entry['ceiling_recall']:.3f}  {points}")
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    router.close()


if __name__ == "__main__":
    main()
