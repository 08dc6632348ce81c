"""Cross-encoder reranker trained with ``CrossEncoderTrainer`` on (question, text, label) rows.

The router's bi-encoder narrows the catalog; a cross-encoder reads the question and one candidate together
and reorders the short list. No reranker checkpoint can be downloaded here, so the default start is the
bundled MiniLM bi-encoder: ``CrossEncoder(path, num_labels=1)`` keeps its transformer and adds a fresh
classification head (sentence-transformers logs "Converting SentenceTransformer model ... to CrossEncoder").
Negatives are mined with the bi-encoder itself, i.e. they are the wrong candidates the reranker will
actually be shown.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from agentic_router.indexes.encoders.embeddings import resolve_model_path
from agentic_router.indexes.errors import InputError, ModelError
from agentic_router.router.retrieval.rerank import best_window
from agentic_router.training.dataset import RoutingDataset
from agentic_router.training.trainers.common import (
    CARD_PREFIX,
    CHUNK_PREFIX,
    Laps,
    Recipe,
    TrainResult,
    TrainSettings,
    build_pairs,
    corpus_texts,
    load_bi_encoder,
    load_dataset,
    one_line,
    run_trainer,
    seed_everything,
)
from agentic_router.training.trainers.negatives import blocked_texts, mine_negatives

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

METHOD = "cross-encoder"
MAX_LENGTH = 128  # question + card fit; a 256-token chunk is cut in half, which keeps a step ~3x cheaper
VAL_CANDIDATES = 10  # reranked per val question: its positives + the bi-encoder's top wrong texts
BEST_METRIC = "eval_val_ndcg@10"
REPORTED = {"eval_val_map": "map", "eval_val_mrr@10": "mrr@10", "eval_val_ndcg@10": "ndcg@10"}
# The classification head starts random on top of a bi-encoder: at the usual 2e-5 a few hundred rows left
# the loss at ln 2 (COVID-QA logs, 276 questions), i.e. the reranker learned nothing. 1e-4 moves it.
LEARNING_RATE = 1e-4


def train_cross_encoder(dataset: RoutingDataset | str | Path, base_model: str, settings: TrainSettings,
                        miner_model: str | None = None, max_length: int = MAX_LENGTH,
                        callbacks: list[Any] | None = None) -> TrainResult:
    """Fine-tune a reranker from ``base_model`` and save it (standard CrossEncoder folder) at ``output_dir``.

    Positives are label 1, ``settings.hard_negatives`` mined texts per question label 0 (at least one),
    with ``BinaryCrossEntropyLoss(pos_weight=negatives per positive)`` so both classes weigh the same. The
    val split, when present, is scored each epoch (NDCG@10 reranking the positives among the bi-encoder's
    top wrong candidates) and the best epoch is kept. Ctrl-C saves the current weights, ``interrupted=True``.
    ``miner_model`` (default: ``base_model``) is the bi-encoder that mines negatives.
    """
    import torch
    from sentence_transformers import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    ds = load_dataset(dataset)
    reads = _what_it_reads(ds)
    pairs = [p for p in build_pairs(ds, "train") if reads(p.positive_id)] or build_pairs(ds, "train")
    val_pairs = [p for p in build_pairs(ds, "val") if reads(p.positive_id)]
    opts = settings.resolved(epochs=1, batch_size=32, learning_rate=LEARNING_RATE)

    def prepare(device: str, laps: Laps) -> Recipe:
        miner = load_bi_encoder(miner_model or base_model, device)
        laps.lap("load")
        corpus = {k: v for k, v in corpus_texts(ds).items() if reads(k)}
        passages = {v for k, v in corpus.items() if k.startswith(CHUNK_PREFIX)}
        if opts.hard_negatives < 1:
            logger.warning("a reranker needs negatives: mining 1 per question although hard_negatives=0")
        samples: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory() as cache:  # the val pass reuses the corpus vectors of the train pass
            train_data, counts = mine_negatives(miner, pairs, corpus, max(1, opts.hard_negatives), opts.seed,
                                                output_format="labeled-pair", cache_dir=Path(cache),
                                                blocked=blocked_texts(ds, pairs))
            if val_pairs:
                val_rows, _ = mine_negatives(miner, val_pairs, corpus, VAL_CANDIDATES - 1, opts.seed,
                                             output_format="labeled-pair", relative_margin=None,
                                             cache_dir=Path(cache), blocked=blocked_texts(ds, val_pairs))
                samples = _reranking_samples(_windowed(val_rows, passages))
        del miner
        if "label" not in train_data.column_names:  # no text could serve as a negative
            raise InputError("cannot train a reranker: the data set has no text that is a negative for any question")
        train_data = _windowed(train_data, passages)
        n_pos = sum(train_data["label"])
        n_neg = len(train_data) - n_pos
        laps.lap("mining")
        seed_everything(opts.seed)  # the new classifier head is drawn from the seeded generator
        try:
            model = CrossEncoder(resolve_model_path(base_model), num_labels=1, max_length=max_length, device=device)
        except Exception as exc:  # noqa: BLE001 - any load failure reads the same to a user
            raise ModelError(f"cannot load base model {base_model!r}: {one_line(exc)}") from exc
        laps.lap("load")
        loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(n_neg / max(1, n_pos)))
        evaluator = None
        if samples:
            evaluator = CrossEncoderRerankingEvaluator(samples, at_k=10, name="val", batch_size=64, write_csv=False,
                                                       show_progress_bar=False)
        return Recipe(model, train_data, loss, evaluator,
                      {**counts, "train_rows": len(train_data), "positives": n_pos, "negatives": n_neg,
                       "max_length": max_length, "val_questions": len(samples)})

    return run_trainer(METHOD, base_model, opts, len(pairs), prepare, CrossEncoderTrainer,
                       CrossEncoderTrainingArguments, BEST_METRIC, REPORTED, callbacks)


def _what_it_reads(ds: RoutingDataset) -> Callable[[str], bool]:
    """At rerank time a document tool is read through its passage and an external tool through its card
    (``router.retrieval.rerank``), so those are the texts to train on. Training also on document tool cards taught a
    reranker that any "vector_...: Semantic search over the passages" card is relevant (every logged
    question had one as a positive): it scored them 0.92 whatever the question. Without ``groups`` (no
    catalog to tell document tools apart) every text is kept."""
    doc_cards = {tid for tid in ds.groups if tid.startswith(CARD_PREFIX)}
    return lambda text_id: text_id not in doc_cards


def _windowed(rows: Any, passages: set[str]) -> Any:
    """Each (question, passage) row shows the passage's window that best matches the question, as
    reranking reads passages at inference (``router.retrieval.rerank``): a long chunk cut at ``max_length`` would
    often hide the very sentence that makes it a positive. Tool cards are read whole, as at inference."""
    return rows.map(lambda row: {"positive": best_window(row["anchor"], row["positive"])
                                 if row["positive"] in passages else row["positive"]})


def _reranking_samples(rows: Any) -> list[dict[str, Any]]:
    """``labeled-pair`` rows grouped per question into CrossEncoderRerankingEvaluator samples."""
    grouped: dict[str, dict[str, Any]] = {}
    for query, text, label in zip(rows["anchor"], rows["positive"], rows["label"]):
        sample = grouped.setdefault(query, {"query": query, "positive": [], "negative": []})
        sample["positive" if label else "negative"].append(text)
    return [s for s in grouped.values() if s["positive"] and s["negative"]]
