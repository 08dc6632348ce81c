"""Build a ``RoutingDataset`` from the catalog itself: questions generated per chunk, document and tool.

Sources and labels (every question names one tool in ``relevant_docs``; ``kinds`` says which index kind):
- a *chunk* of a document -> factual questions -> the document's ``vector`` tool, and ``relevant_chunks`` =
  that chunk (Chroma chunk id, text in ``chunks``);
- a *document* -> overview requests (LLM from title + lead, or templates) -> its ``summary`` tool, and
  exact-term queries built from its most distinctive terms (tf-idf over the catalog) -> its ``keyword`` tool;
- an *external tool* -> user requests from name + description + parameters -> that tool.
Without an LLM (``llm=None``) chunk questions are Inverse Cloze Task pseudo-queries: one sentence taken out of
the chunk; the positive is the chunk *without* that sentence, stored in ``chunks`` under the key
``"<chunk id>~s<sentence index>"`` (a plain chunk id is always a real Chroma chunk). Tools get key phrases of
their card. Templated and ICT queries have ``origin`` "ict", LLM ones "llm", labelled logs "log".

What to ask about, and in which order, is ``training.sources``. Raw generations are appended to
``<out>.progress.jsonl`` per finished source; a rerun with the same settings skips those sources. Filters
(``training.quality``) then run on everything, the round-trip filter last; a targeted tool left with nothing
gets pseudo-queries (``meta["fallback"]``). The round trip checks document tools at document level (is the
source document among the router's top ``round_trip_k`` documents?) and external tools by name.

``from_queries`` turns labelled logs (``{"qid","query","gold"}``) into a supervised dataset instead: a gold id
is a tool name or a doc_id, which stands for that document's vector tool (kind "vector"); unknown ids are
counted in meta and skipped. A ``val_fraction`` share of the rows becomes a *real* validation split.
``meta["run"]`` holds timings and CPU settings, the only part that differs between two runs with one seed.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentic_router.indexes.errors import InputError
from agentic_router.indexes.schema import stable_hash
from agentic_router.training.dataset import RoutingDataset
from agentic_router.training.logs import add_generated, dataset_from_logs
from agentic_router.training.prompts import cpu_tuning, example_texts, llm_name
from agentic_router.training.quality import (
    MIN_WORDS,
    Funnel,
    NearDuplicates,
    clean_generation,
    copies_span,
    degenerate,
    is_chatter,
    length_ok,
    normalize,
    round_trip,
    sample_kept,
)
from agentic_router.training.sources import Source, plan_sources, pseudo_queries, source_prompts

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

    from agentic_router.router.workspace import RouterView

log = logging.getLogger(__name__)
SYNTHETIC_WARNING = ("validation questions are generated, not real: they cannot show a loss on real queries; "
                     "evaluate with `eval --queries` on real labelled questions")
PROGRESS_VERSION = 1
# Progress files from before the raw keys were spelt out are still read, so hours of generation can resume.
_OLD_KEYS = {"q": "query", "o": "origin"}


def generate_dataset(
    router: "RouterView", *, llm: "LLM | None", out: Path, per_chunk: int = 1, per_tool: int = 3,
    max_questions: int | None = None, from_queries: Path | None = None, val_fraction: float = 0.1,
    seed: int = 0, round_trip_k: int = 5, batch_size: int = 16, progress: bool = True, augment: bool = False,
) -> RoutingDataset:
    """Generate (or, with ``from_queries``, convert labelled logs into) a routing dataset saved to ``out``.

    ``augment`` with ``from_queries``: also generate questions (``llm``, ``per_chunk``, ...) and add them to
    the training split; validation stays made of logged questions only, so it still measures real routing.
    """
    out = Path(out)
    _check_args(per_chunk=per_chunk, per_tool=per_tool, batch_size=batch_size, round_trip_k=round_trip_k,
                max_questions=max_questions, val_fraction=val_fraction)
    tools = router.list_tools()
    if not tools:
        raise InputError("the catalog is empty: ingest documents or add tools first")
    if from_queries is not None:
        ds = dataset_from_logs(router, Path(from_queries), val_fraction, seed)
        if augment:
            extra = generate_dataset(router, llm=llm, out=out.with_name(out.stem + ".generated.json"),
                                     per_chunk=per_chunk, per_tool=per_tool, max_questions=max_questions,
                                     val_fraction=0.0, seed=seed, round_trip_k=round_trip_k,
                                     batch_size=batch_size, progress=progress)
            add_generated(ds, extra)
        ds.save(out)
        return ds
    start = time.perf_counter()
    sources, skipped = plan_sources(router, tools, per_chunk, per_tool, max_questions, seed)
    if not sources:
        raise InputError("nothing to generate from: raise --per-chunk/--per-tool or ingest documents")
    planned = time.perf_counter()
    settings = {"seed": seed, "per_chunk": per_chunk, "per_tool": per_tool, "max_questions": max_questions,
                "llm": llm_name(llm), "catalog": stable_hash(sorted(t.tool_id for t in tools)),
                "version": PROGRESS_VERSION}
    progress_path = out.with_name(out.name + ".progress.jsonl")
    raw = _load_progress(progress_path, settings)
    run = _produce(sources, raw, llm, progress_path, settings, seed, batch_size, progress)
    produced = time.perf_counter()
    ds, meta = _assemble(router, tools, sources, raw, llm is not None, seed, round_trip_k, progress)
    if not ds.queries:
        raise InputError("no usable question survived the filters; try --round-trip-k higher or --llm none")
    ds.assign_split(val_fraction, seed)
    end = time.perf_counter()
    run.update(seconds=round(end - start, 1), seconds_plan=round(planned - start, 1),
               seconds_generate=round(produced - planned, 1), seconds_filter=round(end - produced, 1),
               kept_per_min_end_to_end=round(len(ds.queries) / max(end - start, 1e-9) * 60, 1))
    ds.meta = {"generator": "llm" if llm is not None else "ict", "llm": settings["llm"], "seed": seed,
               "per_chunk": per_chunk, "per_tool": per_tool, "max_questions": max_questions,
               "round_trip_k": round_trip_k, "val_fraction": val_fraction, "catalog_tools": len(tools),
               "sources": dict(Counter(s.kind for s in sources)), "skipped_chunks": skipped, **meta,
               "chunk_keys": "a '<chunk id>~s<i>' key is that chunk without its sentence i (ICT positive)",
               "warning": SYNTHETIC_WARNING, "run": run}  # "run": timings, the only part that varies between runs
    ds.save(out)
    progress_path.unlink(missing_ok=True)
    return ds


def _check_args(*, val_fraction: float, **counts: int | None) -> None:
    for name, value in counts.items():
        low = 0 if name in ("per_chunk", "per_tool") else 1
        if value is not None and (not isinstance(value, int) or value < low):
            raise InputError(f"{name} must be an integer >= {low}, not {value!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"val_fraction must lie in [0, 1), not {val_fraction!r}")


# ---- producing raw questions ---------------------------------------------------------------------------

def _produce(sources: list[Source], raw: dict[str, list[dict[str, str]]], llm: "LLM | None", progress_path: Path,
             settings: dict, seed: int, batch_size: int, progress: bool) -> dict[str, Any]:
    """Fill ``raw[source key]`` for every source not done yet, appending each finished source to the file."""
    from tqdm.auto import tqdm

    todo = [s for s in sources if s.key not in raw]
    jobs: list[tuple[Source, int, str, str, int]] = []  # (source, question no, prompt, start, max tokens)
    pending: dict[str, list[dict[str, str] | None]] = {}
    progress_path.parent.mkdir(parents=True, exist_ok=True)
    with open(progress_path, "a", encoding="utf-8") as fh:
        if fh.tell() == 0:
            fh.write(json.dumps({"settings": settings}) + "\n")

        def finish(src: Source, items: list[dict[str, str]]) -> None:
            raw[src.key] = items
            fh.write(json.dumps({"key": src.key, "raw": items}, ensure_ascii=False) + "\n")

        for src in todo:
            prompts = source_prompts(src) if llm is not None else []
            if not prompts:
                finish(src, pseudo_queries(src, seed))
                continue
            pending[src.key] = [None] * len(prompts)
            jobs.extend((src, i, p, s, m) for i, (p, s, m) in enumerate(prompts))
        fh.flush()
        jobs.sort(key=lambda j: -len(j[2]))  # similar lengths per batch: less padding to compute
        stats: dict[str, Any] = {"llm_prompts_run": len(jobs), "resumed_sources": len(sources) - len(todo)}
        if not jobs:
            return stats
        bar = tqdm(total=len(jobs), desc="generate", unit="q", disable=not progress)
        t0, done = time.perf_counter(), 0
        with cpu_tuning(llm) as tuner:
            for b in range(0, len(jobs), batch_size):
                batch = jobs[b : b + batch_size]
                texts = tuner.run(llm, [j[2] for j in batch], max(j[4] for j in batch))
                for (src, i, _, start, _), text in zip(batch, texts):
                    text = text.strip()  # chat models may repeat the start words themselves
                    question = text if text.lower().startswith(start.lower()) else f"{start} {text}".strip()
                    pending[src.key][i] = {"query": question, "origin": "llm"}
                    if all(x is not None for x in pending[src.key]):
                        finish(src, pending.pop(src.key))  # type: ignore[arg-type]
                fh.flush()
                done += len(batch)
                rate = done / max(time.perf_counter() - t0, 1e-9) * 60
                bar.update(len(batch))
                bar.set_postfix({"q/min": f"{rate:.0f}", "threads": tuner.current})
        bar.close()
        stats.update(questions_per_min=round(rate, 1), cpu=tuner.summary())
    return stats


def _load_progress(path: Path, settings: dict) -> dict[str, list[dict[str, str]]]:
    if not path.is_file():
        return {}
    raw: dict[str, list[dict[str, str]]] = {}
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    try:
        header = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        header = {}
    if header.get("settings") != settings:
        log.warning("%s was written with other settings; starting over", path)
        path.unlink()
        return {}
    for line in lines[1:]:
        try:  # the last line may be cut by a crash: ignore it, that source is redone
            row = json.loads(line)
            raw[row["key"]] = [{_OLD_KEYS.get(k, k): v for k, v in item.items()} for item in row["raw"]]
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            continue
    return raw


# ---- filtering and assembly ----------------------------------------------------------------------------
@dataclass
class _Cand:
    src: Source
    query: str
    origin: str
    chunk: str | None = None  # key in ``chunks``
    positive: str | None = None


def _filtered(src: Source, item: dict[str, str], funnel: Funnel, examples: set[str]) -> _Cand | None:
    """Per-question filters (cleaning, chatter, length, copy); counts each stage in ``funnel``."""
    origin = item.get("origin", "ict")
    funnel.count(origin, "generated", src.kind)
    llm = origin == "llm"
    text = clean_generation(item["query"], question=llm or src.kind == "vector")
    if not text or (llm and (is_chatter(text) or degenerate(text) or normalize(text) in examples)):
        return None
    funnel.count(origin, "after_chatter", src.kind)
    if not length_ok(text, MIN_WORDS if llm else 1):
        return None
    funnel.count(origin, "after_length", src.kind)
    if llm and copies_span(text, src.text):
        return None
    funnel.count(origin, "after_copy", src.kind)
    chunk = item.get("chunk") or (src.chunk_id if src.kind == "vector" else None)
    return _Cand(src, text, origin, chunk, item.get("positive"))


def _assemble(router: "RouterView", tools: list, sources: list[Source], raw: dict[str, list[dict[str, str]]],
              used_llm: bool, seed: int, k: int, progress: bool) -> tuple[RoutingDataset, dict[str, Any]]:
    funnel, dedup = Funnel(), NearDuplicates()
    examples = {normalize(e) for e in example_texts()}
    cands: list[_Cand] = []
    for src in sources:
        for item in raw.get(src.key, []):
            cand = _filtered(src, item, funnel, examples)
            if cand is not None and dedup.add(cand.query):
                funnel.count(cand.origin, "after_dedup", cand.src.kind)
                cands.append(cand)
    ok = round_trip(router, [c.query for c in cands], [(c.src.tool, c.src.doc_id) for c in cands], k, progress)
    kept = [c for c, good in zip(cands, ok) if good]
    for c in kept:
        funnel.count(c.origin, "kept", c.src.kind)
    fallback, n_fallback, uncovered = _fallback(sources, kept, dedup, seed)
    ds = _build(tools, kept)
    rng = random.Random(seed)
    meta = {
        "funnel": funnel.to_dict(), "kept": len(kept), "kept_by_kind": dict(Counter(ds.kinds.values())),
        "kept_by_origin": dict(Counter(ds.origin.values())),
        "fallback": {"tools": sum(fallback.values()), "questions": n_fallback, "by_kind": dict(fallback)},
        "uncovered_tools": uncovered[:50], "targeted_tools": len({s.tool for s in sources}),
        "sample": [{"query": c.query, "tool": c.src.tool, "kind": c.src.kind, "origin": c.origin}
                   for c in sample_kept([c for c in kept if c.origin == "llm"] or kept, rng)],
    }
    return ds, meta


def _fallback(sources: list[Source], kept: list[_Cand], dedup: NearDuplicates,
              seed: int) -> tuple[Counter[str], int, list[str]]:
    """Pseudo-queries for every targeted tool left without a kept question (appended to ``kept``)."""
    covered = {c.src.tool for c in kept}
    by_tool: dict[str, list[Source]] = defaultdict(list)
    for src in sources:
        by_tool[src.tool].append(src)
    tools_by_kind: Counter[str] = Counter()
    added_total, uncovered = 0, []
    for tool, srcs in by_tool.items():
        if tool in covered:
            continue
        added = 0
        for alt in srcs:
            for item in pseudo_queries(alt, seed, max(alt.n, 1)):
                text = clean_generation(item["query"], question=alt.kind == "vector")
                if text and dedup.add(text):
                    chunk = item.get("chunk") or (alt.chunk_id if alt.kind == "vector" else None)
                    kept.append(_Cand(alt, text, "ict", chunk, item.get("positive")))
                    added += 1
            if added:
                break
        if added:
            tools_by_kind[srcs[0].kind] += 1
            added_total += added
        else:
            uncovered.append(tool)
    return tools_by_kind, added_total, sorted(uncovered)


def _build(tools: list, kept: list[_Cand]) -> RoutingDataset:
    specs = {t.name: t for t in tools}
    ds = RoutingDataset()
    for i, c in enumerate(kept):
        qid = f"q{i:05d}"
        ds.queries[qid], ds.relevant_docs[qid] = c.query, [c.src.tool]
        ds.kinds[qid], ds.origin[qid] = c.src.kind, c.origin
        ds.corpus[c.src.tool] = specs[c.src.tool].card()
        if c.chunk:
            ds.relevant_chunks[qid] = [c.chunk]
            ds.chunks[c.chunk] = c.positive if c.positive is not None else c.src.chunk_text
    return ds
