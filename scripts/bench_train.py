"""Time the trainers on a synthetic data set of N (question, positive) pairs.

Texts are drawn from MiniLM's own vocabulary, with realistic lengths: questions 8-20 words, tool cards
20-50 words, chunks 120-180 words (about MiniLM's 256-token limit). Only timing is meaningful here, not
the quality of what is learnt. Example:

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_train.py --method adapter --pairs 10000 --threads 1
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from agentic_router.indexes.encoders.cpu import cpu_summary
from agentic_router.indexes.encoders.embeddings import resolve_model_path
from agentic_router.training.dataset import RoutingDataset
from agentic_router.training.trainers.common import TrainSettings, corpus_texts, encode, load_bi_encoder, torch_threads


def synthetic_dataset(pairs: int, tools: int, chunks: int, chunk_share: float, val: int, seed: int) -> RoutingDataset:
    rng = random.Random(seed)
    vocab_file = Path(resolve_model_path("bundled:all-MiniLM-L6-v2")) / "vocab.txt"
    vocab = [w for w in vocab_file.read_text(encoding="utf-8").split() if w.isalpha() and len(w) > 3]

    def words(lo: int, hi: int, pool: list[str]) -> list[str]:
        return rng.choices(pool, k=rng.randint(lo, hi))

    topics = [rng.sample(vocab, 40) for _ in range(tools)]  # each tool talks about its own words
    corpus = {f"tool_{i}": f"tool_{i}: " + " ".join(words(20, 50, topics[i])) for i in range(tools)}
    chunk_tool = {f"c{j}": rng.randrange(tools) for j in range(chunks)}
    chunk_text = {c: " ".join(words(120, 180, topics[t] + vocab[:200])) for c, t in chunk_tool.items()}
    ds = RoutingDataset(corpus=corpus, chunks=chunk_text)
    chunk_ids = list(chunk_tool)
    total = pairs + val
    for n in range(total):
        qid = f"q{n}"
        if chunks and rng.random() < chunk_share:
            c = rng.choice(chunk_ids)
            t = chunk_tool[c]
            ds.relevant_chunks[qid] = [c]
        else:
            t = rng.randrange(tools)
        ds.queries[qid] = " ".join(words(8, 20, topics[t] + vocab[:300]))
        ds.relevant_docs[qid] = [f"tool_{t}"]
        ds.split[qid] = "val" if n >= pairs else "train"
    return ds


def stored_vectors(ds: RoutingDataset, base: str, threads: int | None) -> dict[str, list[float]]:
    """What the vector store would hand over: fp32 base-model vectors of every card and chunk (untimed)."""
    texts = corpus_texts(ds)
    with torch_threads(threads):
        vectors = encode(load_bi_encoder(base, "cpu"), list(texts.values()), "text", show_progress=True)
    return dict(zip(texts, vectors.tolist()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=["adapter", "cross-encoder", "full"], default="adapter")
    parser.add_argument("--pairs", type=int, default=10_000, help="training (question, positive) pairs (approx.)")
    parser.add_argument("--tools", type=int, default=1000)
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--chunk-share", type=float, default=0.2, help="share of questions that also have a chunk")
    parser.add_argument("--val", type=int, default=500, help="validation questions")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=128, help="cross-encoder tokens per (question, text)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                        help="bf16 mixed precision (full, cross-encoder) / caching pass (adapter)")
    parser.add_argument("--reuse-text-vectors", action="store_true",
                        help="adapter: hand over card/chunk vectors computed beforehand (as the vector store holds "
                             "them), so only questions are embedded in the timed run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"CPU: {cpu_summary()}", file=sys.stderr)  # figures depend on the instruction set

    # questions with a chunk give two pairs (card + chunk): aim the question count at --pairs pairs
    questions = int(round(args.pairs / (1 + args.chunk_share))) if args.chunks else args.pairs
    ds = synthetic_dataset(questions, args.tools, args.chunks, args.chunk_share, args.val, args.seed)
    base = resolve_model_path("bundled:all-MiniLM-L6-v2")
    with tempfile.TemporaryDirectory() as tmp:
        settings = TrainSettings(output_dir=Path(tmp) / "out", epochs=args.epochs, batch_size=args.batch_size,
                                 max_steps=args.max_steps, threads=args.threads, seed=args.seed,
                                 precision=args.precision)
        vectors = stored_vectors(ds, base, args.threads) if args.reuse_text_vectors else None
        started = time.perf_counter()
        if args.method == "adapter":
            from agentic_router.training.trainers.adapter import train_adapter

            result = train_adapter(ds, base, settings, text_vectors=vectors)
        elif args.method == "cross-encoder":
            from agentic_router.training.trainers.cross_encoder import train_cross_encoder

            result = train_cross_encoder(ds, base, settings, max_length=args.max_length)
        else:
            from agentic_router.training.trainers.full import train_full

            result = train_full(ds, base, settings)
        wall = time.perf_counter() - started
    report = {"method": args.method, "train_pairs": result.train_pairs, "steps": result.steps,
              "wall_seconds": round(wall, 2), "seconds_excluding_model_load":
              round(wall - result.details.get("load_seconds", 0.0), 2), "threads": args.threads,
              "corpus": {"tools": args.tools, "chunks": args.chunks, "val_questions": args.val},
              "precision": args.precision, "reused_text_vectors": args.reuse_text_vectors,
              "details": result.details, "val_metrics": result.val_metrics}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
