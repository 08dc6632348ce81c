"""Benchmark (not a test): the question encoder per backend and step, and what it does to a route.

    .venv/bin/python scripts/bench_encoder.py [--questions 200] [--tools 10000] [--workspace DIR] [--json OUT]

Part 1, the encoder alone: torch (sentence-transformers), ONNX fp32 and ONNX int8, each with 1 and 2
intra-op threads, on single questions and on batches of 8. Each step is timed on its own: tokenise,
inference (the transformer), pooling + normalise; ``encode`` is the whole public call, timed separately.
Every question (or batch) goes through all six settings before the next one, in an order that rotates,
so load from other jobs on the machine falls on every setting alike.

Part 2, routing: one catalog of ``--tools`` generated tools (those of ``scripts/bench.py``; cards
embedded once, by torch, as always), opened once per backend, and ``route`` p50/p99 per backend,
interleaved question by question. ``--workspace`` keeps the catalog between runs (registering 10,000
tools takes minutes); ``--tools 0`` skips this part.

Questions: for the encoder, BFCL requests when ``bench-results/data/bfcl/live.queries.jsonl`` exists (real
users' wording; not part of the repository), else the generated ones; for routing, the questions
``scripts/bench.py`` routes (its vocabulary and seed), so the figures compare with that benchmark.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from bench import ADJ, NOUNS, VERBS, make_tools

from agentic_router import AgenticRouter
from agentic_router.indexes.config import BUNDLED_EMBEDDER, RouterConfig
from agentic_router.indexes.encoders.cpu import cpu_summary
from agentic_router.indexes.encoders.embeddings import load_embedder, resolve_model_path
from agentic_router.indexes.encoders.onnx_encoder import VARIANTS, ModelLayout, OnnxQueryEncoder, ensure_export

BFCL = Path(__file__).resolve().parents[1] / "bench-results" / "data" / "bfcl" / "live.queries.jsonl"
STEPS = ("tokenize", "inference", "pool", "encode")
Steps = Callable[[list[str]], dict[str, float]]


def questions(n: int, bfcl: bool = True) -> tuple[list[str], str]:
    """BFCL requests if present (and wanted), else the questions ``scripts/bench.py`` routes (same seed)."""
    if bfcl and BFCL.is_file():
        rows = [json.loads(line)["query"] for line in BFCL.read_text(encoding="utf-8").splitlines() if line.strip()]
        return (rows * (n // len(rows) + 1))[:n], "BFCL live requests"
    rng = random.Random(3)
    return [f"{rng.choice(VERBS)} the {rng.choice(ADJ)} {rng.choice(NOUNS)} for my {rng.choice(NOUNS)}"
            for _ in range(n)], "generated questions"


def ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def torch_steps(threads: int) -> Steps:
    """sentence-transformers' own modules, called one by one (Transformer, Pooling, Normalize)."""
    st = load_embedder(RouterConfig.load(tempfile.mkdtemp(), embed_backend="torch", device="cpu")).model

    def run(batch: list[str]) -> dict[str, float]:
        torch.set_num_threads(threads)
        out = {}
        with torch.inference_mode():
            t = time.perf_counter()
            features = st.preprocess(batch) if hasattr(st, "preprocess") else st.tokenize(batch)
            out["tokenize"] = ms(t)
            t = time.perf_counter()
            features = st[0](features)
            out["inference"] = ms(t)
            t = time.perf_counter()
            for module in list(st)[1:]:
                features = module(features)
            features["sentence_embedding"].cpu().numpy()
            out["pool"] = ms(t)
        t = time.perf_counter()
        st.encode(batch, normalize_embeddings=True, show_progress_bar=False)
        out["encode"] = ms(t)
        return out

    return run


def onnx_steps(backend: str, threads: int) -> Steps:
    layout = ModelLayout.read(resolve_model_path(BUNDLED_EMBEDDER))
    encoder = OnnxQueryEncoder(layout, ensure_export(layout, VARIANTS[backend]), VARIANTS[backend], threads)

    def run(batch: list[str]) -> dict[str, float]:
        t = time.perf_counter()
        feeds = encoder.tokenize(batch)
        out = {"tokenize": ms(t)}
        t = time.perf_counter()
        hidden = encoder.infer(feeds)
        out["inference"] = ms(t)
        t = time.perf_counter()
        encoder.pool(hidden, feeds["attention_mask"])
        out["pool"] = ms(t)
        t = time.perf_counter()
        encoder.encode(batch)
        out["encode"] = ms(t)
        return out

    return run


def rotate(names: list[str], i: int) -> list[str]:
    return names[i % len(names):] + names[: i % len(names)]


def summary(samples: list[float]) -> dict[str, float]:
    return {"p50": round(float(np.percentile(samples, 50)), 2), "p99": round(float(np.percentile(samples, 99)), 2)}


def bench_encoder(asks: list[str], batch_sizes: list[int]) -> dict[str, dict[str, dict[str, float]]]:
    settings: dict[str, Steps] = {}
    for threads in (1, 2):
        settings[f"torch, {threads} thread(s)"] = torch_steps(threads)
        for backend in VARIANTS:
            settings[f"{backend}, {threads} thread(s)"] = onnx_steps(backend, threads)
    results: dict[str, dict[str, dict[str, float]]] = {}
    default_threads = torch.get_num_threads()
    for size in batch_sizes:
        batches = [asks[(i * size) % len(asks):][:size] or asks[:size] for i in range(len(asks))]
        times = {name: {step: [] for step in STEPS} for name in settings}
        for batch in batches[:10]:  # warm-up
            for run in settings.values():
                run(batch)
        names = list(settings)
        for i, batch in enumerate(batches):
            for name in rotate(names, i):
                for step, value in settings[name](batch).items():
                    times[name][step].append(value)
        for name, steps in times.items():
            results[f"batch {size}: {name}"] = {step: summary(v) for step, v in steps.items()}
    torch.set_num_threads(default_threads)
    return results


def bench_route(n_tools: int, asks: list[str], workspace: Path | None) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = workspace or Path(tmp) / "ws"
        builder = AgenticRouter.open(path, llm_provider="none", embed_backend="torch")
        if len(builder.list_tools()) != n_tools:
            t = time.perf_counter()
            builder.add_tools(make_tools(n_tools, seed=2), replace=True)
            print(f"registered {n_tools} tools in {ms(t) / 1000:.1f} s")
        routers = {"torch": builder}
        for backend in VARIANTS:
            routers[backend] = AgenticRouter.open(path, llm_provider="none", embed_backend=backend)
            assert routers[backend].view.embedder.backend == backend, "ONNX backend fell back to torch"
        times: dict[str, list[float]] = {name: [] for name in routers}
        for q in asks[:10]:  # warm-up: models, BM25 cache, Chroma
            for router in routers.values():
                router.route(q, 5)
        names = list(routers)
        for i, q in enumerate(asks):
            for name in rotate(names, i):
                t = time.perf_counter()
                routers[name].route(q, 5)
                times[name].append(ms(t))
        for router in routers.values():
            router.close()
    return {name: summary(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--workspace", type=Path, default=None, help="keep the routing catalog here")
    parser.add_argument("--skip-encoder", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    print(f"CPU: {cpu_summary()}", file=sys.stderr)  # figures depend on the instruction set
    asks, source = questions(args.questions)
    out: dict[str, object] = {"questions": args.questions, "source": source, "torch_default_threads": torch.get_num_threads()}
    if not args.skip_encoder:
        out["encoder_ms"] = bench_encoder(asks, [int(b) for b in args.batch_sizes.split(",")])
    if args.tools:
        route_asks, route_source = questions(args.questions, bfcl=False)  # the catalog's own vocabulary
        out["route_ms"] = {"tools": args.tools, "source": route_source,
                           **bench_route(args.tools, route_asks, args.workspace)}
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
