"""The router-log protocol for usage memory: a seeded share of a set's labelled requests is recorded as
feedback, the rest is routed, in one run with the baselines it must beat.

    .venv/bin/python scripts/memory_protocol.py --set NAME WORKSPACE QUERIES LEVEL [--set ...]
        [--share 0.2] [--seed 0] [--json OUT]

The workspace is copied first (recording changes it). Systems, all on the same held-out requests:
``router`` (no memory), ``lookup`` (the tool of the nearest recorded request, what semantic-router does
with utterances), ``memory`` (the router with usage memory at the default weights) and ``calibrated``
(weights chosen on the recorded requests themselves, each left out of its own vote).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from agentic_router import AgenticRouter
from agentic_router.router.retrieval.scoring import Weights
from agentic_router.training.calibrate import calibration_grid, choose_weights, gather
from agentic_router.training.evaluate import load_queries


def run_set(name: str, workspace: str, queries_path: str, level: str, share: float, seed: int) -> dict:
    queries = load_queries(queries_path)
    rng = random.Random(seed)
    order = list(range(len(queries)))
    rng.shuffle(order)
    n_log = int(round(share * len(queries)))
    logged = [queries[i] for i in sorted(order[:n_log])]
    held = [queries[i] for i in sorted(order[n_log:])]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "ws"
        shutil.copytree(workspace, copy)
        router = AgenticRouter.open(copy, llm_provider="none")
        router.record_requests([(q.query, g) for q in logged for g in q.gold], source="log")
        view = router.view
        test = gather(view, held, level, progress=True)
        train = gather(view, logged, level, progress=True)
        # each recorded request is left out of its own vote (its own record would vote with similarity 1)
        own: dict[str, set[str]] = {}
        for rid, query, _tool in router.catalog.recorded_requests():
            own.setdefault(query, set()).add(rid)
        train.evidence = [replace(ev, exclude=frozenset(own.get(q.query, ()))) for ev, q in zip(train.evidence, logged)]
        base = view.weights
        systems = {
            "router": replace(base, memory_weight=0.0),
            "lookup": Weights(card_weight=0.0, lexical_weight=0.0, kind_bonus=0.0, memory_weight=1.0, memory_floor=0.0,
                              tool_lexical_weight=0.0),
            "memory": base,
        }
        chosen = choose_weights(train, base, calibration_grid(base, level))
        systems["calibrated"] = Weights(**chosen["weights"])
        out = {"n_logged": len(logged), "n_held": len(held), "calibration": chosen["weights"],
               "calibration_changed": chosen["changed"]}
        for label, weights in systems.items():
            out[label] = test.metrics(weights)
        router.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", nargs=4, action="append", metavar=("NAME", "WORKSPACE", "QUERIES", "LEVEL"),
                        required=True)
    parser.add_argument("--share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = {name: run_set(name, ws, q, level, args.share, args.seed) for name, ws, q, level in args.set}
    for name, r in results.items():
        print(f"{name}: {r['n_logged']} recorded, {r['n_held']} held out; calibrated weights {r['calibration']}")
        for label in ("router", "lookup", "memory", "calibrated"):
            m = r[label]
            print(f"  {label:<11} hit@1 {m['hit@1']:.3f}  hit@5 {m['hit@5']:.3f}  mrr {m['mrr']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
