"""Benchmark (not a test): what the routing defaults cost a route, against other weights, on one workspace.

    .venv/bin/python scripts/bench_route_defaults.py WORKSPACE QUERIES [--requests 300]
        [--other tool_lexical_weight=0.4+tool_lexical_norm=best]

Routes the same requests in process with the workspace's weights and with ``--other`` (the syntax of
``eval --compare``), interleaved request by request in an alternating order so that load on the machine
falls on both alike; then times ``abstains()``, the first call (which measures the background requests'
fit over the catalog) apart from the later ones.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from agentic_router import AgenticRouter
from agentic_router.indexes.encoders.cpu import cpu_summary
from agentic_router.training.report import weights_from_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace")
    parser.add_argument("queries")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--other", default="tool_lexical_weight=0.4+tool_lexical_norm=best")
    args = parser.parse_args()
    print(f"CPU: {cpu_summary()}", file=sys.stderr)  # figures depend on the instruction set
    router = AgenticRouter.open(args.workspace, llm_provider="none")
    with open(args.queries, encoding="utf-8") as fh:
        queries = [json.loads(line)["query"] for line in fh if line.strip()][: args.requests]
    views = {"defaults": router.view,
             args.other: router.workspace.view(weights=weights_from_spec(router.view.weights, args.other))}
    seconds: dict[str, list[float]] = {name: [] for name in views}
    for i, query in enumerate(queries):
        for name in (list(views) if i % 2 == 0 else list(views)[::-1]):
            start = time.perf_counter()
            views[name].rank(query, 5)
            seconds[name].append(time.perf_counter() - start)
    hits = router.route(queries[0], 5)
    start = time.perf_counter()
    router.abstains(hits)
    first = time.perf_counter() - start
    later = []
    for query in queries[:100]:
        ranked = router.route(query, 5)
        start = time.perf_counter()
        router.abstains(ranked)
        later.append(time.perf_counter() - start)
    out = {name: {"p50_ms": round(float(np.median(v)) * 1000, 2), "p99_ms": round(float(np.quantile(v, 0.99)) * 1000, 2)}
           for name, v in seconds.items()}
    out["abstains"] = {"first_ms": round(first * 1000, 1), "later_p50_us": round(float(np.median(later)) * 1e6, 1)}
    print(json.dumps(out, indent=2))
    router.close()


if __name__ == "__main__":
    main()
