"""A workspace, and cheap views of it under one model configuration each.

``Workspace`` holds what every view shares: settings, the catalog rows (SQLite), the Chroma client, the
model registry and the BM25 cache. ``RouterView`` is the router as one combination of embedder version and
reranker sees the workspace: its embedders, its catalog vectors, its retriever. Evaluation compares
versions side by side and training needs the base model's view; making a view loads its models on first
use and opens no store again.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from agentic_router.indexes.atomic import atomic_write_json
from agentic_router.indexes.config import RouterConfig
from agentic_router.indexes.encoders.embeddings import load_embedder, model_tag
from agentic_router.indexes.errors import ConfigError, InputError, ModelError
from agentic_router.indexes.lexical.cache import LexicalCache, default_stopwords
from agentic_router.indexes.schema import RouteHit, ToolSpec, stable_hash
from agentic_router.indexes.storage.catalog import Catalog
from agentic_router.indexes.storage.catalog_db import ROUTING_WEIGHTS, CatalogDB, SQLiteCatalogDB
from agentic_router.indexes.storage.chroma import chroma_client
from agentic_router.indexes.storage.postgres import PostgresCatalogDB
from agentic_router.router.retrieval.batching import BatchedQueryEmbedding
from agentic_router.router.retrieval.fit import BackgroundFit, request_fit
from agentic_router.router.retrieval.rerank import ALONE, DEFAULT_WEIGHT, FusionWeight, rerank_hits
from agentic_router.router.retrieval.retriever import ToolRetriever
from agentic_router.router.retrieval.scoring import Weights, fit
from agentic_router.router.versions.models import load_adapter_embedding, load_reranker
from agentic_router.router.versions.registry import BASE, ModelRegistry, ModelVersion

if TYPE_CHECKING:
    import numpy as np
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from sentence_transformers import CrossEncoder

    from agentic_router.indexes.encoders.embeddings import SentenceEmbedding

ACTIVE = "active"


class Workspace:
    """Settings, catalog, Chroma client, registry and BM25 cache of one workspace folder."""

    def __init__(self, config: RouterConfig) -> None:
        self.config = config
        config.workspace.mkdir(parents=True, exist_ok=True)
        self.lexical = LexicalCache(config.workspace / "lexical", default_stopwords())
        self._catalogs: dict[str, Catalog] = {}
        self._views: dict[tuple[Any, ...], RouterView] = {}
        self._lock = threading.Lock()

    @cached_property
    def db(self) -> CatalogDB:
        """The catalog rows: the workspace's SQLite file, or with ``state_url`` the PostgreSQL database every
        replica shares."""
        cfg = self.config
        if cfg.state_url:
            return PostgresCatalogDB(cfg.state_url, poll_seconds=cfg.state_poll_seconds)
        return SQLiteCatalogDB(cfg.catalog_path)

    @cached_property
    def client(self) -> Any:  # chromadb ClientAPI
        return chroma_client(self.config.chroma_url or self.config.chroma_dir)

    @cached_property
    def registry(self) -> ModelRegistry:
        """Trained versions in ``models_dir``; which one is active is kept with the catalog rows when they are
        shared, so every replica switches together."""
        return ModelRegistry(self.config.models_dir, self.db if self.config.shared else None)

    def catalog(self, tag: str, query_tag: str | None = None) -> Catalog:
        """The catalog seen through the vectors of the embedder named by ``tag`` (and, for recorded
        requests, of the question embedder named by ``query_tag``)."""
        key = f"{tag}|{query_tag or tag}"
        with self._lock:
            if key not in self._catalogs:
                self._catalogs[key] = Catalog(self.db, self.client, tag, query_tag)
            return self._catalogs[key]

    def view(self, embedder: str | None = ACTIVE, reranker: str | None = ACTIVE,
             weights: Weights | None = None) -> "RouterView":
        """A view under ``embedder``/``reranker`` (a registry name, None or ``"base"`` for the base model,
        ``"active"`` for what ``models activate`` chose); the same arguments give the same view."""
        active = self.registry.active()
        emb = active["embedder"] if embedder == ACTIVE else embedder
        rer = active["reranker"] if reranker == ACTIVE else reranker
        emb = None if emb == BASE else emb
        rer = None if rer == BASE else rer
        weights = weights or self.routing_weights()
        key = (emb, rer, weights)
        with self._lock:
            if key not in self._views:
                self._views[key] = RouterView(self, emb, rer, weights)
            return self._views[key]

    @property
    def weights_path(self) -> Path:
        return self.config.workspace / ROUTING_WEIGHTS

    def routing_weights(self) -> Weights:
        """The weights chosen for this catalog on its labelled requests (``calibrate``), else the
        configured ones."""
        cfg = self.config
        configured = Weights(**{name: getattr(cfg, name) for name in Weights.__dataclass_fields__})
        try:
            if self.config.shared:
                saved = self.db.get_setting(ROUTING_WEIGHTS)
            elif self.weights_path.is_file():
                saved = json.loads(self.weights_path.read_text(encoding="utf-8"))
            else:
                saved = None
            if saved is None:
                return configured
            chosen = dict(saved["weights"])
            if saved.get("level") == "tool" and "tool_lexical_weight" not in chosen and "lexical_weight" in chosen:
                # chosen before tool cards had their own weight: at tool level it was the cards' weight
                chosen["tool_lexical_weight"] = chosen.pop("lexical_weight")
            return replace(configured, **{k: v for k, v in chosen.items() if k in Weights.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            where = f"the shared setting {ROUTING_WEIGHTS}" if self.config.shared else str(self.weights_path)
            raise ConfigError(f"{where} is unreadable ({exc}); run calibrate again or delete it") from exc

    def save_routing(self, record: dict[str, Any] | None) -> None:
        """Keep the weights chosen for this catalog (``{"weights": {...}, ...}``) where every view, and with
        a shared catalog every replica, reads them."""
        if self.config.shared:
            self.db.set_setting(ROUTING_WEIGHTS, record)
        elif record is None:
            self.weights_path.unlink(missing_ok=True)
        else:
            atomic_write_json(self.weights_path, record)

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.close()


class RouterView:
    """The router under one embedder version and one reranker (each may be None: the base model, no
    reranker). Models load on first use."""

    def __init__(self, workspace: Workspace, embedder_version: str | None, reranker_version: str | None,
                 weights: Weights) -> None:
        self.workspace = workspace
        self.embedder_version = embedder_version
        self.reranker_version = reranker_version
        self.weights = weights

    @property
    def config(self) -> RouterConfig:
        return self.workspace.config

    @property
    def registry(self) -> ModelRegistry:
        return self.workspace.registry

    @cached_property
    def _versions(self) -> tuple[str, ModelVersion | None]:
        """(document-side model name or path, the adapter version or None)."""
        if self.embedder_version is None:
            return self.config.embed_model, None
        version = self.registry.get(self.embedder_version)
        if version.method == "full":
            return str(self.registry.model_path(version)), None
        if version.method == "adapter":
            return self.config.embed_model, version
        raise ModelError(f"model {version.name!r} is a {version.method}, not an embedder")

    @cached_property
    def embedder(self) -> "SentenceEmbedding":
        """Embeds documents and tool cards (the base model, or a full fine-tune)."""
        return load_embedder(self.config, model=self._versions[0])

    @cached_property
    def query_embedder(self) -> "BaseEmbedding":
        """Embeds questions: the document-side embedder, behind the adapter if this view has one."""
        adapter = self._versions[1]
        if adapter is None:
            return self.embedder
        return load_adapter_embedding(self.embedder, self.registry.model_path(adapter), adapter.checkpoint)

    @cached_property
    def reranker(self) -> "CrossEncoder | None":
        if self.reranker_version is None:
            return None
        version = self.registry.get(self.reranker_version)
        if version.method != "cross-encoder":
            raise ModelError(f"model {version.name!r} is a {version.method}, not a cross-encoder")
        return load_reranker(self.registry.model_path(version))

    @cached_property
    def reranker_weight(self) -> FusionWeight:
        """How much the reranker's score adds to the router's (chosen on held-out questions when it was
        trained; ``ALONE``: its order alone). See ``router.retrieval.rerank``."""
        if self.reranker_version is None:
            return DEFAULT_WEIGHT
        fusion = self.registry.get(self.reranker_version).figures.get("fusion") or {}
        weight = fusion.get("weight", DEFAULT_WEIGHT)
        return ALONE if weight is None or weight == ALONE else float(weight)  # versions before the name stored None

    @cached_property
    def tag(self) -> str:
        # Collections are named after the version, not its path: the same workspace reached through another
        # path (relative, absolute, moved) must find the same vectors. Adapters share the base vectors.
        if self._versions[1] is None and self.embedder_version is not None:
            return model_tag(f"version:{self.embedder_version}")
        return model_tag(self.config.embed_model)

    @cached_property
    def query_tag(self) -> str:
        """Names the question embedder: the document embedder's tag, plus the adapter when there is one."""
        adapter = self._versions[1]
        return self.tag if adapter is None else model_tag(f"version:{self.embedder_version}-q")

    @cached_property
    def catalog(self) -> Catalog:
        return self.workspace.catalog(self.tag, self.query_tag)

    @cached_property
    def retriever(self) -> ToolRetriever:
        embedder = self.query_embedder
        if self.config.query_batch_ms > 0:  # a service: concurrent questions share encoder calls
            embedder = BatchedQueryEmbedding(embedder, self.config.query_batch_ms)
        return ToolRetriever(self.catalog, embedder, self.weights, lexical=self.workspace.lexical,
                             top_k=self.config.top_k, chunk_candidates=self.config.chunk_candidates)

    def list_tools(self, kind: str | None = None) -> list[ToolSpec]:
        return self.catalog.list_tools(kind)

    @cached_property
    def background(self) -> BackgroundFit:
        return BackgroundFit(self)

    def abstains(self, hits: list[RouteHit]) -> bool:
        """True when no tool fits: nothing was found, or the best tool fits less than ``abstain_below``
        (calibrated on labelled requests). Without it, an application tool must fit better than
        ``abstain_quantile`` of the background requests (``router.retrieval.fit``); a document tool is not judged by
        default, because on COVID-QA that rule abstained on answerable questions (docs/benchmarks.md)."""
        if not hits:
            return True
        if self.weights.abstain_below > 0:
            return fit(hits) < self.weights.abstain_below
        if hits[0].kind != "external":
            return False
        return request_fit(hits) < self.background.threshold(self.weights.abstain_quantile)

    def rank_many(self, queries: Sequence[str], qvecs: np.ndarray, k: int | None = None) -> list[list[RouteHit]]:
        """``rank`` (without a reranker) for questions encoded together."""
        return self.retriever.rank_tools_many(queries, qvecs, k or self.config.top_k)

    def rank(self, query: str, k: int | None = None, rerank: int | None = None,
             qvec: np.ndarray | None = None) -> list[RouteHit]:
        """Rank tools; with ``rerank=N`` the router's top N are reordered by this view's cross-encoder.
        ``qvec``: the question's vector when the caller encoded many questions in one batch (evaluation)."""
        k = k or self.config.top_k
        if not rerank:
            return self.retriever.rank_tools(query, k, qvec=qvec)
        if self.reranker is None:
            raise InputError("no cross-encoder is active: train one (train --method cross-encoder) and activate it")
        hits = self.retriever.rank_tools(query, max(rerank, k), qvec=qvec)
        return (rerank_hits(self.reranker, query, hits[:rerank], self.reranker_weight) + hits[rerank:])[:k]
