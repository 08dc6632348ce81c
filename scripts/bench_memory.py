"""Benchmark (not a test): what usage memory costs a route, at 10,000 tools.

    .venv/bin/python scripts/bench_memory.py [--tools 10000] [--recorded 2000] [--queries 300] [--json OUT]

One generated catalog (the tools of ``scripts/bench.py``); route latency p50/p99 measured, interleaved
question by question so machine noise hits every setting alike, for: the router with memory switched
off (``memory_weight=0``: what routing cost before usage memory), with memory on but nothing recorded,
and with ``--recorded`` requests recorded. The order of the three rotates from question to question.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from bench import ADJ, NOUNS, VERBS, make_tools

from agentic_router import AgenticRouter
from agentic_router.indexes.encoders.cpu import cpu_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--recorded", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    print(f"CPU: {cpu_summary()}", file=sys.stderr)  # figures depend on the instruction set
    rng = random.Random(3)
    ask = [f"{rng.choice(VERBS)} the {rng.choice(ADJ)} {rng.choice(NOUNS)} for my {rng.choice(NOUNS)}"
           for _ in range(args.queries)]
    with tempfile.TemporaryDirectory() as tmp:
        empty = AgenticRouter.open(Path(tmp) / "a", llm_provider="none")
        tools = make_tools(args.tools, seed=2)
        empty.add_tools(tools)
        full = AgenticRouter.open(Path(tmp) / "b", llm_provider="none")
        full.add_tools(tools)
        start = time.perf_counter()
        full.record_requests([(f"{rng.choice(VERBS)} {rng.choice(ADJ)} {rng.choice(NOUNS)} {i}", rng.choice(tools).name)
                              for i in range(args.recorded)])
        record_s = time.perf_counter() - start
        off = empty.workspace.view(weights=replace(empty.view.weights, memory_weight=0.0))
        systems = {"memory off": off, "memory on, empty": empty.view, f"memory on, {args.recorded} recorded": full.view}
        times: dict[str, list[float]] = {name: [] for name in systems}
        for q in ask[:10]:  # warm-up
            for view in systems.values():
                view.rank(q, 5)
        names = list(systems)
        for i, q in enumerate(ask):  # the order rotates: a question's first route pays for caches the others reuse
            for name in names[i % len(names):] + names[: i % len(names)]:
                view = systems[name]
                t0 = time.perf_counter()
                view.rank(q, 5)
                times[name].append((time.perf_counter() - t0) * 1000)
    out = {"tools": args.tools, "queries": args.queries, "record_s": round(record_s, 2),
           **{name: {"p50_ms": round(float(np.percentile(t, 50)), 2), "p99_ms": round(float(np.percentile(t, 99)), 2)}
              for name, t in times.items()}}
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
