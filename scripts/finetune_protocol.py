"""`finetune` judged on requests it never saw, in one run with the baselines it must beat.

    .venv/bin/python scripts/finetune_protocol.py --set NAME WORKSPACE QUERIES LEVEL [--set ...]
        [--share 0.2] [--seed 0] [--methods full] [--synthetic [--llm local]] [--train-minutes M]
        [--keep DIR] [--json OUT]

Router-log protocol (default): a seeded ``--share`` of a set's labelled requests is the log that
``finetune --from-queries`` gets; every system is then evaluated on the other requests. With
``--synthetic``, ``finetune`` gets no labelled request at all (it generates questions: pseudo-queries, or
with ``--llm`` questions the language model writes) and every request of the set is held out.

The workspace is copied first (finetune records, trains and activates); ``--keep DIR`` keeps the copy
(generated questions, trained versions) as ``DIR/NAME`` instead of a temporary folder. Systems on the same held-out
requests: ``before`` (the router as it was), ``dense`` and ``bm25`` (single channels of it), ``lookup``
(the tool of the nearest logged request under the base embedder, what semantic-router does with
utterances; logs protocol only) and ``finetuned`` (the router after ``finetune``).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from agentic_router import AgenticRouter
from agentic_router.training.baselines import Bm25Baseline
from agentic_router.training.evaluate import LabelledQuery, evaluate, load_queries
from agentic_router.training.finetune import finetune
from agentic_router.training.report import CHANNELS, RouterSystem


def _write(path: Path, rows: list[LabelledQuery]) -> Path:
    path.write_text("".join(json.dumps({"qid": q.qid, "query": q.query, "gold": list(q.gold)}) + "\n" for q in rows),
                    encoding="utf-8")
    return path


def _metrics(system, queries: list[LabelledQuery], level: str) -> dict:
    result = evaluate(system, queries, level=level)
    return {k: round(v, 4) for k, v in result.items() if isinstance(v, float)}


def run_set(name: str, workspace: str, queries_path: str, level: str, share: float, seed: int,
            methods: list[str], synthetic: bool, llm_provider: str = "none", train_minutes: float | None = None,
            keep: Path | None = None) -> dict:
    queries = load_queries(queries_path)
    order = list(range(len(queries)))
    random.Random(seed).shuffle(order)
    n_log = 0 if synthetic else int(round(share * len(queries)))
    logged = [queries[i] for i in sorted(order[:n_log])]
    held = [queries[i] for i in sorted(order[n_log:])]
    out: dict = {"n_logged": len(logged), "n_held": len(held), "protocol": "synthetic" if synthetic else "logs",
                 "llm": llm_provider, "train_minutes": train_minutes}
    with tempfile.TemporaryDirectory() as tmp:
        copy = keep / name if keep else Path(tmp) / "ws"
        if copy.exists():
            raise SystemExit(f"error: {copy} exists; give another --keep folder")
        shutil.copytree(workspace, copy)
        router = AgenticRouter.open(copy, llm_provider=llm_provider)
        view = router.view
        out["before"] = _metrics(RouterSystem(view, "before"), held, level)
        for channel in ("dense",):
            out[channel] = _metrics(RouterSystem(router.workspace.view(weights=CHANNELS[channel](view.weights)),
                                                 channel), held, level)
        out["bm25"] = _metrics(Bm25Baseline(view.list_tools()), held, level)
        start = time.perf_counter()
        log_path = _write(Path(tmp) / "logs.jsonl", logged) if logged else None
        report = finetune(view, from_queries=log_path, llm=router.llm if llm_provider != "none" else None,
                          methods=methods, seed=seed, progress=True, max_seconds=train_minutes * 60 if train_minutes else None)
        out["finetune_seconds"] = round(time.perf_counter() - start, 1)
        out["finetune"] = report.to_dict()
        router.close()
        after = AgenticRouter.open(copy, llm_provider="none")
        if logged:
            lookup = after.workspace.view(None, None, weights=CHANNELS["lookup"](after.view.weights))
            out["lookup"] = _metrics(RouterSystem(lookup, "lookup"), held, level)
        out["finetuned"] = _metrics(RouterSystem(after.view, "finetuned"), held, level)
        out["finetuned_weights"] = asdict(after.view.weights)
        after.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", nargs=4, action="append", metavar=("NAME", "WORKSPACE", "QUERIES", "LEVEL"),
                        required=True)
    parser.add_argument("--share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default="full")
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--llm", default="none", help="Question writer for --synthetic (e.g. local); none = pseudo-queries.")
    parser.add_argument("--train-minutes", type=float, default=None,
                        help="Training time per model (default: finetune's own, 5 with logs, 30 synthetic).")
    parser.add_argument("--keep", type=Path, default=None, help="Keep each set's finetuned workspace copy here.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    results = {name: run_set(name, ws, q, level, args.share, args.seed, methods, args.synthetic, args.llm,
                             args.train_minutes, args.keep)
               for name, ws, q, level in args.set}
    for name, r in results.items():
        print(f"{name} ({r['protocol']}): {r['n_logged']} logged, {r['n_held']} held out; finetune "
              f"{r['finetune_seconds']:.0f}s, chose {r['finetune']['chosen']}")
        for label in ("before", "dense", "bm25", "lookup", "finetuned"):
            if label in r:
                m = r[label]
                print(f"  {label:<10} hit@1 {m['hit@1']:.3f}  hit@5 {m['hit@5']:.3f}  mrr {m['mrr']:.3f}")
        for line in r["finetune"]["decisions"]:
            print(f"  - {line}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
