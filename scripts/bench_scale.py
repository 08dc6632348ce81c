"""Routing at 10k / 100k / 1M tools, and an LLM selector over 100 tools as the baseline routing replaces.

    .venv/bin/python scripts/bench_scale.py [--sizes 10000,100000,1000000] [--clients 16] [--requests 2000]
        [--selector-tools 100] [--selector-questions 50] [--no-selector] [--json OUT] [--cache DIR]

For each catalog size: in-process route p50/p99 (warm) and hit@1/hit@5 on labelled questions, resident
memory, the time to add one tool (its registration plus the first route that finds it), and HTTP
throughput/p50/p99 with ``--clients`` concurrent clients against a real ``agentic-router serve`` process
(``scripts/bench_http.py``'s machinery). Then, once per run, LlamaIndex's ``LLMSingleSelector`` with the
bundled local LLM choosing among ``--selector-tools`` tools of the catalog, against the router over the
same tools and questions: why routing is done by retrieval.

The catalog is synthetic and deterministic: every tool is one combination of domain x action x qualifier
x object (1.25M combinations), its description and parameters worded from templates; the labelled
questions paraphrase the action and qualifier and name the domain by a place ("at the clinic"), so they
share fewer words with the card than a copy would. The catalog of N tools is the first N of one seeded
permutation, so a smaller catalog is a prefix of a larger one and its card vectors are a prefix of the
larger one's. Card vectors are computed once with the workspace's embedder and cached under ``--cache``
(resumable: embedding 1M cards on two CPU cores takes hours); each size's workspace is built once from
them and reused, so the timed parts rerun quickly. ``--embed-only`` fills the vector cache and stops.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import re
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import free_port, load, start_server, stop_server  # noqa: E402

from agentic_router import AgenticRouter  # noqa: E402
from agentic_router.indexes.encoders.cpu import cpu_summary
from agentic_router.indexes.encoders.embeddings import embed_texts  # noqa: E402
from agentic_router.indexes.schema import ToolSpec  # noqa: E402

GENERATOR = 1  # bump when the wording below changes: cached vectors and workspaces are keyed by it

# (name, place used in questions)
DOMAINS = (
    ("retail", "for our shops"), ("logistics", "in the freight network"), ("healthcare", "at the clinic"),
    ("banking", "at the bank"), ("music", "on the streaming service"), ("hospitality", "at the hotel"),
    ("agriculture", "on the farm"), ("aviation", "for the airline"), ("education", "at the school"),
    ("energy", "at the power utility"), ("legal", "at the law firm"), ("government", "at the city council"),
    ("telecom", "for the phone carrier"), ("gaming", "in the game studio"), ("real estate", "at the property agency"),
    ("manufacturing", "at the factory"), ("insurance", "at the insurer"), ("media", "in the newsroom"),
    ("automotive", "at the car dealership"), ("pharmacy", "at the drugstore"), ("construction", "on the building site"),
    ("shipping", "at the port"), ("nonprofit", "for the charity"), ("fitness", "at the gym"),
    ("restaurant", "in the restaurant kitchen"), ("library", "at the public library"),
    ("veterinary", "at the animal hospital"), ("mining", "at the mine"), ("fashion", "for the clothing brand"),
    ("travel", "at the travel agency"), ("publishing", "at the book publisher"), ("research", "in the research lab"),
    ("security", "for the guards"), ("utilities", "at the water company"), ("sports", "for the football club"),
    ("museum", "at the museum"), ("parking", "for the car park operator"), ("recruiting", "at the staffing agency"),
    ("events", "for the conference organiser"), ("dental", "at the dentist's practice"),
)
# (name, description with {q} qualifier / {s} singular / {p} plural, the same request in a user's words)
ACTIONS = (
    ("create", "Creates a {q} {s}", "open a new {q} {s}"), ("delete", "Deletes a {q} {s}", "remove the {q} {s}"),
    ("list", "Lists all {q} {p}", "pull up every {q} {s}"),
    ("update", "Updates the fields of a {q} {s}", "change the details of a {q} {s}"),
    ("archive", "Archives {q} {p}", "put the {q} {p} into cold storage"),
    ("export", "Exports {q} {p} to CSV", "download a spreadsheet of the {q} {p}"),
    ("import", "Imports {q} {p} from a file", "load {q} {p} from a file I have"),
    ("validate", "Validates a {q} {s} against the rules", "check whether a {q} {s} is valid"),
    ("schedule", "Schedules a {q} {s}", "plan a {q} {s} for later"),
    ("cancel", "Cancels a {q} {s}", "call off a {q} {s}"),
    ("approve", "Approves a {q} {s}", "give the green light to a {q} {s}"),
    ("reject", "Rejects a {q} {s}", "turn down a {q} {s}"),
    ("merge", "Merges duplicate {q} {p}", "combine the doubled {q} {p}"),
    ("count", "Counts {q} {p}", "tally up the {q} {p}"),
    ("search", "Searches {q} {p} by keyword", "find {q} {p} that mention a word"),
    ("summarise", "Summarises {q} {p}", "get a short overview of the {q} {p}"),
    ("forecast", "Forecasts the volume of {q} {p}", "predict how many {q} {p} we will get"),
    ("audit", "Audits {q} {p} for errors", "go over the {q} {p} looking for mistakes"),
    ("assign", "Assigns a {q} {s} to a person", "hand a {q} {s} over to a colleague"),
    ("notify", "Sends a reminder about a {q} {s}", "nudge people about a {q} {s}"),
    ("translate", "Translates a {q} {s} into another language", "get a {q} {s} in another language"),
    ("print", "Prints a {q} {s}", "make a paper copy of a {q} {s}"),
    ("restore", "Restores a deleted {q} {s}", "bring back a {q} {s} that was thrown away"),
    ("tag", "Adds labels to a {q} {s}", "put a label on a {q} {s}"),
    ("compare", "Compares two {q} {p}", "put two {q} {p} side by side"),
)
# (name, the user's word for it)
QUALIFIERS = (
    ("overdue", "late"), ("draft", "unfinished"), ("recent", "latest"), ("recurring", "repeating"),
    ("international", "foreign"), ("urgent", "high-priority"), ("monthly", "once-a-month"), ("pending", "waiting"),
    ("flagged", "marked"), ("disputed", "contested"), ("expired", "lapsed"), ("confidential", "private"),
    ("regional", "local"), ("premium", "top-tier"), ("seasonal", "holiday-season"), ("unpaid", "not yet paid"),
    ("verified", "confirmed"), ("incomplete", "half-filled"), ("weekly", "every-week"), ("legacy", "outdated"),
    ("bulk", "large-batch"), ("temporary", "short-term"), ("shared", "team-wide"), ("high-value", "expensive"),
    ("anonymous", "unnamed"),
)
OBJECTS = (
    "invoice", "shipment", "ticket", "contract", "playlist", "reservation", "payroll run", "sensor reading", "lease",
    "prescription", "warranty claim", "podcast episode", "tax return", "purchase order", "vaccine lot",
    "flight booking", "grant proposal", "lab sample", "loyalty card", "recipe", "firmware image", "court filing",
    "crop report", "parking permit", "insurance quote", "timesheet", "expense report", "job posting",
    "customer complaint", "delivery route", "room booking", "user account", "product listing", "refund request",
    "maintenance request", "training course", "survey response", "press release", "inventory count",
    "safety inspection", "membership", "donation", "budget line", "supplier", "project milestone",
    "patient referral", "work order", "gift card", "subscription", "photo album",
)
FIELDS = ("status", "owner", "due date", "total", "history", "region", "priority", "currency", "version", "notes",
          "created date", "reference number")
EXTRA_PARAMS = ("limit", "dry_run", "locale", "output_format", "since", "until")
DESCRIPTIONS = (  # short on purpose: embedding 1M cards costs time in proportion to their tokens
    "{act} in the {dom} system; returns its {f1}.",
    "For {dom} teams: {act_l}. Reports {f1}.",
    "{act} kept in {dom} records ({f1}).",
    "{Dom} back office: {act_l}, with its {f1}.",
)
QUESTIONS = ("{ask} {place}", "could you {ask} {place}?", "I need to {ask} {place}", "{Place}, {ask}, please")
SHAPE = (len(DOMAINS), len(ACTIONS), len(QUALIFIERS), len(OBJECTS))
TOTAL = int(np.prod(SHAPE))


def snake(text: str) -> str:
    return text.replace(" ", "_").replace("-", "_").replace("'", "")


def articles(text: str) -> str:
    """``a overdue`` -> ``an overdue`` (but ``a user account``): the templates put "a" before any word."""
    return re.sub(r"\b([Aa]) (?=[aeio]|u(?!s))", r"\1n ", text)


class SyntheticCatalog:
    """Tool ``i`` of every catalog built from one seed: a prefix of one permutation of all combinations."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.seed = seed
        self.combo = rng.permutation(TOTAL)
        self.template = rng.integers(0, len(DESCRIPTIONS), TOTAL)
        self.field1 = rng.integers(0, len(FIELDS), TOTAL)
        self.extra = rng.integers(0, len(EXTRA_PARAMS), TOTAL)

    def parts(self, i: int) -> tuple[tuple[str, str], tuple[str, str, str], tuple[str, str], str]:
        d, a, q, o = np.unravel_index(int(self.combo[i]), SHAPE)
        return DOMAINS[d], ACTIONS[a], QUALIFIERS[q], OBJECTS[o]

    def tool(self, i: int) -> ToolSpec:
        (dom, _), (verb, act, _), (qual, _), obj = self.parts(i)
        act = act.format(q=qual, s=obj, p=obj + "s")
        text = DESCRIPTIONS[int(self.template[i])].format(
            act=act, act_l=act[0].lower() + act[1:], dom=dom, Dom=dom.capitalize(),
            f1=FIELDS[int(self.field1[i])])
        text = articles(text)
        params = {"type": "object", "properties": {f"{snake(obj)}_id": {"type": "string"},
                                                   EXTRA_PARAMS[int(self.extra[i])]: {"type": "string"}}}
        return ToolSpec(name=f"{verb}_{snake(qual)}_{snake(obj)}_{snake(dom)}", description=text, kind="external",
                        parameters=params)

    def question(self, i: int, variant: int) -> str:
        """A request for tool ``i`` in other words: the action and qualifier paraphrased, the domain a place."""
        (_, place), (_, _, ask), (_, said), obj = self.parts(i)
        text = QUESTIONS[variant % len(QUESTIONS)].format(ask=ask.format(q=said, s=obj, p=obj + "s"), place=place,
                                                          Place=place[0].upper() + place[1:])
        return articles(text[0].upper() + text[1:])

    def labelled(self, n_tools: int, count: int, salt: int) -> list[tuple[str, str]]:
        """``count`` (question, gold tool name) pairs for tools drawn from the first ``n_tools``."""
        rng = np.random.default_rng([self.seed, salt])
        picks = rng.integers(0, n_tools, count)
        variants = rng.integers(0, len(QUESTIONS), count)
        return [(self.question(int(i), int(v)), self.tool(int(i)).name) for i, v in zip(picks, variants)]


# ---- vectors and workspaces, cached ----------------------------------------------------------------
def vector_key(seed: int, tag: str) -> str:
    return f"vectors-g{GENERATOR}-s{seed}-{tag}"


def cached_vectors(cat: SyntheticCatalog, n: int, router: AgenticRouter, cache: Path) -> tuple[np.ndarray, float]:
    """Card vectors of tools 0..n-1 (float32, normalised), embedded once by the workspace's own embedder;
    any cached file of at least n rows serves, since smaller catalogs are prefixes. Embedding is written
    chunk by chunk into a ``.partial`` file that a later run resumes. Returns (vectors, seconds spent)."""
    key = vector_key(cat.seed, router.view.tag)
    for path in sorted(cache.glob(f"{key}-n*.npy")):
        if ".partial" not in path.name and int(path.stem.rsplit("-n", 1)[1]) >= n:
            return np.load(path, mmap_mode="r")[:n], 0.0
        progress = path.with_suffix(".json")
        if ".partial" in path.name and progress.is_file() and json.loads(progress.read_text())["done"] >= n:
            return np.load(path, mmap_mode="r")[:n], 0.0  # a larger run still embedding has these rows already
    final, partial, done_file = (cache / f"{key}-n{n}.npy", cache / f"{key}-n{n}.partial.npy",
                                 cache / f"{key}-n{n}.partial.json")
    embedder = router.view.embedder
    dim = len(embed_texts(embedder, ["dimension probe"])[0])
    if partial.is_file() and done_file.is_file():
        out = np.lib.format.open_memmap(partial, mode="r+")
        done = json.loads(done_file.read_text())["done"]
    else:
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(n, dim))
        done = 0
        for path in cache.glob(f"{key}-n*.npy"):  # a smaller finished cache is this one's prefix
            rows = int(path.stem.rsplit("-n", 1)[1]) if ".partial" not in path.name else 0
            if done < rows < n:
                out[:rows] = np.load(path, mmap_mode="r")
                done = rows
        out.flush()
        done_file.write_text(json.dumps({"done": done}))
    start, step = time.perf_counter(), 2048
    with tqdm(total=n, initial=done, desc=f"embed {n:,} cards", unit="card") as bar:
        for lo in range(done, n, step):
            hi = min(n, lo + step)
            out[lo:hi] = np.asarray(embed_texts(embedder, [cat.tool(i).card() for i in range(lo, hi)]), np.float32)
            out.flush()
            done_file.write_text(json.dumps({"done": hi}))
            bar.update(hi - lo)
    del out
    partial.rename(final)
    done_file.unlink()
    return np.load(final, mmap_mode="r"), time.perf_counter() - start


def build_workspace(cat: SyntheticCatalog, n: int, ws: Path, vectors: np.ndarray) -> float:
    """Register tools 0..n-1 in ``ws`` with their cached vectors (the catalog's own write path, with an
    embed callable that looks the card up instead of running the model). Resumable: present tools are
    skipped by ``add_tools``. Returns seconds spent."""
    router = AgenticRouter.open(ws, llm_provider="none")
    start = time.perf_counter()
    if router.catalog.count_tools() != n:
        step = 5000
        for lo in tqdm(range(0, n, step), desc=f"register {n:,} tools", unit="batch"):
            specs = [cat.tool(i) for i in range(lo, min(n, lo + step))]
            row_of = {spec.card(): lo + k for k, spec in enumerate(specs)}
            router.catalog.add_tools(specs, lambda cards: [vectors[row_of[c]].tolist() for c in cards])
    router.close()
    return time.perf_counter() - start


# ---- measurements ------------------------------------------------------------------------------------
def rss_mb(pid: int | None = None) -> float:
    """Resident memory of a process (this one by default), in MiB."""
    try:
        import psutil

        return psutil.Process(pid or os.getpid()).memory_info().rss / 2**20
    except ImportError:
        for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values) * 1000, q)), 1) if values else float("nan")


def route_accuracy(router: AgenticRouter, labelled: list[tuple[str, str]], desc: str
                   ) -> tuple[list[float], float, float]:
    """Latency of each warm route (seconds), and hit@1, hit@5 against each question's tool."""
    times, hit1, hit5 = [], 0, 0
    for query, gold in tqdm(labelled, desc=desc, unit="q"):
        t0 = time.perf_counter()
        names = [h.name for h in router.route(query, 5)]
        times.append(time.perf_counter() - t0)
        hit1 += names[:1] == [gold]
        hit5 += gold in names
    return times, hit1 / len(labelled), hit5 / len(labelled)


def add_one_tool(router: AgenticRouter, cat: SyntheticCatalog, n: int, adds: int) -> dict[str, Any]:
    """Register tools the catalog does not hold, one at a time; each timed from ``add_tools`` to the end of
    the first route that finds it (asked with its own description, so that it must come back: the route
    also rebuilds whatever BM25 state the catalog change made stale). They are removed afterwards, so the
    cached workspace keeps exactly n tools."""
    specs = [cat.tool(i) for i in range(n, min(TOTAL, n + adds))]
    stale = list(router.catalog.get_tools([s.name for s in specs]))
    if stale:  # left by an interrupted run
        router.delete_tools(stale)
    add_s, route_s, found = [], [], 0
    for spec in tqdm(specs, desc="add one tool", unit="tool"):
        t0 = time.perf_counter()
        router.add_tools([spec])
        t1 = time.perf_counter()
        hits = router.route(spec.description, 5)
        route_s.append(time.perf_counter() - t1)
        add_s.append(t1 - t0)
        found += spec.name in [h.name for h in hits]
    router.delete_tools([s.name for s in specs])
    router.route("warm the BM25 index again after the removal", 5)
    total = [a + r for a, r in zip(add_s, route_s)]
    return {"adds": len(specs), "add_p50_ms": pct(total, 50), "add_max_ms": pct(total, 100),
            "add_register_p50_ms": pct(add_s, 50), "add_first_route_p50_ms": pct(route_s, 50),
            "added_found_in_top5": found}


def http_figures(ws: Path, labelled: list[tuple[str, str]], clients: int, warmup: int = 100) -> dict[str, Any]:
    """``bench_http``'s load against a fresh ``serve`` process on this workspace: 100 warm-up requests,
    then the rest with ``clients`` concurrent clients. The server's RSS is read after the load."""
    port = free_port()
    proc, ready_s = start_server(ws, port, 2.0, 1, ws.parent / f"{ws.name}-server.log")
    try:
        url = f"http://127.0.0.1:{port}"
        asyncio.run(load(url, labelled[:warmup], clients))
        load_before = os.getloadavg()[0]
        latencies, errors, hits, wall = asyncio.run(load(url, labelled[warmup:], clients))
        server_rss = rss_mb(proc.pid)
    finally:
        stop_server(proc)
    return {"http_requests": len(latencies), "http_clients": clients, "http_rps": round(len(latencies) / wall, 1),
            "http_p50_ms": pct(latencies, 50), "http_p99_ms": pct(latencies, 99), "http_errors": errors,
            "http_hit_at_1": round(hits / len(latencies), 3), "server_ready_s": round(ready_s, 1),
            "server_rss_mb": round(server_rss, 1), "load_avg_before_http": round(load_before, 2),
            "load_avg_after_http": round(os.getloadavg()[0], 2)}


def bench_size(cat: SyntheticCatalog, n: int, args: argparse.Namespace, probe: AgenticRouter) -> dict[str, Any]:
    started = time.perf_counter()
    vectors, vectors_s = cached_vectors(cat, n, probe, args.cache)
    ws = args.cache / f"ws-{n}-g{GENERATOR}-s{cat.seed}-{probe.view.tag}"
    build_s = build_workspace(cat, n, ws, vectors)
    del vectors
    gc.collect()
    labelled = cat.labelled(n, max(args.questions, args.requests + 100), salt=n)
    router = AgenticRouter.open(ws, llm_provider="none")
    t0 = time.perf_counter()
    router.route(labelled[0][0], 5)  # loads the embedder and the BM25 index (built and cached on a first run)
    first_route_s = time.perf_counter() - t0
    for query, _ in labelled[1:11]:
        router.route(query, 5)
    load_before = os.getloadavg()[0]
    times, hit1, hit5 = route_accuracy(router, labelled[:args.questions], f"route at {n:,}")
    out: dict[str, Any] = {"load_avg_before_route": round(load_before, 2),
        "tools": router.catalog.count_tools(), "questions": args.questions, "vectors_s": round(vectors_s, 1),
        "build_s": round(build_s, 1), "first_route_s": round(first_route_s, 2),
        "route_p50_ms": pct(times, 50), "route_p99_ms": pct(times, 99), "hit_at_1": round(hit1, 3),
        "hit_at_5": round(hit5, 3), "rss_mb": round(rss_mb(), 1)}
    out.update(add_one_tool(router, cat, n, args.adds))
    router.close()
    del router
    gc.collect()
    out.update(http_figures(ws, labelled[:args.requests + 100], args.clients) if args.requests > 0 else {})
    out["elapsed_s"] = round(time.perf_counter() - started, 1)
    return out


def selector_baseline(cat: SyntheticCatalog, args: argparse.Namespace, probe: AgenticRouter,
                      progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """LlamaIndex's ``LLMSingleSelector`` with the bundled local LLM choosing one of the first
    ``--selector-tools`` tools (their ``ToolMetadata``), and the router over a workspace of exactly those
    tools, on the same labelled questions. A selector answer that cannot be parsed, or names no listed
    choice, is a miss; both are counted. ``progress`` gets the figures after every question: a question
    can take minutes on a loaded CPU, and a run stopped early keeps what it measured."""
    from llama_index.core.selectors import LLMSingleSelector
    from llama_index.core.selectors.llm_selectors import _build_choices_text
    from llama_index.core.tools import ToolMetadata

    m = args.selector_tools
    vectors, _ = cached_vectors(cat, m, probe, args.cache)
    ws = args.cache / f"selector-{m}-g{GENERATOR}-s{cat.seed}-{probe.view.tag}"
    build_workspace(cat, m, ws, vectors)
    labelled = cat.labelled(m, args.selector_questions + 1, salt=1)  # the first one warms up
    router = AgenticRouter.open(ws, llm_provider="local")
    router.route(labelled[0][0], 5)
    times, hit1, hit5 = route_accuracy(router, labelled[1:], f"router over {m} tools")
    t0 = time.perf_counter()
    llm = router.llm
    load_s = time.perf_counter() - t0
    specs = [cat.tool(i) for i in range(m)]
    choices = [ToolMetadata(name=s.name, description=s.description) for s in specs]
    selector = LLMSingleSelector.from_defaults(llm=llm)
    prompt = selector.get_prompts()["prompt"].format(num_choices=m, context_list=_build_choices_text(choices),
                                                      query_str=labelled[0][0])
    tokenizer = getattr(llm, "_tokenizer", None)
    prompt_tokens = len(tokenizer(prompt)["input_ids"]) if tokenizer is not None else None
    try:
        selector.select(choices, labelled[0][0])  # warm-up
    except Exception:  # noqa: BLE001 - a failed warm-up answer still warmed the model
        pass
    sel_times: list[float] = []
    correct, out_of_range, failures, examples, picked = 0, 0, Counter(), [], Counter()

    def figures() -> dict[str, Any]:
        n_q = max(1, len(sel_times))
        return {
            "tools": m, "questions": len(sel_times), "questions_planned": len(labelled) - 1,
            "llm": f"{router.config.llm_provider} ({type(llm).__name__})",
            "llm_max_new_tokens": router.config.llm_max_new_tokens, "llm_load_s": round(load_s, 1),
            "prompt_chars": len(prompt), "prompt_tokens": prompt_tokens, "selector_p50_ms": pct(sel_times, 50),
            "selector_p99_ms": pct(sel_times, 99), "selector_accuracy": round(correct / n_q, 3),
            "selector_parse_failure_rate": round(sum(failures.values()) / n_q, 3),
            "selector_out_of_range_rate": round(out_of_range / n_q, 3), "selector_failures": dict(failures),
            "selector_failure_examples": examples, "selector_most_chosen": picked.most_common(5),
            "router_p50_ms": pct(times, 50), "router_p99_ms": pct(times, 99),
            "router_hit_at_1": round(hit1, 3), "router_hit_at_5": round(hit5, 3),
            "load_avg": round(os.getloadavg()[0], 2)}

    for query, gold in tqdm(labelled[1:], desc=f"LLMSingleSelector over {m} tools", unit="q"):
        t0 = time.perf_counter()
        try:
            result = selector.select(choices, query)
            index: int | None = result.selections[0].index
        except Exception as exc:  # noqa: BLE001 - whatever the parser raises, the answer was unusable
            index = None
            failures[type(exc).__name__] += 1
            if len(examples) < 3:
                examples.append(" ".join(str(exc).split())[:300])
        sel_times.append(time.perf_counter() - t0)
        picked[index + 1 if index is not None else None] += 1  # 1-based, as the prompt numbers the choices
        if index is not None and not 0 <= index < m:
            out_of_range += 1
        elif index is not None:
            correct += choices[index].name == gold
        progress(figures())
    return figures()


def settings(args: argparse.Namespace, probe: AgenticRouter) -> dict[str, Any]:
    """Everything that moves a figure: the flags, the router's configuration (whatever fields it has, an
    embedding backend included when the config defines one), the embedder's tag and the machine."""
    import torch

    config = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(probe.config).items() if k != "workspace"}
    return {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "generator": GENERATOR, "combinations": TOTAL, "embedder_tag": probe.view.tag,
            "embed_backend": getattr(probe.config, "embed_backend", None), "router_config": config,
            "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "machine": platform.machine(), "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def print_table(results: dict[str, Any]) -> None:
    print("| tools | route p50 / p99 | hit@1 / hit@5 | RSS in-process / server | add one tool (p50) "
          "| HTTP req/s | HTTP p50 / p99 | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results["sizes"]:
        print(f"| {r['tools']:,} | {r['route_p50_ms']} / {r['route_p99_ms']} ms | {r['hit_at_1']} / {r['hit_at_5']} "
              f"| {r['rss_mb']:,.0f} / {r.get('server_rss_mb', float('nan')):,.0f} MiB | {r['add_p50_ms']:,} ms "
              f"| {r.get('http_rps', '-')} | {r.get('http_p50_ms', '-')} / {r.get('http_p99_ms', '-')} ms "
              f"| {r.get('http_errors', '-')} |")
    s = results.get("selector")
    if s:
        print(f"\n| over {s['tools']} tools, {s['questions']} questions | p50 / p99 per question | accuracy (hit@1) "
              "| unparseable |\n|---|---|---|---|")
        print(f"| LLMSingleSelector, {s['llm']} | {s['selector_p50_ms']:,} / {s['selector_p99_ms']:,} ms "
              f"| {s['selector_accuracy']} | {s['selector_parse_failure_rate']} |")
        print(f"| agentic-router | {s['router_p50_ms']} / {s['router_p99_ms']} ms | {s['router_hit_at_1']} "
              f"(hit@5 {s['router_hit_at_5']}) | - |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated catalog sizes")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=2000, help="HTTP requests after 100 of warm-up (0: no HTTP)")
    parser.add_argument("--questions", type=int, default=300, help="labelled questions routed in process")
    parser.add_argument("--adds", type=int, default=10, help="single-tool additions timed per size")
    parser.add_argument("--selector-tools", type=int, default=100)
    parser.add_argument("--selector-questions", type=int, default=50)
    parser.add_argument("--no-selector", action="store_true", help="skip the LLM selector baseline")
    parser.add_argument("--embed-only", action="store_true", help="fill the vector cache for --sizes and stop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("bench-results/scale"),
                        help="card vectors and one workspace per size, reused by later runs")
    parser.add_argument("--json", dest="json_out", type=Path, default=None)
    args = parser.parse_args()
    print(f"CPU: {cpu_summary()}", file=sys.stderr)  # figures depend on the instruction set
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    if any(not 1 <= n <= TOTAL - args.adds for n in sizes):
        parser.error(f"sizes must lie in 1..{TOTAL - args.adds:,} (the generator has {TOTAL:,} combinations)")
    args.cache.mkdir(parents=True, exist_ok=True)
    cat = SyntheticCatalog(args.seed)
    # The embedder and its tag; cards are embedded 128 at a time (faster on CPU than the default 32; the vectors
    # differ from one-by-one encoding only by float rounding).
    probe = AgenticRouter.open(args.cache / "probe", llm_provider="none", embed_batch_size=128)
    if args.embed_only:
        for n in sizes:
            _, seconds = cached_vectors(cat, n, probe, args.cache)
            print(json.dumps({"tools": n, "vectors_s": round(seconds, 1)}))
        return
    results: dict[str, Any] = {"settings": settings(args, probe), "sizes": [], "selector": None}

    def save() -> None:
        if args.json_out:
            args.json_out.parent.mkdir(parents=True, exist_ok=True)
            args.json_out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    for n in sizes:
        results["sizes"].append(bench_size(cat, n, args, probe))
        print(json.dumps(results["sizes"][-1]), file=sys.stderr)
        save()
    if not args.no_selector:
        def partial(figures: dict[str, Any]) -> None:
            results["selector"] = figures
            save()

        results["selector"] = selector_baseline(cat, args, probe, partial)
        print(json.dumps(results["selector"]), file=sys.stderr)
    results["settings"]["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    save()
    print_table(results)


if __name__ == "__main__":
    main()
