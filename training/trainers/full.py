"""Full fine-tune of the bi-encoder with ``SentenceTransformerTrainer``.

Every weight of the embedder moves, so tool cards and chunks must be re-embedded with the result (the
registry's activation does that). The recipe is the standard sentence-transformers one for retrieval:
(question, positive, mined hard negatives) rows, ``MultipleNegativesRankingLoss`` (the other rows of a
batch act as extra negatives), and a no-duplicates batch sampler so a tool card never appears twice in a
batch, where it would count as its own negative.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentic_router.training.dataset import RoutingDataset
from agentic_router.training.trainers.common import (
    Laps,
    Recipe,
    TrainResult,
    TrainSettings,
    build_pairs,
    corpus_texts,
    load_bi_encoder,
    load_dataset,
    run_trainer,
    validation_qrels,
)
from agentic_router.training.trainers.negatives import blocked_texts, mine_negatives

METHOD = "full"
CACHED_LOSS_ABOVE = 64  # batch sizes above this use GradCache so memory stays that of a 32-row batch
BEST_METRIC = "eval_val_cosine_ndcg@10"
# InformationRetrievalEvaluator's log keys -> the names every trainer reports
REPORTED = {"eval_val_cosine_accuracy@1": "hit@1", "eval_val_cosine_accuracy@5": "hit@5",
            "eval_val_cosine_mrr@10": "mrr@10", "eval_val_cosine_ndcg@10": "ndcg@10",
            "eval_val_cosine_map@100": "map@100"}


def train_full(dataset: RoutingDataset | str | Path, base_model: str, settings: TrainSettings,
               callbacks: list[Any] | None = None) -> TrainResult:
    """Fine-tune ``base_model`` on the data set's train split and save it at ``settings.output_dir``.

    With a val split, the model is scored after each epoch (NDCG@10 over every card and chunk) and the best
    epoch is what gets saved; without one, the last state is saved. Ctrl-C saves the current weights and
    returns ``interrupted=True``: the folder is always a loadable ``SentenceTransformer``. ``callbacks`` are
    passed to the transformers ``Trainer`` (progress reporting, early stopping).
    """
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

    def prepare(device: str, laps: Laps) -> Recipe:
        model = load_bi_encoder(base_model, device)
        laps.lap("load")
        if opts.hard_negatives:
            train_data, counts = mine_negatives(model, pairs, corpus_texts(ds), opts.hard_negatives, opts.seed,
                                                blocked=blocked_texts(ds, pairs))
        else:
            train_data = Dataset.from_dict({"anchor": [p.query for p in pairs],
                                            "positive": [p.positive for p in pairs]})
            counts = {"mined_rows": 0, "filled_rows": 0, "negatives_per_row": 0}
        laps.lap("mining")
        assert opts.batch_size, "trainers are given resolved settings"
        loss: CachedMultipleNegativesRankingLoss | MultipleNegativesRankingLoss
        if opts.batch_size > CACHED_LOSS_ABOVE:
            loss = CachedMultipleNegativesRankingLoss(model, mini_batch_size=32)
        else:
            loss = MultipleNegativesRankingLoss(model)
        queries, corpus, relevant = validation_qrels(ds)
        evaluator = None
        if relevant:
            evaluator = InformationRetrievalEvaluator(
                queries, corpus, relevant, name="val", score_functions={"cosine": cos_sim},
                main_score_function="cosine", batch_size=64, write_csv=False, show_progress_bar=False,
            )
        return Recipe(model, train_data, loss, evaluator,
                      {**counts, "train_rows": len(train_data), "loss": type(loss).__name__})

    return run_trainer(METHOD, base_model, opts, len(pairs), prepare, SentenceTransformerTrainer,
                       SentenceTransformerTrainingArguments, BEST_METRIC, REPORTED, callbacks,
                       batch_sampler=BatchSamplers.NO_DUPLICATES)
