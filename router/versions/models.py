"""Loading trained models for serving: files in the registry's format in, models out.

Training writes versions (``training.trainers``); serving only reads them, through this module, so the
router never imports a trainer. Formats:
- ``full``: a sentence-transformers folder; it embeds documents and questions alike.
- ``adapter``: a LlamaIndex adapter folder (``config.json`` + ``pytorch_model.bin``, plus
  ``adapter_config.json`` with its kind) and optional ``step_N/`` checkpoints; it maps question vectors only.
- ``cross-encoder``: a sentence-transformers ``CrossEncoder`` folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from agentic_router.indexes.encoders.embeddings import resolve_device
from agentic_router.indexes.errors import InputError, ModelError

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.embeddings.adapter import AdapterEmbeddingModel
    from sentence_transformers import CrossEncoder

ADAPTER_CONFIG = "adapter_config.json"
_STEP = re.compile(r"^step_(\d+)$")


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def adapter_checkpoints(root: Path) -> dict[str, Path]:
    """``{"step_N": folder}`` in step order."""
    if not root.is_dir():
        return {}
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP.match(p.name)) and p.is_dir()]
    return {p.name: p for _, p in sorted(found)}


def load_adapter_embedding(base_embed_model: "BaseEmbedding", adapter_dir: str | Path,
                           checkpoint: str | None = None) -> "AdapterEmbeddingModel":
    """``AdapterEmbeddingModel`` over ``base_embed_model`` with the adapter in ``adapter_dir`` (the kept one)
    or its ``checkpoint`` (e.g. ``"step_900"``).

    Raises ``InputError`` for an unknown checkpoint (listing the available ones) and ``ModelError`` for a
    missing or corrupt adapter or one trained for another embedding size.
    """
    from llama_index.embeddings.adapter import AdapterEmbeddingModel
    from llama_index.embeddings.adapter.utils import LinearLayer, TwoLayerNN

    root = Path(adapter_dir)
    if not (root / "config.json").is_file() and not adapter_checkpoints(root):
        raise ModelError(f"no adapter in {root}")
    path = root
    if checkpoint not in (None, "", "final"):
        available = adapter_checkpoints(root)
        if checkpoint not in available:
            names = ", ".join(["final", *available]) if (root / "config.json").is_file() else ", ".join(available)
            raise InputError(f"unknown checkpoint {checkpoint!r} in {root} (available: {names or 'none'})")
        path = available[checkpoint]
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        meta_file = path / ADAPTER_CONFIG
        meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
        if not isinstance(config, dict) or not isinstance(meta, dict) or "in_features" not in config:
            raise ValueError("config.json lacks in_features")
        kind = meta.get("kind") or ("two-layer" if "hidden_features" in config else "linear")
        cls = TwoLayerNN if kind == "two-layer" else LinearLayer
        in_dim, out_dim = int(config["in_features"]), int(config["out_features"])
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ModelError(f"corrupt adapter checkpoint {path}: {one_line(exc)}") from exc
    base_dim = embedding_dimension(base_embed_model)
    if in_dim != base_dim:
        raise ModelError(f"adapter expects {in_dim}-dim embeddings, base model gives {base_dim}")
    if out_dim != base_dim:
        raise ModelError(f"adapter makes {out_dim}-dim query vectors, documents are {base_dim}-dim")
    try:
        return AdapterEmbeddingModel(base_embed_model, str(path), adapter_cls=cls, device=resolve_device("auto"),
                                     embed_batch_size=getattr(base_embed_model, "embed_batch_size", 10))
    except Exception as exc:  # noqa: BLE001 - unpickling/state-dict errors all mean a broken file
        raise ModelError(f"corrupt adapter checkpoint {path}: {one_line(exc)}") from exc


def embedding_dimension(embed_model: "BaseEmbedding") -> int:
    """The model's vector size: asked of the model when it can tell, else measured on one text."""
    model = getattr(embed_model, "model", None)  # ``SentenceEmbedding`` exposes its SentenceTransformer
    for attr in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
        if model is not None and hasattr(model, attr):
            dim = getattr(model, attr)()
            if dim:
                return int(dim)
    return len(embed_model.get_text_embedding("dimension probe"))


def load_reranker(path: str | Path) -> "CrossEncoder":
    """Load a trained reranker; a missing folder, a bi-encoder folder or corrupt weights are ``ModelError``s."""
    from sentence_transformers import CrossEncoder

    folder = Path(path)
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise ModelError(f"no reranker in {folder}")
    st_config = folder / "config_sentence_transformers.json"
    try:
        kind = json.loads(st_config.read_text(encoding="utf-8")).get("model_type") if st_config.is_file() else None
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise ModelError(f"corrupt reranker checkpoint {folder}: {one_line(exc)}") from exc
    if kind not in (None, "CrossEncoder") or kind is None and (folder / "modules.json").is_file():
        raise ModelError(f"{folder} holds a {kind or 'SentenceTransformer'} model, not a trained reranker")
    try:
        return CrossEncoder(str(folder), device=resolve_device("auto"))
    except Exception as exc:  # noqa: BLE001 - unreadable weights/config all mean a broken checkpoint
        raise ModelError(f"corrupt reranker checkpoint {folder}: {one_line(exc)}") from exc
