"""Benchmark (not a test): does each question encoder route as torch fp32 does, on this CPU?

    .venv/bin/python scripts/encoder_agreement.py --set NAME=WORKSPACE:QUERIES [--set ...]
        [--backends torch,onnx,onnx-int8] [--limit N] [--json OUT]

Each ``--set`` names a workspace whose catalog is already built (cards and chunks are embedded by torch
whatever the backend) and a labelled query file. Every backend opens the same workspace and routes every
question; the table gives, per set and backend, the share of questions whose first tool is torch's, the
cosine of the question vector to torch's (mean and minimum), and hit@1. Integer kernels of ONNX Runtime
differ between instruction sets, so the CPU line printed first is part of the result.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from agentic_router import AgenticRouter
from agentic_router.indexes.encoders.cpu import cpu_info, cpu_summary
from agentic_router.indexes.encoders.embeddings import embed_queries


def read_queries(path: Path, limit: int | None) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def first_tools(router: AgenticRouter, rows: list[dict], label: str) -> list[tuple[str, str | None]]:
    """(first tool, its document) per question; a question the router abstains on counts as ``None``."""
    out = []
    for row in tqdm(rows, desc=label, file=sys.stderr, leave=False):
        hits = router.route(row["query"], k=1)
        out.append((hits[0].name, hits[0].doc_id) if hits else ("", None))
    return out


def measure(name: str, workspace: Path, queries: Path, backends: list[str], limit: int | None) -> list[dict]:
    rows = read_queries(queries, limit)
    texts = [r["query"] for r in rows]
    results: dict[str, dict] = {}
    for backend in backends:
        router = AgenticRouter.open(workspace, llm_provider="none", embed_backend=backend, device="cpu")
        try:
            started = time.perf_counter()
            vectors = np.asarray(embed_queries(router.view.query_embedder, texts), dtype=np.float32)
            firsts = first_tools(router, rows, f"{name} {backend}")
            seconds = time.perf_counter() - started
        finally:
            router.close()
        hits = [bool(set(r["gold"]) & {tool, doc}) for r, (tool, doc) in zip(rows, firsts)]
        results[backend] = {"vectors": vectors, "firsts": firsts, "hit@1": float(np.mean(hits)), "seconds": seconds}
    base = results["torch"]
    table = []
    for backend in backends:
        got = results[backend]
        cosine = (got["vectors"] * base["vectors"]).sum(axis=1)
        agree = np.mean([a == b for a, b in zip(got["firsts"], base["firsts"])])
        table.append({"set": name, "backend": backend, "n": len(rows), "first_tool_agreement": round(float(agree), 4),
                      "cosine_mean": round(float(cosine.mean()), 5), "cosine_min": round(float(cosine.min()), 5),
                      "hit@1": round(got["hit@1"], 4), "seconds": round(got["seconds"], 1)})
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", required=True, metavar="NAME=WORKSPACE:QUERIES")
    parser.add_argument("--backends", default="torch,onnx,onnx-int8")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    backends = args.backends.split(",")
    if "torch" not in backends:
        backends.insert(0, "torch")
    print(f"CPU: {cpu_summary()}", flush=True)
    table = []
    for item in args.set:
        name, _, rest = item.partition("=")
        workspace, _, queries = rest.partition(":")
        table += measure(name, Path(workspace), Path(queries), backends, args.limit)
    print("| set | backend | n | first tool as torch | cosine mean / min | hit@1 | seconds |")
    print("|---|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['set']} | {r['backend']} | {r['n']} | {r['first_tool_agreement']:.4f} | "
              f"{r['cosine_mean']:.5f} / {r['cosine_min']:.5f} | {r['hit@1']:.4f} | {r['seconds']} |")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_info(), "rows": table}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
