"""Reproduce the fine-tuning table end to end on the shared dev benchmarks (../shared/data).

For each data set and protocol it runs the real CLI, so every step is a command a user can type:

- synthetic-only: build the catalog, `generate` from it, train each method, evaluate on the data set's
  human-written questions (never trained on);
- supervised: `generate --from-queries` on a seeded 20% of the questions, train, evaluate on the other 80%.

    .venv/bin/python scripts/protocols.py --out bench-results/protocols [--sets covid,seal] [--protocols synthetic,supervised]

Workspaces are kept under --out, so a rerun skips finished steps (delete a folder to redo it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CLI = [str(ROOT / ".venv" / "bin" / "agentic-router")]
METHODS = ("full", "adapter", "cross-encoder")
# Per-method training settings: an adapter step is a small matmul on cached vectors, so it gets many passes;
# the reranker's fresh head needs more negatives and a second pass to learn anything.
METHOD_ARGS = {"full": ["--epochs", "2"], "adapter": ["--epochs", "30"],
               "cross-encoder": ["--epochs", "2", "--hard-negatives", "3"]}

SETS = {
    "covid": {"catalog": ("ingest", DATA / "covid_qa/normalized/docs.jsonl"), "queries": DATA / "covid_qa/normalized/queries.jsonl",
              "level": "document", "gen": ["--llm", "local", "--per-chunk", "1", "--max", "1500"],
              "augment": ["--llm", "none", "--per-chunk", "1", "--per-tool", "0", "--max", "1000"],
              "train": {"supervised": {"cross-encoder": ["--epochs", "1", "--hard-negatives", "3"]},
                        "synthetic": {"full": ["--epochs", "1", "--max-steps", "50"],
                                      "cross-encoder": ["--epochs", "1", "--hard-negatives", "3"]}}},
    "seal": {"catalog": ("tools add", DATA / "seal_tools/normalized/docs.jsonl"),
             "queries": DATA / "seal_tools/normalized/test_in_domain.queries.jsonl",
             "level": "tool", "gen": ["--llm", "none", "--per-tool", "1", "--max", "3000"],
             "augment": ["--llm", "none", "--per-tool", "1", "--max", "1500"],
             "train": {"supervised": {"cross-encoder": ["--epochs", "1", "--hard-negatives", "3"]},
                       "synthetic": {"full": ["--epochs", "1"], "cross-encoder": ["--epochs", "1", "--hard-negatives", "3"]}}},
}


def run(cmd: list[str], log: Path) -> None:
    line = " ".join(shlex.quote(c) for c in cmd)
    print(f"$ {line}", flush=True)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"\n$ {line}\n")
        fh.flush()
        started = time.time()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        fh.write(f"[exit {proc.returncode} after {time.time() - started:.0f}s]\n")
    if proc.returncode != 0:
        sys.exit(f"step failed ({proc.returncode}); see {log}")


def split_queries(path: Path, out_dir: Path, fraction: float = 0.2, seed: int = 0) -> tuple[Path, Path]:
    rows = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    cut = int(len(rows) * fraction)
    train, test = out_dir / "train20.jsonl", out_dir / "test80.jsonl"
    train.write_text("\n".join(rows[i] for i in sorted(order[:cut])) + "\n", encoding="utf-8")
    test.write_text("\n".join(rows[i] for i in sorted(order[cut:])) + "\n", encoding="utf-8")
    return train, test


def train_args(spec: dict, kind: str, method: str) -> list[str]:
    """METHOD_ARGS, overridden per data set and protocol where thousands of generated questions would make
    a CPU epoch of the full or cross-encoder trainer take an hour."""
    return spec.get("train", {}).get(kind, {}).get(method, METHOD_ARGS[method])


def protocol(name: str, spec: dict, kind: str, out: Path, base_ws: Path, threads: int | None) -> dict:
    work = out / f"{name}-{kind}"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "log.txt"
    ws = work / "ws"
    if not ws.exists():  # start from a copy of the catalog (built once per data set)
        subprocess.run(["cp", "-r", str(base_ws), str(ws)], check=True)
    cli = [*CLI, "--workspace", str(ws)]
    eval_queries = spec["queries"]
    dataset = work / "dataset.json"
    if kind == "supervised":
        train_q, eval_queries = split_queries(spec["queries"], work)
        gen = ["generate", "--from-queries", str(train_q), "--out", str(dataset), "--seed", "0"]
    else:
        gen = ["generate", *spec["gen"], "--out", str(dataset), "--seed", "0"]
    if not dataset.exists():
        run([*cli, *gen], log)
    datasets = {m: dataset for m in METHODS}
    if kind == "supervised" and spec.get("augment"):
        # A reranker starts from a bi-encoder with a random head: a few hundred logged questions teach it
        # little, so its data set adds pseudo-queries (validation stays the logged questions).
        datasets["cross-encoder"] = work / "dataset-augmented.json"
        if not datasets["cross-encoder"].exists():
            run([*cli, *gen, "--augment", *spec["augment"], "--out", str(datasets["cross-encoder"])], log)
    for method in METHODS:
        if not (ws / "models" / method / "version.json").exists():
            run([*cli, "train", "--method", method, "--dataset", str(datasets[method]), "--name", method,
                 *train_args(spec, kind, method), *(["--threads", str(threads)] if threads else [])], log)
    result = work / "eval.json"
    if not result.exists():
        run([*cli, "--llm", "none", "eval", "--queries", str(eval_queries), "--level", spec["level"],
             "--compare", "base,full,adapter,base+rerank,bm25", "--rerank", "10", "--reranker", "cross-encoder",
             "--report", str(work / "report"), "--json", str(result)], log)
    return collect(out)[f"{name}/{kind}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "protocols")
    parser.add_argument("--sets", default="covid,seal")
    parser.add_argument("--protocols", default="synthetic,supervised")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per training step (1 when two runs share the box)")
    parser.add_argument("--render-only", action="store_true", help="Print the table of finished runs and stop.")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"shared data not found at {DATA}")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.render_only:
        print(render(collect(args.out)))
        return
    table = {}
    for name in args.sets.split(","):
        spec = SETS[name]
        base_ws = args.out / f"{name}-catalog"
        if not (base_ws / "catalog.sqlite").exists():
            cmd, path = spec["catalog"]
            run([*CLI, "--workspace", str(base_ws), "--llm", "none", *cmd.split(), str(path)], args.out / f"{name}-catalog.log")
        for kind in args.protocols.split(","):
            table[f"{name}/{kind}"] = protocol(name, spec, kind, args.out, base_ws, args.threads)
            (args.out / "summary.json").write_text(json.dumps(table, indent=2), encoding="utf-8")
    print(render(table))


def kept_share(meta: dict) -> float | None:
    """Share of generated questions that passed every filter (LLM questions when an LLM wrote any)."""
    funnel = meta.get("funnel") or {}
    row = funnel.get("llm") or funnel.get("ict")
    return row.get("kept_share") if row else None


def paired(report: Path, system: str) -> tuple[int, int] | None:
    """(questions the system gets right at hit@1 that the base router got wrong, the reverse), read from
    the eval report's per-query failure files."""
    def failed(name: str) -> set[str] | None:
        path = report / f"failures-{name.replace('+', '_')}.jsonl"
        if not path.is_file():
            return None
        return {json.loads(line)["qid"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}

    base, other = failed("base"), failed(system)
    return None if base is None or other is None else (len(base - other), len(other - base))


def collect(out: Path) -> dict:
    """Results of every finished run under ``out``."""
    table = {}
    for result in sorted(out.glob("*-*/eval.json")):
        meta = json.loads((result.parent / "dataset.json").read_text()).get("meta", {})
        table[result.parent.name.replace("-", "/", 1)] = {
            "metrics": json.loads(result.read_text()), "kept_share": kept_share(meta), "n_train": meta.get("kept"),
            "paired": {s: paired(result.parent / "report", s) for s in ("full", "adapter", "base+rerank")}}
    return table


def render(table: dict) -> str:
    """Markdown table of hit@1 per system, with the change against the base router of the same run and the
    paired counts behind it (+questions fixed / −questions broken)."""
    cols = ["base", "full", "adapter", "base+rerank", "bm25"]
    lines = ["| set / protocol | questions (train) | kept share | " + " | ".join(f"{c} hit@1" for c in cols) + " |",
             "|---" * (len(cols) + 3) + "|"]
    for key, row in table.items():
        m = row["metrics"]
        base = m.get("base", {}).get("hit@1")
        cells = []
        for c in cols:
            if c not in m:
                cells.append("-")
            elif c == "base" or base is None:
                cells.append(f"{m[c]['hit@1']:.3f}")
            else:
                pair = (row.get("paired") or {}).get(c)
                extra = f", +{pair[0]}/−{pair[1]}" if pair else ""
                cells.append(f"{m[c]['hit@1']:.3f} ({m[c]['hit@1'] - base:+.3f}{extra})")
        kept = row.get("kept_share")
        lines.append(f"| {key} | {row.get('n_train') or '-'} | {kept if kept is not None else '-'} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
