"""What every trainer shares: settings, the result record, seeding, device choice and the training pairs.

The three trainers (full fine-tune, query-side adapter, cross-encoder reranker) read the same
``RoutingDataset`` and report the same ``TrainResult``, so the CLI, the registry and the HTTP schema can
treat them alike. Keeping the pair building here guarantees that all three learn from exactly the same
positives. The two that run a transformers ``Trainer`` (full, cross-encoder) share one run,
``run_trainer``, and only say what is theirs in a ``Recipe``: model, rows, loss, evaluator.
"""

from __future__ import annotations

import logging
import random
import shutil
import time
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, NamedTuple

from agentic_router.indexes.encoders.embeddings import resolve_device, resolve_model_path  # noqa: F401 - resolve_device re-exported
from agentic_router.indexes.errors import InputError, ModelError
from agentic_router.router.versions.models import one_line
from agentic_router.training.dataset import RoutingDataset

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

CARD_PREFIX = "tool:"
CHUNK_PREFIX = "chunk:"
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class TrainSettings:
    """Training knobs shared by every method. Field metadata carries the help text (CLI and HTTP schema).

    ``None`` for ``epochs``, ``batch_size`` and ``learning_rate`` means "the method's own default", because
    a query-side adapter on cached vectors wants a learning rate ~50x that of a full fine-tune.
    """

    output_dir: Path = field(metadata={"help": "Folder the trained model is written to (created if missing)."})
    epochs: int | None = field(
        default=None, metadata={"help": "Passes over the training pairs (default: full 1, adapter 5, cross-encoder 1)."}
    )
    batch_size: int | None = field(
        default=None,
        metadata={"help": "Rows per step (default: full 32, adapter 64, cross-encoder 32). Bi-encoders use the other "
                          "rows of a batch as negatives; full fine-tunes above 64 switch to the cached (GradCache) loss."},
    )
    learning_rate: float | None = field(
        default=None, metadata={"help": "Peak learning rate (default: 2e-5 full and cross-encoder, 1e-3 adapter)."}
    )
    seed: int = field(default=0, metadata={"help": "Seed for shuffling, mining ties and weight initialisation."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Share of the steps spent warming the learning rate up."})
    max_steps: int | None = field(default=None, metadata={"help": "Stop after this many steps (None: run all epochs)."})
    hard_negatives: int = field(
        default=1,
        metadata={"help": "Negatives mined per query with the base model (0: in-batch negatives only). The "
                          "cross-encoder uses them as its label-0 rows."},
    )
    checkpoint_steps: int = field(
        default=100,
        metadata={"help": "Adapter: save and validate a step_<N> checkpoint every N steps. Full and cross-encoder "
                          "runs validate and checkpoint once per epoch instead."},
    )
    device: str = field(default="auto", metadata={"help": "torch device: auto (CUDA when present, else CPU), cpu, cuda."})
    precision: str = field(
        default="auto",
        metadata={"help": "fp32, bf16, or auto = bf16 on CPUs that compute it natively (AVX512-BF16/AMX), else fp32. "
                          "bf16 is mixed precision (fp32 weights) for full/cross-encoder training, ~2x faster on such "
                          "CPUs, and the adapter's one caching pass (cosines within 4e-5 of fp32)."},
    )
    max_seconds: float | None = field(
        default=None,
        metadata={"help": "Full and cross-encoder: stop after the step that passes this much training time and keep "
                          "those weights (None: no limit). On 2 cores a step of 32 long tool cards takes ~45 s."},
    )
    threads: int | None = field(
        default=None,
        metadata={"help": "torch CPU threads while training (None: torch's default, one per core). On a box shared "
                          "with other jobs 1 can be several times faster: spinning threads fight for the cores."},
    )

    def __post_init__(self) -> None:
        self.output_dir = Path(self.output_dir)
        for name in ("epochs", "batch_size", "max_steps", "threads"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise InputError(f"{name} must be >= 1, not {value}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise InputError(f"max_seconds must be > 0, not {self.max_seconds}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise InputError(f"learning_rate must be > 0, not {self.learning_rate}")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.hard_negatives < 0 or self.checkpoint_steps < 1 or not 0.0 <= self.warmup_ratio < 1.0:
            raise InputError("hard_negatives must be >= 0, checkpoint_steps >= 1 and warmup_ratio in [0, 1)")

    def resolved(self, epochs: int, batch_size: int, learning_rate: float) -> "TrainSettings":
        """A copy with the method defaults filled in where the user gave nothing."""
        values = asdict(self)
        values["epochs"] = self.epochs or epochs
        values["batch_size"] = self.batch_size or batch_size
        values["learning_rate"] = self.learning_rate or learning_rate
        return TrainSettings(**values)


@dataclass
class TrainResult:
    """What a training run produced; ``to_dict`` is what the registry stores as the version's figures."""

    method: str
    output_dir: Path
    base: str
    steps: int
    seconds: float
    train_pairs: int
    val_metrics: dict[str, float] = field(default_factory=dict)
    best_checkpoint: str | None = None
    interrupted: bool = False
    details: dict[str, Any] = field(default_factory=dict)  # timing split, loss curve ends, mining counts

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["output_dir"] = str(self.output_dir)
        data["seconds"] = round(self.seconds, 2)
        return data


class Pair(NamedTuple):
    """One training row: a question and one of its positives (a tool card or a chunk)."""

    qid: str
    query: str
    positive_id: str  # "tool:<name>" or "chunk:<id>"
    positive: str


# ---- environment ---------------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so two runs with one seed train the same model."""
    from transformers import set_seed

    random.seed(seed)
    set_seed(seed)


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads (None: leave as is), restoring the old count after."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def use_bf16(precision: str, device: str) -> bool:
    """Resolve ``precision``: ``auto`` means bf16 only on a CPU that computes it natively; elsewhere bf16 is
    emulated and slower than fp32 (and a GPU is fast enough in fp32 for these small models)."""
    if precision == "auto":
        return device == "cpu" and _native_cpu_bf16()
    return precision == "bf16"


def embedding_precision(precision: str, device: str) -> AbstractContextManager[Any]:
    """An autocast context for an embedding-only pass (``nullcontext`` for fp32)."""
    import torch

    if not use_bf16(precision, device):
        return nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)


def _native_cpu_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="ignore")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


# ---- data ----------------------------------------------------------------------------------------------
def load_dataset(dataset: RoutingDataset | str | Path) -> RoutingDataset:
    """Accept a loaded data set or a path; a missing, empty or corrupt file is a one-line ``InputError``."""
    if isinstance(dataset, RoutingDataset):
        if not dataset.queries:
            raise InputError("dataset is empty (no queries)")
        return dataset
    return RoutingDataset.load(dataset)


def corpus_texts(dataset: RoutingDataset) -> dict[str, str]:
    """Every retrievable text, keyed ``tool:<name>`` / ``chunk:<id>``: the router scores a tool by its card
    and by the best chunk of its document, so both are candidates and both can be negatives."""
    texts = {CARD_PREFIX + k: v for k, v in dataset.corpus.items()}
    texts.update({CHUNK_PREFIX + k: v for k, v in dataset.chunks.items()})
    return {k: v for k, v in texts.items() if isinstance(v, str) and v.strip()}


def positive_ids(dataset: RoutingDataset, qid: str) -> list[str]:
    """All positives of a question (cards first), restricted to texts that exist."""
    ids = [CARD_PREFIX + t for t in dataset.relevant_docs.get(qid, []) if t in dataset.corpus]
    ids += [CHUNK_PREFIX + c for c in dataset.relevant_chunks.get(qid, []) if c in dataset.chunks]
    return list(dict.fromkeys(ids))


def build_pairs(dataset: RoutingDataset, split: str = "train") -> list[Pair]:
    """One row per (question, positive) over router pairs and chunk pairs; multi-positive questions give
    several rows. ``InputError`` when the split has none, naming the likely cause."""
    texts = corpus_texts(dataset)
    pairs = [Pair(q, dataset.queries[q], pid, texts[pid]) for q in dataset.qids(split)
             if isinstance(dataset.queries[q], str) and dataset.queries[q].strip()
             for pid in positive_ids(dataset, q) if pid in texts]
    if not pairs and split == "train":
        raise InputError(
            "dataset has no training pairs: no 'train' question has a relevant tool card or chunk in the data set"
        )
    return pairs


def validation_qrels(dataset: RoutingDataset, max_corpus: int = 2000,
                     seed: int = 0) -> tuple[dict[str, Any], dict[str, Any], dict[str, set[str]]]:
    """``(queries, corpus, relevant)`` of the val split in InformationRetrievalEvaluator's shape;
    empty dicts when the data set has no validation questions. The corpus is every positive plus a seeded
    sample of the other texts up to ``max_corpus``: re-embedding a whole catalog after every epoch would
    cost more than the epoch (and the ranking of one model against itself needs no more)."""
    relevant = {q: set(positive_ids(dataset, q)) for q in dataset.qids("val")}
    relevant = {q: ids for q, ids in relevant.items() if ids}
    if not relevant:
        return {}, {}, {}
    texts = corpus_texts(dataset)
    keep = {pid for q in dataset.queries for pid in positive_ids(dataset, q) if pid in texts}
    rest = sorted(set(texts) - keep)
    keep |= set(random.Random(seed).sample(rest, max(0, min(len(rest), max_corpus - len(keep)))))
    return {q: dataset.queries[q] for q in relevant}, {k: texts[k] for k in texts if k in keep}, relevant


# ---- models --------------------------------------------------------------------------------------------
def load_bi_encoder(name: str, device: str) -> "SentenceTransformer":
    """Load a sentence-transformers model (``bundled:`` alias or path); failures are one-line ``ModelError``s."""
    from sentence_transformers import SentenceTransformer

    path = resolve_model_path(name)
    try:
        return SentenceTransformer(path, device=device)
    except Exception as exc:  # noqa: BLE001 - any load failure reads the same to a user
        raise ModelError(f"cannot load base model {name!r}: {exc}".splitlines()[0]) from exc


def encode(model: "SentenceTransformer", texts: list[str], role: str, batch_size: int = 64,
           show_progress: bool = False):  # noqa: ANN201 - a float32 torch tensor
    """Normalised embeddings the way ``HuggingFaceEmbedding`` makes them (prompt ``query``/``text`` when the
    model defines one), so vectors cached for training match those the router computes."""
    prompt_name = role if role in (model.prompts or {}) else None
    return model.encode(texts, batch_size=batch_size, prompt_name=prompt_name, normalize_embeddings=True,
                        convert_to_tensor=True, show_progress_bar=show_progress)


def prepare_output_dir(path: Path) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


CHECKPOINTS = "checkpoints"


def trainer_arguments(opts: TrainSettings, out: Path, device: str, rows: int, best_metric: str | None) -> dict[str, Any]:
    """Keyword arguments shared by the sentence-transformers and cross-encoder training arguments: epoch-wise
    validation keeping the best checkpoint when there is a validation set, no hub, no trackers, CPU friendly."""
    strategy = "epoch" if best_metric is not None else "no"
    assert opts.batch_size and opts.epochs, "trainers are given resolved settings"
    approx_steps = -(-rows // opts.batch_size) * opts.epochs
    approx_steps = min(approx_steps, opts.max_steps or approx_steps)
    return dict(
        output_dir=str(out / CHECKPOINTS),
        num_train_epochs=opts.epochs,
        max_steps=opts.max_steps or -1,
        per_device_train_batch_size=opts.batch_size,
        per_device_eval_batch_size=opts.batch_size,
        learning_rate=opts.learning_rate,
        warmup_steps=opts.warmup_ratio,  # transformers 5 takes the ratio as a float here
        seed=opts.seed,
        data_seed=opts.seed,
        eval_strategy=strategy,
        save_strategy=strategy,
        save_total_limit=1,
        save_only_model=True,
        load_best_model_at_end=best_metric is not None,
        metric_for_best_model=best_metric,
        greater_is_better=True,
        logging_steps=max(1, min(50, approx_steps // 10)),
        report_to="none",
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
        dataloader_pin_memory=device != "cpu",
        push_to_hub=False,
        bf16=use_bf16(opts.precision, device),  # mixed precision: weights stay fp32
    )


def time_budget(seconds: float) -> Any:
    """A transformers callback that ends training after the first step past ``seconds`` of it. The
    learning-rate schedule was planned for every step, so a cut run ends at a higher rate than a full one;
    that is the price of a bounded `finetune` on a CPU."""
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if time.perf_counter() - self.start > seconds:
                logger.warning("time budget of %.0f s reached at step %d of %d; keeping these weights",
                               seconds, state.global_step, state.max_steps)
                control.should_training_stop = True
            return control

    return TimeBudget()


def train_and_save(trainer: Any, out: Path) -> bool:
    """Run ``trainer``; on Ctrl-C keep the current weights. Saves the (best) model to ``out`` in the standard
    folder format and drops the trainer's checkpoint folders. Returns whether training was interrupted."""
    interrupted = False
    try:
        trainer.train()
    except KeyboardInterrupt:
        interrupted = True
        logger.warning("training interrupted at step %d; saving the current weights", trainer.state.global_step)
    try:
        trainer.model.save(str(out))
    except OSError as exc:
        raise ModelError(f"cannot save the model to {out}: {one_line(exc)}") from exc
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    return interrupted


def loss_ends(history: list[dict[str, Any]]) -> dict[str, float]:
    losses = [h["loss"] for h in history if "loss" in h]
    return {"loss_first": float(losses[0]), "loss_last": float(losses[-1])} if losses else {}


def best_eval(history: list[dict[str, Any]], best: float | None, metric: str,
              reported: Mapping[str, str]) -> dict[str, float]:
    """The validation figures of the kept epoch (whose ``metric`` equals ``best``, else the last one), renamed
    by ``reported`` (log key -> our name) so every method's figures read alike (hit@1, mrr@10, ndcg@10)."""
    evals = [h for h in history if metric in h]
    if not evals:
        return {}
    chosen = next((h for h in evals if best is not None and h[metric] == best), evals[-1])
    out = {new: float(chosen[old]) for old, new in reported.items() if old in chosen}
    out["epoch"] = float(chosen.get("epoch", 0.0))
    return out


class Laps:
    """A run's wall time split into named parts: ``lap(name)`` adds the time since the previous lap."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self.last
        self.last = now


@dataclass
class Recipe:
    """What a trainer brings to ``run_trainer``: everything specific to its method."""

    model: Any
    train_data: Any  # a datasets.Dataset in the trainer's column layout
    loss: Any
    evaluator: Any | None  # None: no validation split, the last state is kept
    details: dict[str, Any] = field(default_factory=dict)  # method figures for ``TrainResult.details``


def run_trainer(method: str, base_model: str, opts: TrainSettings, train_pairs: int,
                prepare: Callable[[str, Laps], Recipe], trainer_cls: type, args_cls: type, best_metric: str,
                reported: Mapping[str, str], callbacks: list[Any] | None = None, **extra_args: Any) -> TrainResult:
    """The run shared by the transformers-``Trainer`` methods: ``opts.threads`` torch threads, device, output
    folder and seed; then ``prepare(device, laps)`` builds the method's ``Recipe`` (timing its "load" and
    "mining" laps); then training with epoch-wise validation keeping the best epoch (``best_metric``) when
    there is an evaluator, Ctrl-C keeping the current weights, and the result record. ``extra_args`` go to
    ``args_cls`` beside ``trainer_arguments``; ``reported`` renames the kept epoch's figures."""
    with torch_threads(opts.threads):
        device = resolve_device(opts.device)
        out = prepare_output_dir(opts.output_dir)
        laps = Laps()
        seed_everything(opts.seed)
        recipe = prepare(device, laps)
        metric = best_metric if recipe.evaluator is not None else None
        args = args_cls(**extra_args, **trainer_arguments(opts, out, device, len(recipe.train_data), metric))
        if opts.max_seconds is not None:
            callbacks = [*(callbacks or []), time_budget(opts.max_seconds)]
        trainer = trainer_cls(model=recipe.model, args=args, train_dataset=recipe.train_data, loss=recipe.loss,
                              evaluator=recipe.evaluator, callbacks=callbacks)
        interrupted = train_and_save(trainer, out)
        laps.lap("train")
    state = trainer.state
    best = Path(state.best_model_checkpoint).name if state.best_model_checkpoint else None
    return TrainResult(
        method=method, output_dir=out, base=base_model, steps=state.global_step,
        seconds=time.perf_counter() - laps.start, train_pairs=train_pairs,
        val_metrics=best_eval(state.log_history, state.best_metric, best_metric, reported),
        best_checkpoint=None if interrupted else best, interrupted=interrupted,
        details={**recipe.details, **{f"{name}_seconds": round(sec, 2) for name, sec in laps.seconds.items()},
                 **loss_ends(state.log_history)},
    )
