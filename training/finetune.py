"""``finetune``: from a catalog's labelled requests (or, without any, generated ones) to a better router in
one call, activating only what wins on requests it never trained on.

The order is the one the dev sets taught us:

1. **Usage memory first.** Labelled requests are recorded at once (they count from the next route on, no
   training needed); on BFCL live that alone lifted hit@1 more than any fine-tune did.
2. **Weights for this catalog** are chosen on the training part of the requests under the *current*
   embedder, each request left out of its own memory vote. Choosing them under a freshly trained embedder
   would reward the dense channel for remembering its own training questions.
3. **Train** (a full sentence-transformers fine-tune by default: the only method that gained on every dev
   protocol so far) on the training part only.
4. **Decide on the held-out part**: the current router, the current embedder with the new weights, and
   each trained embedder with them; the best one is activated only if it beats the current configuration
   there, and the figures it was judged on are printed.

Without labelled requests the candidates are judged on generated held-out questions, and the weights are
left alone. Those questions cannot prove a gain: a synthetic epoch changes the first tool of only 3-4% of
them, so a sign test would need thousands to see the +0.01 it brings on real ones (COVID-QA: +9/-3 on 312
generated questions, +24/-10 on the 1,380 real ones). They can still refuse a model they rank worse, so a
trained model is activated when it ranks them better at the top and no worse on average (higher hit@1,
MRR not lower), the rule of the logs path. On the three dev sets this never lowered real hit@1 (README);
`eval --compare` on real requests remains the check.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from agentic_router.indexes.atomic import atomic_write_text
from agentic_router.indexes.encoders.embeddings import embed_queries
from agentic_router.indexes.errors import InputError
from agentic_router.indexes.schema import safe_tool_name
from agentic_router.router.activation import activate, sync_collections
from agentic_router.router.retrieval.scoring import Weights, fit, score
from agentic_router.training.calibrate import (
    abstain_threshold,
    calibration_grid,
    choose_weights,
    gather,
    leave_own_out,
)
from agentic_router.training.dataset import RoutingDataset
from agentic_router.training.evaluate import LabelledQuery, load_queries
from agentic_router.training.generate import SYNTHETIC_WARNING, generate_dataset
from agentic_router.training.logs import dataset_from_logs
from agentic_router.training.pipeline import heldout_queries, train_version

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

    from agentic_router.router.workspace import RouterView

logger = logging.getLogger(__name__)
METHODS = ("full", "adapter")
HELDOUT_SHARE = 0.2
MIN_LABELLED = 20  # below this, a held-out part says nothing: the requests only go to the usage memory
CALIBRATION_MAX = 1000  # training requests the weights are chosen on: plenty for a sign test, and 180 settings
# are re-scored on each, which at 3,200 requests took minutes
TRAIN_SECONDS = 300.0  # per trained model, so that finetune on thousands of requests stays near ten minutes
SYNTHETIC_TRAIN_SECONDS = 1800.0  # one epoch over SYNTHETIC_MAX generated questions on 2 cores (COVID-QA: 69
# steps, 25 min); five minutes stop after ~10 steps, which moved nothing on real questions
SYNTHETIC_MAX = 2000  # generated questions: enough for one epoch to move the model, ~5 min of training on 2 cores


@dataclass
class Candidate:
    """One configuration judged on the held-out requests."""

    name: str
    embedder: str | None  # registry name, None for the base model
    weights: Weights
    trained: bool = False
    hit1: float = 0.0
    mrr: float = 0.0
    fixed: int = 0  # held-out requests it ranks right first that the current configuration does not
    broken: int = 0
    seconds: float | None = None

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "embedder": self.embedder or "base", "hit@1": round(self.hit1, 4),
                "mrr": round(self.mrr, 4), "fixed": self.fixed, "broken": self.broken,
                "trained_seconds": self.seconds}


@dataclass
class FinetuneReport:
    mode: str  # "logs" or "synthetic"
    level: str
    labelled: int = 0
    unanswerable: int = 0
    train: int = 0
    heldout: int = 0
    recorded: int = 0
    candidates: list[dict[str, Any]] = field(default_factory=list)
    chosen: str = "current"
    activated: str | None = None
    weights: dict[str, Any] | None = None
    weights_changed: bool = False
    decisions: list[str] = field(default_factory=list)
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def finetune(view: "RouterView", *, from_queries: Path | None = None, llm: "LLM | None" = None,
             methods: Sequence[str] = ("full",), heldout_share: float = HELDOUT_SHARE, seed: int = 0,
             activate_result: bool = True, progress: bool = True, **train_settings: Any) -> FinetuneReport:
    """Run the pipeline on ``view``'s catalog; ``train_settings`` go to the trainers (epochs, threads, ...)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise InputError(f"unknown method {unknown[0]!r}; finetune trains {', '.join(METHODS)}")
    if not 0.05 <= heldout_share <= 0.5:
        raise InputError("the held-out share must be between 0.05 and 0.5")
    if not view.list_tools():
        raise InputError("the catalog is empty: ingest documents or add tools first")
    level = "document" if view.catalog.count_documents() else "tool"
    labelled = labelled_requests(view, from_queries, level)
    if any(q.gold for q in labelled):
        train_settings["max_seconds"] = train_settings.get("max_seconds") or TRAIN_SECONDS
        return _from_logs(view, labelled, from_queries, level, methods, heldout_share, seed, activate_result,
                          progress, train_settings)
    train_settings["max_seconds"] = train_settings.get("max_seconds") or SYNTHETIC_TRAIN_SECONDS
    return _synthetic(view, llm, level, methods, seed, activate_result, progress, train_settings)


def labelled_requests(view: "RouterView", path: Path | None, level: str) -> list[LabelledQuery]:
    """The file's rows (``"gold": []`` = no tool fits) and every request recorded with ``feedback``, once
    each; a recorded tool counts by its document at document level, as the file's doc_ids do."""
    rows = load_queries(path, allow_unanswerable=True) if path is not None else []
    seen = {q.query for q in rows}
    recorded = [(query, tool) for _rid, query, tool in view.catalog.recorded_requests() if query not in seen]
    specs = view.catalog.get_tools(sorted({t for _, t in recorded}))
    by_query: dict[str, list[str]] = {}
    for query, tool in recorded:
        spec = specs.get(tool)
        gold = (spec.doc_id or tool) if spec is not None and level == "document" else tool
        by_query.setdefault(query, []).append(gold)
    rows += [LabelledQuery(f"feedback-{i}", q, tuple(dict.fromkeys(g))) for i, (q, g) in enumerate(by_query.items())]
    return rows


def split(queries: Sequence[LabelledQuery], share: float, seed: int) -> tuple[list[LabelledQuery], list[LabelledQuery]]:
    """A seeded (train, held-out) split of the answerable requests."""
    order = list(range(len(queries)))
    random.Random(seed).shuffle(order)
    n_held = max(1, round(share * len(queries)))
    held = set(order[:n_held])
    return ([q for i, q in enumerate(queries) if i not in held], [q for i, q in enumerate(queries) if i in held])


def _from_logs(view: "RouterView", labelled: list[LabelledQuery], path: Path | None, level: str,
               methods: Sequence[str], share: float, seed: int, activate_result: bool, progress: bool,
               settings: dict[str, Any]) -> FinetuneReport:
    answerable = [q for q in labelled if q.gold]
    report = FinetuneReport("logs", level, labelled=len(answerable), unanswerable=len(labelled) - len(answerable))
    report.recorded = record(view, answerable)
    source = f"{path}" if path is not None else "recorded feedback"
    report.decisions.append(f"{len(answerable)} labelled requests ({source}); {report.recorded} new in the usage "
                            f"memory, which routing uses from now on")
    if len(answerable) < MIN_LABELLED:
        report.decisions.append(f"fewer than {MIN_LABELLED} labelled requests: nothing trained or calibrated "
                                f"(a held-out part that small cannot tell a better router from luck)")
        return report
    train, held = split(answerable, share, seed)
    report.train, report.heldout = len(train), len(held)
    workspace = view.workspace

    sample = train if len(train) <= CALIBRATION_MAX else random.Random(seed).sample(train, CALIBRATION_MAX)
    chosen = choose_weights(leave_own_out(view, gather(view, sample, level, progress=progress)), view.weights,
                            calibration_grid(view.weights, level))
    calibrated = Weights(**chosen["weights"])
    report.decisions.append(
        f"weights chosen on {len(sample)} training requests: {_short(calibrated)}" if chosen["changed"]
        else f"no weight setting beat the current one clearly on {len(sample)} training requests")

    candidates = [Candidate("current", view.embedder_version, view.weights)]
    if chosen["changed"]:
        candidates.append(Candidate("current+weights", view.embedder_version, calibrated))
    if methods:
        dataset_path = _train_logs(view, train, seed)
        for method in methods:
            start = time.perf_counter()
            version = train_version(view, method, dataset_path, name=f"finetune-{method}-{time.strftime('%Y%m%d-%H%M%S')}",
                                    **settings)
            candidates.append(Candidate(version.name, version.name, calibrated, trained=True,
                                        seconds=round(time.perf_counter() - start, 1)))
            report.decisions.append(f"trained {version.name} ({method}) on {len(train)} requests in "
                                    f"{candidates[-1].seconds:.0f}s")
    _judge(view, candidates, held, level, progress)
    report.candidates = [c.row() for c in candidates]
    current, best = candidates[0], max(candidates, key=lambda c: (round(c.hit1, 9), round(c.mrr, 9), -candidates.index(c)))
    if best is not current and best.hit1 > current.hit1 and best.mrr >= current.mrr:
        report.chosen = best.name
        report.decisions.append(f"{best.name} beats the current configuration on {len(held)} held-out requests: "
                                f"hit@1 {best.hit1:.3f} vs {current.hit1:.3f} (fixed {best.fixed}, broken {best.broken})")
    else:
        best = current
        report.decisions.append(f"kept the current configuration: nothing beat it on {len(held)} held-out requests "
                                f"(hit@1 {current.hit1:.3f})")
    if not activate_result:
        report.decisions.append("nothing changed (--no-activate)")
        return report
    weights = best.weights
    if report.unanswerable:
        weights = _with_abstain(workspace.view(best.embedder, view.reranker_version, weights=weights), answerable,
                                level, progress)
        report.decisions.append(f"abstain below fit {weights.abstain_below} (keeps 90% of the labelled answerable "
                                f"requests answered; {report.unanswerable} requests fit no tool)")
    if weights != view.weights:
        workspace.save_routing({"weights": asdict(weights), "n": len(train), "level": level})
        report.weights, report.weights_changed = asdict(weights), True
    if best.trained:
        activate(workspace, best.name, progress=progress)
        report.activated = best.name
        report.decisions.append(f"activated {best.name}")
    return report


def _synthetic(view: "RouterView", llm: "LLM | None", level: str, methods: Sequence[str], seed: int,
               activate_result: bool, progress: bool, settings: dict[str, Any]) -> FinetuneReport:
    report = FinetuneReport("synthetic", level, warning=SYNTHETIC_WARNING)
    out = view.config.workspace / "datasets" / "finetune-generated.json"
    ds = generate_dataset(view, llm=llm, out=out, val_fraction=0.2, seed=seed, progress=progress,
                          max_questions=SYNTHETIC_MAX)
    held = heldout_queries(view, ds)
    report.train, report.heldout = len(ds.qids("train")), len(held)
    report.decisions.append(f"no labelled requests: generated {len(ds.queries)} questions "
                            f"({'LLM' if llm is not None else 'pseudo-queries'}); {len(held)} held out")
    if not held or not methods:
        return report
    candidates = [Candidate("current", view.embedder_version, view.weights)]
    for method in methods:
        start = time.perf_counter()
        version = train_version(view, method, out, name=f"finetune-{method}-{time.strftime('%Y%m%d-%H%M%S')}", **settings)
        candidates.append(Candidate(version.name, version.name, view.weights, trained=True,
                                    seconds=round(time.perf_counter() - start, 1)))
        report.decisions.append(f"trained {version.name} ({method}) in {candidates[-1].seconds:.0f}s")
    _judge(view, candidates, held, level, progress)
    report.candidates = [c.row() for c in candidates]
    current = candidates[0]
    winners = [c for c in candidates[1:] if synthetic_winner(c, current)]
    if not winners:
        report.decisions.append("kept the current configuration: no trained model ranked the generated "
                                "held-out questions better (hit@1 and MRR)")
        return report
    best = max(winners, key=lambda c: (c.hit1, c.mrr))
    report.chosen = best.name
    report.decisions.append(f"{best.name} ranks the {len(held)} generated held-out questions better: hit@1 "
                            f"{best.hit1:.3f} vs {current.hit1:.3f}, MRR {best.mrr:.3f} vs {current.mrr:.3f} "
                            f"(fixed {best.fixed}, broken {best.broken})")
    if activate_result:
        activate(view.workspace, best.name, progress=progress)
        report.activated = best.name
        report.decisions.append(f"activated {best.name}; check it on real requests with `eval --compare`")
    return report


def synthetic_winner(candidate: Candidate, current: Candidate) -> bool:
    """On generated evidence, activate what ranks better at the top and no worse on average: those questions
    can expose a loss but are too few and too easy to prove a real gain (see the module docstring)."""
    return candidate.hit1 > current.hit1 and candidate.mrr >= current.mrr


def record(view: "RouterView", queries: Sequence[LabelledQuery]) -> int:
    """Put labelled requests in the usage memory (a doc_id stands for its document's vector tool)."""
    vector_of = {t.doc_id: t.name for t in view.list_tools("vector") if t.doc_id}
    names = {t.name for t in view.list_tools()}
    rows = [(q.query, g if g in names else vector_of.get(g, safe_tool_name(g))) for q in queries for g in q.gold]
    embedder = view.query_embedder
    return view.catalog.record(rows, lambda texts: embed_queries(embedder, texts), source="log")


def _train_logs(view: "RouterView", train: Sequence[LabelledQuery], seed: int) -> Path:
    """The training requests as a log file and a data set (10% of them validate the trainer's epochs)."""
    folder = view.config.workspace / "datasets"
    folder.mkdir(parents=True, exist_ok=True)
    logs = folder / "finetune-train.jsonl"
    atomic_write_text(logs, "".join(json.dumps({"qid": q.qid, "query": q.query, "gold": list(q.gold)},
                                               ensure_ascii=False) + "\n" for q in train))
    ds: RoutingDataset = dataset_from_logs(view, logs, val_fraction=0.1, seed=seed)
    path = folder / "finetune-train.json"
    ds.save(path)
    return path


def _judge(view: "RouterView", candidates: list[Candidate], held: Sequence[LabelledQuery], level: str,
           progress: bool) -> None:
    """Held-out hit@1/MRR of every candidate, and what each fixes and breaks against the first (current)."""
    baseline: list[bool] | None = None
    gathered_by: dict[str | None, Any] = {}
    for cand in candidates:
        if cand.embedder not in gathered_by:
            target = view.workspace.view(cand.embedder, view.reranker_version, weights=cand.weights)
            if cand.trained:
                sync_collections(target, progress=progress)  # its own vectors of the catalog and the memory
            gathered_by[cand.embedder] = leave_own_out(target, gather(target, held, level, progress=progress))
        gathered = gathered_by[cand.embedder]
        metrics, top1 = gathered.metrics(cand.weights), gathered.top1(cand.weights)
        cand.hit1, cand.mrr = metrics["hit@1"], metrics["mrr"]
        if baseline is None:
            baseline = top1
        cand.fixed = sum(a and not b for a, b in zip(top1, baseline))
        cand.broken = sum(b and not a for a, b in zip(top1, baseline))


def _with_abstain(view: "RouterView", answerable: Sequence[LabelledQuery], level: str, progress: bool) -> Weights:
    gathered = leave_own_out(view, gather(view, answerable, level, progress=progress))
    threshold = abstain_threshold([fit(score(ev, view.weights)) for ev in gathered.evidence])
    return replace(view.weights, abstain_below=threshold)


def _short(w: Weights) -> str:
    return (f"bm25 {w.lexical_weight} (documents) / {w.tool_lexical_weight} (tools), memory {w.memory_weight} "
            f"(floor {w.memory_floor})")
