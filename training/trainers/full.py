"""Full fine-tune of the bi-encoder with ``SentenceTransformerTrainer``.

Every weight of the embedder moves, so tool cards and chunks must be re-embedded with the result (the
registry's activation does that). The recipe is the standard sentence-transformers one for retrieval:
(question, positive, mined hard negatives) rows, ``MultipleNegativesRankingLoss`` (the other rows of a
batch act as extra negatives), and a no-duplicates batch sampler so a tool card never appears twice in a
batch, where it would count as its own negative.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from agentic_router.training.dataset import RoutingDataset
from agentic_router.training.trainers.common import (
    TrainResult,
    TrainSettings,
    build_pairs,
    corpus_texts,
    load_bi_encoder,
    load_dataset,
    loss_ends,
    train_and_save,
    trainer_arguments,
    prepare_output_dir,
    resolve_device,
    seed_everything,
    torch_threads,
    validation_qrels,
)
from agentic_router.training.trainers.negatives import blocked_texts, mine_negatives

logger = logging.getLogger(__name__)

METHOD = "full"
CACHED_LOSS_ABOVE = 64  # batch sizes above this use GradCache so memory stays that of a 32-row batch
BEST_METRIC = "eval_val_cosine_ndcg@10"


def train_full(dataset: RoutingDataset | str | Path, base_model: str, settings: TrainSettings,
               callbacks: list[Any] | None = None) -> TrainResult:
    """Fine-tune ``base_model`` on the data set's train split and save it at ``settings.output_dir``.

    With a val split, the model is scored after each epoch (NDCG@10 over every card and chunk) and the best
    epoch is what gets saved; without one, the last state is saved. Ctrl-C saves the current weights and
    returns ``interrupted=True``: the folder is always a loadable ``SentenceTransformer``. ``callbacks`` are
    passed to the transformers ``Trainer`` (progress reporting, early stopping).
    """
    with torch_threads(settings.threads):
        return _train_full(dataset, base_model, settings, callbacks)


def _train_full(dataset: RoutingDataset | str | Path, base_model: str, settings: TrainSettings,
                callbacks: list[Any] | None = None) -> TrainResult:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )
    from sentence_transformers.util import cos_sim

    ds = load_dataset(dataset)
    pairs = build_pairs(ds, "train")
    opts = settings.resolved(epochs=1, batch_size=32, learning_rate=2e-5)
    device = resolve_device(opts.device)
    out = prepare_output_dir(opts.output_dir)
    started = time.perf_counter()
    seed_everything(opts.seed)
    model = load_bi_encoder(base_model, device)
    loaded = time.perf_counter()

    if opts.hard_negatives:
        train_data, counts = mine_negatives(model, pairs, corpus_texts(ds), opts.hard_negatives, opts.seed,
                                            blocked=blocked_texts(ds, pairs))
    else:
        train_data = Dataset.from_dict({"anchor": [p.query for p in pairs], "positive": [p.positive for p in pairs]})
        counts = {"mined_rows": 0, "filled_rows": 0, "negatives_per_row": 0}
    mined = time.perf_counter()

    if opts.batch_size > CACHED_LOSS_ABOVE:
        loss = CachedMultipleNegativesRankingLoss(model, mini_batch_size=32)
    else:
        loss = MultipleNegativesRankingLoss(model)

    queries, corpus, relevant = validation_qrels(ds)
    evaluator = None
    if relevant:
        evaluator = InformationRetrievalEvaluator(
            queries, corpus, relevant, name="val", score_functions={"cosine": cos_sim}, main_score_function="cosine",
            batch_size=64, write_csv=False, show_progress_bar=False,
        )
    args = SentenceTransformerTrainingArguments(
        batch_sampler=BatchSamplers.NO_DUPLICATES, **trainer_arguments(
            opts, out, device, len(train_data), BEST_METRIC if evaluator is not None else None),
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train_data, loss=loss,
                                         evaluator=evaluator, callbacks=callbacks)
    interrupted = train_and_save(trainer, out, logger)
    trained = time.perf_counter()

    best = Path(trainer.state.best_model_checkpoint).name if trainer.state.best_model_checkpoint else None
    return TrainResult(
        method=METHOD, output_dir=out, base=base_model, steps=trainer.state.global_step,
        seconds=time.perf_counter() - started, train_pairs=len(pairs),
        val_metrics=_best_eval(trainer.state.log_history, trainer.state.best_metric),
        best_checkpoint=None if interrupted else best, interrupted=interrupted,
        details={**counts, "train_rows": len(train_data), "loss": type(loss).__name__,
                 "load_seconds": round(loaded - started, 2), "mining_seconds": round(mined - loaded, 2),
                 "train_seconds": round(trained - mined, 2), **loss_ends(trainer.state.log_history)},
    )


def _best_eval(history: list[dict[str, Any]], best: float | None) -> dict[str, float]:
    """The validation figures of the kept epoch, named like the other trainers' (hit@1, mrr@10, ndcg@10)."""
    evals = [h for h in history if BEST_METRIC in h]
    if not evals:
        return {}
    chosen = next((h for h in evals if best is not None and h[BEST_METRIC] == best), evals[-1])
    names = {"accuracy@1": "hit@1", "accuracy@5": "hit@5", "mrr@10": "mrr@10", "ndcg@10": "ndcg@10", "map@100": "map@100"}
    out = {new: float(chosen[f"eval_val_cosine_{old}"]) for old, new in names.items() if f"eval_val_cosine_{old}" in chosen}
    out["epoch"] = float(chosen.get("epoch", 0.0))
    return out
