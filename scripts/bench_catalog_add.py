"""Benchmark (not a test): adding one tool to a large catalog, until a route sees it.

The issue's target: adding one tool to a 100k-tool catalog takes at most 1 s on 2 warm cores, embedding the
card and writing it to Chroma and SQLite included, so the BM25 index must follow the catalog without a full
rebuild. This script builds (once) a synthetic catalog of N tools, warms a router with one route (the
BM25 index is built or loaded there), then for each of ``--adds`` new tools times:

- ``add: embed card`` and ``add: Chroma + SQLite``: ``Catalog.add_tools([one], embed)``, what
  ``AgenticRouter.add_tools`` runs, with the card's encoder call timed apart from the rest (Chroma upsert,
  SQLite commit with its change-log rows);
- ``BM25 update``: what the next route needs of BM25 (the same ``LexicalCache.get`` call the retriever makes);
- ``first route``: the route after the addition (a question made of the new tool's own words; it must
  rank first);
- ``total: add until routed``: the four together;
- ``route after an addition``: one more route with another question right after, alternated with
  ``route, no addition before`` (the same kind of question, no addition before it), so that a shared
  machine's noise hits both alike.

Each phase is reported as wall time and as CPU time of the process (all threads): on a shared machine the
first says how long it took, the second what it cost.

The catalog is cached under ``bench-results/catalog-add/tools-N`` (embedding 100k cards takes a while; a
restart resumes); the tools added by a run are deleted at its end, so the next run starts from the same N.

``--vectors pool`` builds the background catalog without embedding every card: the first 1,000 cards are
embedded by the model and every other card gets one of those vectors plus a little noise (cached apart,
under ``tools-N-pool``). Texts, BM25, the Chroma collection's size and everything timed (the added card is
embedded by the model) are real; only the dense similarity of the background tools is approximate. For a
machine too busy to embed 100k cards in time. Usage:

    .venv/bin/python scripts/bench_catalog_add.py [--tools 100000] [--adds 20] [--vectors model|pool]
        [--threads N] [--build-only] [--bm25-only] [--json]

``--bm25-only`` times the lexical index alone on the same cards, no model or Chroma (full build, one
addition, one removal, a question, a snapshot save and load), e.g. at 1M tools.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from agentic_router.indexes.encoders.cpu import cpu_summary
from agentic_router.indexes.encoders.embeddings import embed_texts
from agentic_router.indexes.lexical.cache import LexicalIndex, default_stopwords, import_bm25s, tokenize
from agentic_router.indexes.schema import ToolSpec
from agentic_router.router.app import AgenticRouter

ROOT = Path(__file__).resolve().parent.parent / "bench-results" / "catalog-add"
BATCH = 2000  # tools per catalog write while building: one progress step, and a restart resumes from here
POOL = 1000  # cards embedded by the model with --vectors pool
VERBS = ("get list create update delete search convert translate analyze compute schedule send book track "
         "estimate export import merge validate archive").split()
NOUNS = ("weather invoice flight hotel stock recipe email calendar meeting route package currency sentence image "
         "genome patient order playlist ticket forecast budget contract shipment vaccine protein satellite ledger "
         "warehouse subscription payroll receipt").split()
ADJ = "current daily historical nearest cheapest detailed monthly regional secure quick annual pending".split()
SYLLABLES = "ka lo mi zu ver tan qui rob sel dor fen gal hix jum nep".split()
TEMPLATES = (
    "{V} the {A} {N} of a {N2} and return its {N3}.",
    "Use this to {v} {N} records stored in the {brand} {N2} service.",
    "{V} {A} {N} data for the given {N2}; supports {brand} accounts and {N3} filters.",
    "Returns the {A} {N} for a {N2}. Backed by the {brand} API.",
)


def brand(rng: random.Random) -> str:
    """A made-up product word (2-3 syllables): gives the catalog a long tail of rare words, as real
    catalogs have (product names, identifiers)."""
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))


def make_tool(i: int, rng: random.Random, prefix: str = "") -> ToolSpec:
    verb, noun, noun2, noun3 = rng.choice(VERBS), rng.choice(NOUNS), rng.choice(NOUNS), rng.choice(NOUNS)
    text = rng.choice(TEMPLATES).format(V=verb.capitalize(), v=verb, A=rng.choice(ADJ), N=noun, N2=noun2, N3=noun3,
                                        brand=brand(rng))
    return ToolSpec(name=f"{prefix}{verb}_{noun}_{i}", description=text, kind="external")


def pool_embedder(router: AgenticRouter, cards: list[str]) -> Callable[[list[str]], list[list[float]]]:
    """Vectors for ``--vectors pool``: a card gets the model's vector of one of ``POOL`` real cards (chosen by
    a hash of its text), plus noise, normalised."""
    pool = np.asarray(embed_texts(router.view.embedder, cards[:POOL], show_progress=True), dtype=np.float32)

    def embed(texts: list[str]) -> list[list[float]]:
        out = []
        for text in texts:
            seed = zlib.crc32(text.encode("utf-8"))
            vec = pool[seed % len(pool)] + np.random.default_rng(seed).normal(0.0, 0.02, pool.shape[1]).astype(np.float32)
            out.append((vec / np.linalg.norm(vec)).tolist())
        return out

    return embed


def build_catalog(router: AgenticRouter, n_tools: int, vectors: str = "model") -> float:
    """Register tools ``0..n_tools-1`` that are not there yet (a restart resumes); returns seconds spent."""
    have = router.catalog.count_tools()
    if have >= n_tools:
        return 0.0
    rng = random.Random(7)
    tools = [make_tool(i, rng) for i in range(n_tools)]
    model = router.view.embedder
    embedder = pool_embedder(router, [t.card() for t in tools]) if vectors == "pool" else (
        lambda texts: embed_texts(model, texts))
    start = time.perf_counter()
    with tqdm(total=n_tools, initial=have, desc="embedding the catalog", unit="tool", file=sys.stderr) as bar:
        for lo in range(have - have % BATCH, n_tools, BATCH):
            part = tools[lo:lo + BATCH]
            router.catalog.add_tools(part, embedder)
            bar.update(min(lo + BATCH, n_tools) - max(lo, have))
    return time.perf_counter() - start


def ms(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values) * 1000
    return {"p50": round(float(np.percentile(arr, 50)), 2), "p90": round(float(np.percentile(arr, 90)), 2),
            "max": round(float(arr.max()), 2)}


def workspace(n_tools: int, vectors: str) -> Path:
    return ROOT / (f"tools-{n_tools}" + ("-pool" if vectors == "pool" else ""))


class Clock:
    """Wall and CPU time (all threads of the process) of the phases of a run: on a shared machine the CPU
    time says what a phase costs, the wall time what it took with the other jobs around."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}
        self.mark = (time.perf_counter(), time.process_time())

    def lap(self, name: str) -> None:
        now = (time.perf_counter(), time.process_time())
        self.wall.setdefault(name, []).append(now[0] - self.mark[0])
        self.cpu.setdefault(name, []).append(now[1] - self.mark[1])
        self.mark = now

    def add(self, name: str, parts: Sequence[str]) -> None:
        """A phase made of several others (same lap count)."""
        self.wall[name] = [sum(v) for v in zip(*(self.wall[p] for p in parts))]
        self.cpu[name] = [sum(v) for v in zip(*(self.cpu[p] for p in parts))]


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def run(n_tools: int, n_adds: int, vectors: str) -> dict:
    router = AgenticRouter.open(workspace(n_tools, vectors), llm_provider="none")
    try:
        built_s = build_catalog(router, n_tools, vectors)
        rng = random.Random(11)
        questions = [f"{rng.choice(VERBS)} the {rng.choice(ADJ)} {rng.choice(NOUNS)} for my {rng.choice(NOUNS)}"
                     for _ in range(n_adds + 5)]
        cache, catalog, model = router.workspace.lexical, router.catalog, router.view.embedder
        t0 = time.perf_counter()
        router.route(questions[-1], k=5)  # warm: model, Chroma, BM25 (loaded, replayed or built here)
        warm_s = time.perf_counter() - t0
        for q in questions[-4:-1]:
            router.route(q, k=5)
        full_builds = cache.full_builds
        clock = Clock()

        def embed(texts: list[str]) -> list[list[float]]:  # what AgenticRouter.add_tools passes, timed apart
            clock.lap("add: Chroma + SQLite")
            vectors = embed_texts(model, texts)
            clock.lap("add: embed card")
            return vectors

        added, found = [], 0
        stamp = int(time.time())
        for i in range(n_adds):
            clock.lap("-")
            router.route(questions[i], k=5)
            clock.lap("route, no addition before")
            word = f"zq{stamp}x{i}"
            spec = ToolSpec(name=f"bench_added_{stamp}_{i}", kind="external",
                            description=f"Export the {word} ledger of a {rng.choice(NOUNS)} to the archive.")
            router.catalog.add_tools([spec], embed)
            clock.lap("add: Chroma + SQLite")  # the part after the embedding
            cache.get(catalog.cards, catalog.version(), "cards", catalog.db.changes_since)
            clock.lap("BM25 update")
            hits = router.route(f"{word} ledger export", k=5)
            clock.lap("first route")
            router.route(questions[i], k=5)
            clock.lap("route after an addition")
            added.append(spec.name)
            found += bool(hits) and hits[0].name == spec.name
        for key in ("add: Chroma + SQLite",):  # two laps per addition (before and after the embedding)
            clock.wall[key] = [a + b for a, b in zip(clock.wall[key][::2], clock.wall[key][1::2])]
            clock.cpu[key] = [a + b for a, b in zip(clock.cpu[key][::2], clock.cpu[key][1::2])]
        clock.add("total: add until routed", ("add: embed card", "add: Chroma + SQLite", "BM25 update", "first route"))
        rebuilds = cache.full_builds - full_builds
        t = time.perf_counter()
        router.delete_tools(added)
        delete_s = time.perf_counter() - t
        router.route(questions[0], k=5)
        order = ("add: embed card", "add: Chroma + SQLite", "BM25 update", "first route", "total: add until routed",
                 "route after an addition", "route, no addition before")
        return {
            "tools": n_tools, "vectors": vectors, "adds": n_adds, "catalog_build_s": round(built_s, 1),
            "warm_route_s": round(warm_s, 2), "wall_ms": {k: ms(clock.wall[k]) for k in order},
            "cpu_ms": {k: ms(clock.cpu[k]) for k in order}, "new_tool_ranked_first": f"{found}/{n_adds}",
            "full_bm25_builds_during_adds": rebuilds, "delete_all_added_s": round(delete_s, 2),
            "load_average": [round(x, 1) for x in os.getloadavg()], "torch_threads": torch_threads(),
        }
    finally:
        router.close()


def bm25_only(n_tools: int, n_adds: int) -> dict:
    """The lexical index alone: what adding a card costs it, against what a full build costs (and what the
    bm25s build every catalog change cost before)."""
    rng = random.Random(7)
    cards = [make_tool(i, rng).card() for i in range(n_tools)]
    t = time.perf_counter()
    index = LexicalIndex([f"t{i}" for i in range(n_tools)], cards, default_stopwords())
    build_s = time.perf_counter() - t
    bm25s = import_bm25s()
    t = time.perf_counter()
    model = bm25s.BM25()
    model.index([tokenize(c, default_stopwords()) or ["_"] for c in cards], show_progress=False)
    bm25s_s = time.perf_counter() - t
    questions = [f"{rng.choice(VERBS)} the {rng.choice(ADJ)} {rng.choice(NOUNS)} for my {rng.choice(NOUNS)} {brand(rng)}"
                 for _ in range(max(n_adds, 20))]
    parts: dict[str, list[float]] = {"add": [], "remove": [], "match": [], "bm25s match": []}
    for i in range(n_adds):
        t = time.perf_counter()
        index.apply({f"new{i}": [f"Export the zq{i} ledger of a {rng.choice(NOUNS)} to the archive."]})
        parts["add"].append(time.perf_counter() - t)
        t = time.perf_counter()
        index.apply({f"t{i}": []})
        parts["remove"].append(time.perf_counter() - t)
    for q in questions:  # alternated with the previous implementation's search (bm25s retrieve)
        t = time.perf_counter()
        index.match(q, 32)
        parts["match"].append(time.perf_counter() - t)
        t = time.perf_counter()
        model.retrieve([tokenize(q, default_stopwords())], k=32, show_progress=False)
        parts["bm25s match"].append(time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        index.save(Path(tmp) / "snap", 1)
        save_s = time.perf_counter() - t
        t = time.perf_counter()
        LexicalIndex.load(Path(tmp) / "snap", default_stopwords())
        load_s = time.perf_counter() - t
    return {"tools": n_tools, "full_build_s": round(build_s, 2), "bm25s_full_build_s": round(bm25s_s, 2), "ms": {k: ms(v) for k, v in parts.items()},
            "save_s": round(save_s, 2), "load_s": round(load_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tools", type=int, default=100_000)
    parser.add_argument("--adds", type=int, default=20)
    parser.add_argument("--vectors", choices=("model", "pool"), default="model",
                        help="background cards embedded by the model (default) or drawn from a pool of 1,000")
    parser.add_argument("--build-only", action="store_true", help="build (or finish building) the cached catalog")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for the embedder (0: torch's default)")
    parser.add_argument("--bm25-only", action="store_true", help="time the lexical index alone (no model, no Chroma)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a summary")
    args = parser.parse_args()
    print(f"CPU: {cpu_summary()}", file=sys.stderr)  # figures depend on the instruction set
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.build_only:
        router = AgenticRouter.open(workspace(args.tools, args.vectors), llm_provider="none")
        try:
            print(f"built in {build_catalog(router, args.tools, args.vectors):.0f} s", file=sys.stderr)
        finally:
            router.close()
        return
    if args.bm25_only:
        print(json.dumps(bm25_only(args.tools, args.adds), indent=2 if args.json else None))
        return
    result = run(args.tools, args.adds, args.vectors)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['tools']:,} tools ({result['vectors']} vectors), {result['adds']} additions, "
          f"{result['torch_threads']} torch threads, load average "
          f"{result['load_average']} (ms, wall p50 / p90 / max | CPU p50)")
    for key, value in result["wall_ms"].items():
        print(f"  {key:<26} {value['p50']:>8} {value['p90']:>8} {value['max']:>8} | {result['cpu_ms'][key]['p50']:>8}")
    print(f"  new tool ranked first: {result['new_tool_ranked_first']}; full BM25 builds during the additions: "
          f"{result['full_bm25_builds_during_adds']}")


if __name__ == "__main__":
    main()
