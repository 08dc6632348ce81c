"""Query-side adapter on frozen base embeddings: LlamaIndex's ``AdapterEmbeddingModel`` recipe.

Only questions pass through the adapter. ``AdapterEmbeddingModel._get_query_embedding`` (llama-index-
embeddings-adapter 0.6) runs the base model and then ``adapter.forward``; ``_get_text_embedding`` returns the
base vector untouched. So tool cards and chunks already stored in Chroma stay valid, and activating an
adapter costs no re-embedding. Because the document side is fixed, every text is embedded ONCE with the
base model and training runs on those cached vectors: a step is a small matrix product, not a transformer
pass. Note the adapter output is not re-normalised by LlamaIndex; that is harmless for cosine search.

Layout of ``output_dir``: ``step_<N>/`` checkpoints (``BaseAdapter.save``: ``config.json`` +
``pytorch_model.bin``, plus our ``adapter_config.json`` naming the class), and the kept adapter (best
validation step, or the last one without a val split) copied into ``output_dir`` itself. Serving reads that
format back with ``router.versions.models.load_adapter_embedding``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple, Sequence

import numpy as np

from agentic_router.indexes.atomic import atomic_write_dir
from agentic_router.indexes.errors import InputError, ModelError
from agentic_router.router.versions.models import ADAPTER_CONFIG, adapter_checkpoints
from agentic_router.training.dataset import RoutingDataset
from agentic_router.training.metrics import score_rankings
from agentic_router.training.trainers.common import (
    Laps,
    Pair,
    TrainResult,
    TrainSettings,
    build_pairs,
    corpus_texts,
    embedding_precision,
    encode,
    load_bi_encoder,
    load_dataset,
    one_line,
    positive_ids,
    prepare_output_dir,
    resolve_device,
    seed_everything,
    torch_threads,
)

if TYPE_CHECKING:
    import torch
    from llama_index.embeddings.adapter.utils import BaseAdapter
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

METHOD = "adapter"
KINDS = ("linear", "two-layer")
HIDDEN = 1024
SCALE = 20.0  # as MultipleNegativesRankingLoss: cross-entropy over cosine similarities x 20
MARGIN = 0.05  # mined negatives must score 5% below the question's weakest positive (same rule as full)


def make_adapter(kind: str, dim: int) -> "BaseAdapter":
    """``LinearLayer`` (identity start) or ``TwoLayerNN`` with a residual whose weight starts at 0, so both
    begin exactly as the base model and can only drift as far as training pushes them."""
    from llama_index.embeddings.adapter.utils import LinearLayer, TwoLayerNN

    if kind == "linear":
        return LinearLayer(dim, dim)
    if kind == "two-layer":
        return TwoLayerNN(dim, HIDDEN, dim, bias=True, add_residual=True)
    raise InputError(f"unknown adapter kind {kind!r}; choose {' or '.join(KINDS)}")


def train_adapter(dataset: RoutingDataset | str | Path, base_model: str, settings: TrainSettings,
                  kind: str = "two-layer", text_vectors: Mapping[str, Sequence[float]] | None = None) -> TrainResult:
    """Train a query-side adapter for ``base_model`` on cached embeddings; see the module docstring.

    Loss: cross-entropy over scaled cosine similarities between the adapted question and the batch's
    candidates (every positive in the batch plus each row's mined hard negatives), with the question's
    other positives masked out so a multi-positive question is never pushed away from a right answer.

    ``text_vectors`` (``"tool:<name>"`` / ``"chunk:<id>"`` -> vector) are base-model vectors the caller
    already has, e.g. from the vector store; only the texts missing from it are embedded. They must come
    from ``base_model`` itself, or the adapter learns to match the wrong space.
    """
    import torch

    ds = load_dataset(dataset)
    pairs = build_pairs(ds, "train")
    if kind not in KINDS:
        raise InputError(f"unknown adapter kind {kind!r}; choose {' or '.join(KINDS)}")
    opts = settings.resolved(epochs=5, batch_size=64, learning_rate=1e-3)
    device = resolve_device(opts.device)
    out = prepare_output_dir(opts.output_dir)
    for stale in adapter_checkpoints(out).values():  # a reused folder must not offer another run's steps
        shutil.rmtree(stale, ignore_errors=True)
    with torch_threads(opts.threads):
        laps = Laps()
        seed_everything(opts.seed)
        model = load_bi_encoder(base_model, device)
        laps.lap("load")
        cache = _cache(ds, model, pairs, text_vectors, opts.precision, device)
        del model
        laps.lap("embed")
        n_train = len(cache.train_q)
        negatives = _mine(cache.queries[:n_train], cache.docs, cache.pos[:n_train], opts.hard_negatives,
                          cache.not_neg[:n_train])
        laps.lap("mining")

        seed_everything(opts.seed)
        adapter = make_adapter(kind, cache.docs.shape[1]).to(device)
        val = (cache.queries[n_train:], cache.pos[n_train:], cache.docs) if cache.queries.shape[0] > n_train else None
        meta = {"kind": kind, "base_model": base_model, **adapter.get_config_dict()}
        q_index = {q: i for i, q in enumerate(cache.train_q)}
        rows_q = torch.tensor([q_index[p.qid] for p in pairs], device=device)
        rows_pos = torch.tensor([cache.where[p.positive_id] for p in pairs], device=device)
        step, losses, history, interrupted = _fit(adapter, cache, rows_q, rows_pos, negatives, opts, out, meta, val)
        best = max(history, key=lambda s: (history[s].get("mrr@10", 0.0), -s)) if val else max(history)
        _publish(out / f"step_{best}", out)
        head = max(1, len(losses) // 10)
        laps.lap("train")
        return TrainResult(
            method=METHOD, output_dir=out, base=base_model, steps=step, seconds=time.perf_counter() - laps.start,
            train_pairs=len(pairs), val_metrics={**history[best], "step": float(best)} if val else {},
            best_checkpoint=f"step_{best}", interrupted=interrupted,
            details={"kind": kind, "texts_embedded": cache.embedded, "texts_reused": cache.reused,
                     **{f"{name}_seconds": round(sec, 2) for name, sec in laps.seconds.items()},
                     "base_val_metrics": _evaluate(None, *val) if val else {},
                     "negatives_per_row": int(negatives.shape[1]),
                     "loss_first": sum(losses[:head]) / head if losses else None,
                     "loss_last": sum(losses[-head:]) / head if losses else None},
        )


class _Cache(NamedTuple):
    queries: "torch.Tensor"  # train questions first, then val questions; normalised base vectors
    docs: "torch.Tensor"  # every card and chunk, normalised
    pos: "torch.Tensor"  # per question: indices into docs of its positives, padded with -1
    not_neg: "torch.Tensor"  # positives plus the other texts of their documents (``groups``), padded with -1
    where: dict[str, int]  # "tool:x" / "chunk:y" -> row of docs
    train_q: list[str]
    embedded: int
    reused: int


def _cache(ds: RoutingDataset, model: "SentenceTransformer", pairs: list[Pair],
           text_vectors: Mapping[str, Sequence[float]] | None, precision: str, device: str) -> _Cache:
    """Embed every question and every text once (texts found in ``text_vectors`` are taken as given)."""
    import torch

    texts = corpus_texts(ds)
    where = {tid: i for i, tid in enumerate(texts)}
    train_q = list(dict.fromkeys(p.qid for p in pairs))
    all_q = train_q + [q for q in ds.qids("val") if any(pid in where for pid in positive_ids(ds, q))]
    dim = model.get_embedding_dimension()
    known = {t: v for t, v in (text_vectors or {}).items() if t in where}
    try:
        given = torch.as_tensor(np.asarray(list(known.values()) or np.zeros((0, dim or 0)), dtype=np.float32))
    except (TypeError, ValueError) as exc:
        raise ModelError(f"text_vectors must be equal-length number lists ({one_line(exc)})") from exc
    if given.ndim != 2 or given.shape[1] != dim:
        raise ModelError(f"text_vectors are {given.shape[-1]}-dim, the base model gives {dim}")
    todo = [t for t in texts if t not in known]
    big = len(all_q) + len(todo) > 2000
    docs = torch.zeros(len(texts), dim)
    with embedding_precision(precision, device):
        if todo:
            fresh = encode(model, [texts[t] for t in todo], "text", show_progress=big)
            docs[[where[t] for t in todo]] = fresh.float().cpu()
        queries = encode(model, [ds.queries[q] for q in all_q], "query", show_progress=big).float().to(device)
    if known:
        docs[[where[t] for t in known]] = torch.nn.functional.normalize(given, dim=-1)
    pos = [[where[p] for p in positive_ids(ds, q) if p in where] for q in all_q]
    members: dict[str, list[int]] = {}
    for tid, group in ds.groups.items():
        if tid in where:
            members.setdefault(group, []).append(where[tid])
    not_neg = [sorted(set(p).union(*(members.get(ds.groups.get(t, ""), []) for t in positive_ids(ds, q))))
               for q, p in zip(all_q, pos)]
    return _Cache(queries, docs.to(device), _padded(pos, device), _padded(not_neg, device), where, train_q,
                  len(all_q) + len(todo), len(known))


def _padded(rows: list[list[int]], device: str) -> "torch.Tensor":
    import torch

    width = max(1, max(len(r) for r in rows))
    return torch.tensor([r + [-1] * (width - len(r)) for r in rows], device=device)


def _fit(adapter: "BaseAdapter", cache: _Cache, rows_q: "torch.Tensor", rows_pos: "torch.Tensor",
         negatives: "torch.Tensor", opts: TrainSettings, out: Path, meta: dict[str, Any],
         val: tuple | None) -> tuple[int, list[float], dict[int, dict[str, float]], bool]:
    """The training loop: checkpoint (and validate) every ``checkpoint_steps`` and at the end; Ctrl-C stops
    it cleanly with the current state saved as the last checkpoint."""
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    assert opts.batch_size and opts.epochs and opts.learning_rate, "trainers are given resolved settings"
    optimizer = _optimizer(adapter, opts.learning_rate)
    per_epoch = math.ceil(len(rows_q) / opts.batch_size)
    total = min(per_epoch * opts.epochs, opts.max_steps or per_epoch * opts.epochs)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(total * opts.warmup_ratio), total)
    generator = torch.Generator().manual_seed(opts.seed)
    history: dict[int, dict[str, float]] = {}
    losses: list[float] = []
    step, interrupted = 0, False
    bar = tqdm(total=total, desc="adapter", unit="step")
    try:
        with torch_threads(1):  # steps are tiny matmuls: more threads only add sync cost (6x slower on a busy box)
            while step < total:
                for batch in torch.randperm(len(rows_q), generator=generator).split(opts.batch_size):
                    batch = batch.to(rows_q.device)
                    loss = _batch_loss(adapter, cache.queries, cache.docs, rows_q[batch], rows_pos[batch], negatives,
                                       cache.not_neg)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    scheduler.step()
                    step += 1
                    losses.append(loss.item())
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
                    if step % opts.checkpoint_steps == 0 and step < total:
                        history[step] = _checkpoint(adapter, out, step, meta, val)
                    if step >= total:
                        break
    except KeyboardInterrupt:
        interrupted = True
        logger.warning("adapter training interrupted at step %d; saving it", step)
    finally:
        bar.close()
    if step not in history:  # the last state (step 0 = untrained identity adapter when stopped at once)
        history[step] = _checkpoint(adapter, out, step, meta, val)
    return step, losses, history, interrupted


def _optimizer(adapter: "BaseAdapter", lr: float) -> "torch.optim.Optimizer":
    """AdamW, fused when torch supports it for the device (a third faster on CPU for these small steps)."""
    import torch

    try:
        return torch.optim.AdamW(adapter.parameters(), lr=lr, weight_decay=0.0, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(adapter.parameters(), lr=lr, weight_decay=0.0)


def _mine(queries: "torch.Tensor", docs: "torch.Tensor", pos: "torch.Tensor", k: int,
          not_neg: "torch.Tensor | None" = None) -> "torch.Tensor":
    """Top-``k`` texts per question from the cached base vectors that are neither positives nor in
    ``not_neg`` (its documents' other texts) and score clearly below its weakest positive (``-1`` = none)."""
    import torch

    k = min(k, docs.shape[0])
    out = torch.full((queries.shape[0], k), -1, dtype=torch.long, device=queries.device)
    if k == 0:
        return out
    for start in range(0, queries.shape[0], 1024):
        scores = queries[start : start + 1024] @ docs.T
        p = pos[start : start + 1024]
        slot = p.masked_fill(p < 0, docs.shape[0])  # padding goes to a spare column, dropped below
        is_pos = torch.zeros(scores.shape[0], docs.shape[0] + 1, dtype=torch.bool, device=scores.device)
        is_pos = is_pos.scatter_(1, slot, True)[:, :-1]
        weakest = scores.masked_fill(~is_pos, float("inf")).min(dim=1, keepdim=True).values
        if not_neg is not None:
            block = not_neg[start : start + 1024]
            spare = torch.zeros_like(is_pos[:, :1])
            is_pos = torch.cat([is_pos, spare], 1).scatter_(1, block.masked_fill(block < 0, docs.shape[0]), True)[:, :-1]
        scores = scores.masked_fill(is_pos | (scores > weakest - weakest.abs() * MARGIN), float("-inf"))
        top, idx = scores.topk(k, dim=1)
        out[start : start + 1024] = idx.masked_fill(top == float("-inf"), -1)
    return out


def _batch_loss(adapter: "BaseAdapter", queries: "torch.Tensor", docs: "torch.Tensor", rows_q: "torch.Tensor",
                rows_pos: "torch.Tensor", negatives: "torch.Tensor", pos: "torch.Tensor") -> "torch.Tensor":
    """In-batch + hard-negative cross-entropy; each distinct text is one candidate column. ``pos`` holds
    every text that must not count against a question (its positives and their documents' texts)."""
    import torch
    import torch.nn.functional as F

    neg = negatives[rows_q].flatten()
    cand = torch.unique(torch.cat([rows_pos, neg[neg >= 0]]))
    q = F.normalize(adapter(queries[rows_q]), dim=-1)
    scores = SCALE * q @ docs[cand].T
    target = torch.searchsorted(cand, rows_pos)
    other_pos = (pos[rows_q].unsqueeze(2) == cand.view(1, 1, -1)).any(dim=1)
    other_pos[torch.arange(len(rows_q), device=cand.device), target] = False
    return F.cross_entropy(scores.masked_fill(other_pos, float("-inf")), target)


def _evaluate(adapter: "BaseAdapter | None", queries: "torch.Tensor", pos: "torch.Tensor",
              docs: "torch.Tensor") -> dict[str, float]:
    """hit@1, MRR@10 and NDCG@10 of the val questions over every card and chunk (cached vectors). The top 10
    is found on the tensors; the figures come from ``training.metrics`` like every other evaluation's
    (a few hundred questions x 10 ids per checkpoint: no cost next to the steps in between)."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        q = F.normalize(adapter(queries), dim=-1) if adapter is not None else queries
        top = (q @ docs.T).topk(min(10, docs.shape[0]), dim=1).indices
    golds = [{i for i in row if i >= 0} for row in pos.tolist()]  # pos is padded with -1
    scores = score_rankings(top.tolist(), golds)
    return {"hit@1": scores["hit@1"], "mrr@10": scores["mrr"], "ndcg@10": scores["ndcg@10"]}


def _checkpoint(adapter: "BaseAdapter", out: Path, step: int, meta: dict[str, Any],
                val: tuple | None) -> dict[str, float]:
    """Save ``step_<N>/`` atomically (a Ctrl-C mid-save never leaves a half-written checkpoint)."""
    def fill(tmp: Path) -> None:
        adapter.save(str(tmp))
        (tmp / ADAPTER_CONFIG).write_text(json.dumps({**meta, "step": step}, indent=2), encoding="utf-8")

    atomic_write_dir(out / f"step_{step}", fill)
    return _evaluate(adapter, *val) if val else {}


def _publish(source: Path, out: Path) -> None:
    """Copy the kept checkpoint's files into ``out`` itself, each by an atomic replace."""
    for name in ("config.json", "pytorch_model.bin", ADAPTER_CONFIG):
        tmp = out / f".{name}.tmp"
        shutil.copyfile(source / name, tmp)
        os.replace(tmp, out / name)  # binary weights: copied, then renamed like atomic_write_text does
