"""Measure ``training.generate``: throughput, kept share per filter, fallbacks, sample questions.

    .venv/bin/python scripts/gen_probe.py WS_COPY_COVID --llm local --max-questions 160 --batch-size 16
    .venv/bin/python scripts/gen_probe.py WS_COPY_SEAL --llm none --max-questions 900
    .venv/bin/python scripts/gen_probe.py WS_COPY_COVID --llm local --llm-model OTHER.gguf --max-questions 100

Use a *copy* of a workspace: the local LLM caches its weights inside it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


class WithBos:
    """The local LLM, with its BOS token written before each completion prompt (chat prompts get it from the template)."""

    def __init__(self, llm) -> None:
        self._llm = llm

    def __getattr__(self, name: str):
        return getattr(self._llm, name)

    def generate_batch(self, prompts, max_new_tokens, stop=None, chat=True, temperature=None):
        bos = "" if chat else self._llm._tokenizer.bos_token or ""
        return self._llm.generate_batch([bos + p for p in prompts], max_new_tokens, stop, chat, temperature)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workspace")
    ap.add_argument("--llm", default="local", choices=["local", "none"])
    ap.add_argument("--llm-model", default=None, help="another GGUF for the local provider (default: bundled SmolLM2)")
    ap.add_argument("--bos", action="store_true",
                    help="open each completion prompt with the tokenizer's BOS token (Gemma needs it; the product omits it)")
    ap.add_argument("--max-questions", type=int, default=None)
    ap.add_argument("--per-chunk", type=int, default=1)
    ap.add_argument("--per-tool", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--dump", default=None, help="write every raw generation and where it was dropped (JSONL)")
    args = ap.parse_args()

    from agentic_router.router.app import AgenticRouter
    from agentic_router.training import generate

    trace: list[dict] = []
    if args.dump:  # record each raw question's fate: filtered stage or round-trip verdict
        filtered, round_trip = generate._filtered, generate.round_trip

        def traced_filter(src, item, funnel, examples):  # noqa: ANN001, ANN202
            cand = filtered(src, item, funnel, examples)
            trace.append({"kind": src.kind, "raw": item["query"], "origin": item.get("origin"),
                          "passed_filters": cand is not None, "clean": cand.query if cand else None,
                          "source": src.text[:300]})
            return cand

        def traced_round_trip(router, queries, targets, k, progress=False):  # noqa: ANN001, ANN202
            ok = round_trip(router, queries, targets, k, progress)
            verdict = dict(zip(queries, ok))
            for row in trace:
                if row["clean"] in verdict:
                    row["round_trip"] = verdict[row["clean"]]
            return ok

        generate._filtered, generate.round_trip = traced_filter, traced_round_trip  # generate's own references

    router = AgenticRouter.open(args.workspace, llm_provider=args.llm, llm_model=args.llm_model)
    llm = router.llm
    if args.bos:
        llm = WithBos(llm)
    out = Path(args.out or Path(args.workspace).parent / f"probe_{Path(args.workspace).name}_{args.llm}.json")
    start = time.perf_counter()
    ds = generate.generate_dataset(router.view, llm=llm, out=out, per_chunk=args.per_chunk, per_tool=args.per_tool,
                                   max_questions=args.max_questions, batch_size=args.batch_size, seed=args.seed)
    elapsed = time.perf_counter() - start
    meta = dict(ds.meta)
    report = {k: meta.get(k) for k in ("sources", "skipped_chunks", "funnel", "kept", "kept_by_kind", "kept_by_origin",
                                       "fallback", "targeted_tools", "run")}
    report["wall_seconds"] = round(elapsed, 1)
    report["sample"] = [f"[{s['kind']}] {s['query']}" for s in meta.get("sample", [])]
    print(json.dumps(report, indent=1, ensure_ascii=False))
    if args.dump:
        Path(args.dump).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in trace), encoding="utf-8")


if __name__ == "__main__":
    main()
