"""Benchmarks (not tests): ingest throughput, route latency p50/p99 at 1k and 10k tools, memory.

Self-contained: documents and tools are generated from a seeded vocabulary, so the figures can be
reproduced on any machine without the shared data sets. Usage:

    .venv/bin/python scripts/bench.py [--docs 40] [--tool-counts 1000,10000] [--queries 200] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from agentic_router.indexes.encoders.cpu import cpu_summary
from agentic_router.indexes.schema import ToolSpec
from agentic_router.indexes.sources.documents import SourceDocument
from agentic_router.router.app import AgenticRouter

VERBS = "get list create update delete search convert translate analyze compute schedule send book track estimate".split()
NOUNS = (
    "weather invoice flight hotel stock recipe email calendar meeting route package currency sentence image "
    "genome patient order playlist ticket forecast budget contract shipment vaccine protein satellite"
).split()
ADJ = "current daily historical nearest cheapest detailed monthly regional secure quick annual".split()


def sentence(rng: random.Random) -> str:
    words = [rng.choice(ADJ), rng.choice(NOUNS), rng.choice(VERBS), "the", rng.choice(ADJ), rng.choice(NOUNS)]
    words += rng.sample(NOUNS, 4)
    return " ".join(words).capitalize() + "."


def make_docs(n: int, chars: int, seed: int) -> list[SourceDocument]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        body = []
        while sum(len(s) for s in body) < chars:
            body.append(sentence(rng))
        docs.append(SourceDocument(f"bench-{i}", f"Report {i} on {rng.choice(NOUNS)}", " ".join(body), "bench"))
    return docs


def make_tools(n: int, seed: int) -> list[ToolSpec]:
    rng = random.Random(seed)
    return [
        ToolSpec(
            name=f"{rng.choice(VERBS)}_{rng.choice(NOUNS)}_{i}",
            description=f"{rng.choice(VERBS).capitalize()} the {rng.choice(ADJ)} {rng.choice(NOUNS)} "
            f"for a {rng.choice(NOUNS)} and return its {rng.choice(NOUNS)}.",
            kind="external",
        )
        for i in range(n)
    ]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_ingest(root: Path, n_docs: int, chars: int) -> dict:
    router = AgenticRouter.open(root / "ingest", llm_provider="none")
    router.embedder  # load the model outside the timed region  # noqa: B018
    docs = make_docs(n_docs, chars, seed=1)
    start = time.perf_counter()
    report = router.ingest(docs)
    elapsed = time.perf_counter() - start
    again = time.perf_counter()
    router.ingest(docs)
    unchanged = time.perf_counter() - again
    return {
        "docs": n_docs, "chars_per_doc": chars, "chunks": report.chunks, "seconds": round(elapsed, 2),
        "docs_per_s": round(n_docs / elapsed, 2), "chunks_per_s": round(report.chunks / elapsed, 1),
        "reingest_unchanged_s": round(unchanged, 3),
    }


def bench_route(root: Path, n_tools: int, n_queries: int) -> dict:
    router = AgenticRouter.open(root / f"tools-{n_tools}", llm_provider="none")
    start = time.perf_counter()
    router.add_tools(make_tools(n_tools, seed=2))
    register_s = time.perf_counter() - start
    rng = random.Random(3)
    queries = [f"{rng.choice(VERBS)} the {rng.choice(ADJ)} {rng.choice(NOUNS)} for my {rng.choice(NOUNS)}" for _ in range(n_queries)]
    for q in queries[:10]:  # warm-up
        router.route(q, 5)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        router.route(q, 5)
        times.append(time.perf_counter() - t0)
    ms = np.asarray(times) * 1000
    return {
        "tools": n_tools, "queries": n_queries, "register_s": round(register_s, 1),
        "route_ms_p50": round(float(np.percentile(ms, 50)), 2), "route_ms_p99": round(float(np.percentile(ms, 99)), 2),
        "route_ms_mean": round(float(ms.mean()), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--chars", type=int, default=6000)
    parser.add_argument("--tool-counts", default="1000,10000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    print(f"CPU: {cpu_summary()}", file=sys.stderr)  # figures depend on the instruction set
    root = Path(tempfile.mkdtemp(prefix="agentic-router-bench-"))
    try:
        results = {"ingest": bench_ingest(root, args.docs, args.chars), "route": []}
        print(json.dumps(results["ingest"]), file=sys.stderr)
        for n in (int(x) for x in args.tool_counts.split(",")):
            results["route"].append(bench_route(root, n, args.queries))
            print(json.dumps(results["route"][-1]), file=sys.stderr)
        results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
