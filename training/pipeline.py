"""Train a version, register it, and activate it only when real queries say it is not worse.

A validation split cut from generated questions improves while accuracy on real questions can fall (seen
on Seal-Tools: hit@1 0.538 → 0.491 after one epoch on generated requests). So activation is guarded by
real labelled questions whenever any exist: the data set's logged validation split, or ``check_queries``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentic_router.indexes.encoders.embeddings import resolve_model_path
from agentic_router.indexes.errors import InputError
from agentic_router.router.activation import activate
from agentic_router.router.versions.models import load_reranker
from agentic_router.router.versions.registry import ModelVersion
from agentic_router.training.corpus import add_catalog_texts, stored_vectors
from agentic_router.training.dataset import RoutingDataset
from agentic_router.training.evaluate import LabelledQuery, load_queries
from agentic_router.training.fusion import DEPTH as FUSION_DEPTH
from agentic_router.training.fusion import calibrate_fusion
from agentic_router.training.report import build_systems, run_systems
from agentic_router.training.trainers.adapter import train_adapter
from agentic_router.training.trainers.common import TrainSettings
from agentic_router.training.trainers.cross_encoder import train_cross_encoder
from agentic_router.training.trainers.full import train_full

if TYPE_CHECKING:
    from agentic_router.router.workspace import RouterView

logger = logging.getLogger(__name__)
SYNTHETIC_WARNING = (
    "validation questions are generated, not real: they cannot show a loss on real queries; "
    "check with `eval --queries REAL.jsonl --compare active,NAME` before relying on this version"
)


def train_version(
    view: "RouterView", method: str, dataset_path: Path, name: str | None = None,
    adapter_kind: str = "two-layer", init_model: str | Path | None = None, **settings: Any,
) -> ModelVersion:
    """Train ``method`` on the data set and register the result under ``name``. ``init_model``: the
    cross-encoder's starting weights (default the embedder's, with a fresh head); the embedder still mines
    its negatives."""

    if init_model is not None and not Path(init_model).is_dir():
        raise InputError(f"no model folder at {init_model}")
    dataset = RoutingDataset.load(dataset_path)
    base_view = view.workspace.view(None, None)
    corpus_counts = add_catalog_texts(base_view, dataset, seed=view.config.seed)
    name = name or f"{method}-{time.strftime('%Y%m%d-%H%M%S')}"
    out_dir = view.registry.new_dir(name)
    base = resolve_model_path(view.config.embed_model)
    opts = TrainSettings(output_dir=out_dir, seed=view.config.seed, device=view.config.device,
                         **{k: v for k, v in settings.items() if v is not None})
    if method == "full":

        result = train_full(dataset, base, opts)
    elif method == "adapter":

        result = train_adapter(dataset, base, opts, kind=adapter_kind, text_vectors=stored_vectors(base_view, dataset))
    elif method == "cross-encoder":

        result = train_cross_encoder(dataset, str(init_model) if init_model else base, opts, miner_model=base)
    else:
        raise InputError(f"unknown method {method!r}; choose full, adapter or cross-encoder")
    figures = result.to_dict()
    figures["corpus"] = corpus_counts
    if method == "cross-encoder":

        figures["fusion"] = calibrate_fusion(base_view, load_reranker(out_dir), heldout_queries(base_view, dataset),
                                             progress=True)
    if not dataset.has_real_validation():
        figures["warning"] = SYNTHETIC_WARNING
    version = ModelVersion(
        name=name, method=method, base=view.config.embed_model, path=name, dataset_hash=dataset.content_hash(),
        figures=figures, validation=dict(result.val_metrics or {}),
        checkpoint=None,
    )
    return view.registry.register(version)


def guarded_activate(
    view: "RouterView", name: str, check_queries: Path | None = None, dataset_path: Path | None = None,
    tolerance: float = 0.0, level: str | None = None,
) -> dict[str, Any]:
    """Activate ``name`` unless real labelled questions show it routes worse than the active version."""

    queries: list[LabelledQuery] = []
    if check_queries is not None:
        queries = load_queries(check_queries)
    elif dataset_path is not None:
        ds = RoutingDataset.load(dataset_path)
        if ds.has_real_validation():
            queries = heldout_queries(view, ds)
    if not queries:
        logger.warning("no real labelled questions to check against: %s", SYNTHETIC_WARNING)
        return {"activated": True, "checked": False, "warning": SYNTHETIC_WARNING, **activate(view.workspace, name)}
    level = level or "document"  # document level ranks external tools by name, so it fits mixed catalogs
    current = "active" if view.embedder_version or view.reranker_version else "base"
    version = view.registry.get(name)
    systems = build_systems(view, [current, name], rerank=FUSION_DEPTH if version.method == "cross-encoder" else None,
                            reranker=name if version.method == "cross-encoder" else None)
    systems = [s for s in systems if s.name in (current, name)]
    results = run_systems(systems, queries, level)
    before, after = results[current]["hit@1"], results[name]["hit@1"]
    outcome = {"checked": True, "n": len(queries), "hit@1_before": before, "hit@1_after": after}
    if after + tolerance < before:
        return {"activated": False, **outcome,
                "reason": f"{name} routes worse on real questions (hit@1 {after:.3f} < {before:.3f}); kept {current}"}
    return {"activated": True, **outcome, **activate(view.workspace, name)}


def heldout_queries(view: "RouterView", ds: RoutingDataset) -> list["LabelledQuery"]:
    """The data set's val split as labelled questions at document level: a document tool counts by its
    document (any of its three tools answers the question), an external tool by its name."""

    names = sorted({t for q in ds.qids("val") for t in ds.relevant_docs.get(q, [])})
    specs = view.catalog.get_tools(names)
    out = []
    for q in ds.qids("val"):
        gold = tuple(sorted({specs[t].doc_id or t if t in specs else t for t in ds.relevant_docs.get(q, [])}))
        if gold:
            out.append(LabelledQuery(q, ds.queries[q], gold))
    return out


def calibrate_version(view: "RouterView", name: str, dataset_path: Path | None = None,
                      queries_path: Path | None = None) -> dict[str, Any]:
    """Choose a trained reranker's fusion weight again, on the data set's held-out questions or on a file
    of labelled questions (e.g. fresh query logs), and store it with the version."""

    version = view.registry.get(name)
    if version.method != "cross-encoder":
        raise InputError(f"model {name!r} is a {version.method}; only a cross-encoder has a fusion weight")
    if (dataset_path is None) == (queries_path is None):
        raise InputError("give exactly one of a data set (its held-out questions) or a labelled queries file")
    base_view = view.workspace.view(None, None)
    if queries_path is not None:
        queries = load_queries(queries_path)
    else:
        assert dataset_path is not None  # exactly one of the two, checked above
        queries = heldout_queries(base_view, RoutingDataset.load(dataset_path))
    if not queries:
        raise InputError("no labelled questions to calibrate on (the data set has no held-out split)")
    fusion = calibrate_fusion(base_view, load_reranker(view.registry.model_path(version)), queries, progress=True)
    version.figures["fusion"] = fusion
    view.registry.register(version)
    return fusion
