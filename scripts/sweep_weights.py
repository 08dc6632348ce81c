"""Channel weights and BM25 normalisations on several dev sets in one run, on the same gathered evidence.

    .venv/bin/python scripts/sweep_weights.py --set NAME WORKSPACE QUERIES LEVEL [--set ...] [--json OUT]

Each set's evidence is gathered once under its workspace's active view, then every setting of the grid is
a re-scoring (``training.calibrate``). Prints hit@1 per set and setting, with the channels alone (card,
chunk, dense, BM25) beside the router.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import asdict
from pathlib import Path

from agentic_router import AgenticRouter
from agentic_router.indexes.encoders.cpu import cpu_summary
from agentic_router.router.retrieval.scoring import Weights
from agentic_router.training.calibrate import gather, sweep
from agentic_router.training.evaluate import load_queries


def grid() -> list[Weights]:
    """The channels alone, then every pair of a document setting (BM25 weight over chunks) and a tool
    setting (BM25 weight and normalisation over cards): a document set is judged by the first, a tool set
    by the second, so each set's column varies only with its own kind's setting."""
    out = [Weights(card_weight=c).lexical(0.0) for c in (0.0, 0.15, 1.0)]  # dense channels alone
    out += [Weights().lexical(1.0)]  # BM25 alone (cards and chunks)
    for doc_lam, tool_lam, tool_norm in itertools.product((0.3, 0.4, 0.5), (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4),
                                                          ("best", "ceiling", "ceiling_all")):
        out.append(Weights(lexical_weight=doc_lam, tool_lexical_weight=tool_lam, tool_lexical_norm=tool_norm))
    return out


def label(w: Weights) -> str:
    return (f"card={w.card_weight} docs={w.lexical_weight}/{w.lexical_norm} "
            f"tools={w.tool_lexical_weight}/{w.tool_lexical_norm}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", nargs=4, action="append", metavar=("NAME", "WORKSPACE", "QUERIES", "LEVEL"),
                        required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    print(f"CPU: {cpu_summary()}", file=sys.stderr)  # figures depend on the instruction set
    settings = grid()
    results: dict[str, list[dict]] = {}
    for name, workspace, queries, level in args.set:
        router = AgenticRouter.open(workspace, llm_provider="none")
        gathered = gather(router.view, load_queries(queries, limit=args.limit), level, progress=True)
        results[name] = sweep(gathered, settings)
    names = list(results)
    print("setting".ljust(56) + "".join(n[:10].rjust(11) for n in names))
    for i, w in enumerate(settings):
        row = [results[n][i]["hit@1"] for n in names]
        print(label(w).ljust(56) + "".join(f"{v:11.3f}" for v in row))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"grid": [asdict(w) for w in settings], "results": results}, indent=1))


if __name__ == "__main__":
    main()
