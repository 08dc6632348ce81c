"""``AgenticRouter``: the product's Python API. The CLI (and later the HTTP service) are thin layers on it.

It owns one workspace: the catalog (SQLite + Chroma), the per-document index folders, cached models.
Heavy parts (embedder, LLM, Chroma) are created on first use, so listing tools does not load a model.
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from agentic_router.indexes.catalog import ToolCatalog, check_unique
from agentic_router.indexes.config import RouterConfig
from agentic_router.indexes.errors import CatalogError, InputError
from agentic_router.indexes.schema import IngestReport, RouteHit, ToolSpec

if TYPE_CHECKING:
    from llama_index.core.llms import LLM
    from llama_index.core.objects import ObjectRetriever
    from llama_index.core.tools import BaseTool

    from agentic_router.indexes.build import DocumentIndexer
    from agentic_router.indexes.documents import SourceDocument
    from agentic_router.indexes.tools import ToolFactory
    from agentic_router.router.agent import AgentResult
    from agentic_router.indexes.lexical import LexicalCache
    from agentic_router.router.retriever import ToolRetriever

logger = logging.getLogger(__name__)
_UNSET = object()
ACTIVE = "active"


class AgenticRouter:
    """Documents and tools in, routed tools and answers out."""

    def __init__(
        self,
        config: RouterConfig,
        llm: "LLM | None | object" = _UNSET,
        embedder_version: str | None = ACTIVE,
        reranker_version: str | None = ACTIVE,
    ) -> None:
        """``embedder_version``/``reranker_version``: a registry name, None for the base model, or
        ``"active"`` for whatever ``models activate`` chose (evaluation compares versions side by side)."""
        from agentic_router.router.registry import ModelRegistry

        self.config = config
        self._llm = llm
        config.workspace.mkdir(parents=True, exist_ok=True)
        self.registry = ModelRegistry(config.models_dir)
        active = self.registry.active()
        self.embedder_version = active["embedder"] if embedder_version == ACTIVE else embedder_version
        self.reranker_version = active["reranker"] if reranker_version == ACTIVE else reranker_version
        if self.embedder_version == "base":
            self.embedder_version = None
        if self.reranker_version == "base":
            self.reranker_version = None

    @classmethod
    def open(cls, workspace: str | Path | None = None, **overrides: Any) -> "AgenticRouter":
        return cls(RouterConfig.load(workspace, **overrides))

    # ---- parts (lazy) ------------------------------------------------------------------------------
    @cached_property
    def _embedder_spec(self) -> tuple[str, "Any"]:
        """(document-side model name or path, the adapter version or None)."""
        if self.embedder_version is None:
            return self.config.embed_model, None
        version = self.registry.get(self.embedder_version)
        if version.method == "full":
            return str(self.registry.model_path(version)), None
        if version.method == "adapter":
            return self.config.embed_model, version
        raise InputError(f"model {version.name!r} is a {version.method}, not an embedder")

    @cached_property
    def embedder(self):  # noqa: ANN201 - HuggingFaceEmbedding, imported lazily
        """Embeds documents and tool cards (the base model, or a full fine-tune)."""
        from agentic_router.indexes.embeddings import load_embedder

        return load_embedder(self.config, model=self._embedder_spec[0])

    @cached_property
    def query_embedder(self):  # noqa: ANN201 - a LlamaIndex BaseEmbedding
        """Embeds questions: the document-side embedder, behind the active adapter if there is one."""
        adapter = self._embedder_spec[1]
        if adapter is None:
            return self.embedder
        from agentic_router.training.trainers.adapter import load_adapter_embedding

        return load_adapter_embedding(self.embedder, self.registry.model_path(adapter), adapter.checkpoint)

    @cached_property
    def reranker(self):  # noqa: ANN201 - sentence_transformers CrossEncoder or None
        if self.reranker_version is None:
            return None
        version = self.registry.get(self.reranker_version)
        if version.method != "cross-encoder":
            raise InputError(f"model {version.name!r} is a {version.method}, not a cross-encoder")
        from agentic_router.training.trainers.cross_encoder import load_reranker

        return load_reranker(self.registry.model_path(version))

    @cached_property
    def reranker_weight(self) -> float | None:
        """How much the reranker's probability adds to the router's score (chosen on held-out questions
        when it was trained; ``None`` = its order alone). See ``router.rerank``."""
        from agentic_router.router.rerank import DEFAULT_WEIGHT

        if self.reranker_version is None:
            return None
        fusion = self.registry.get(self.reranker_version).figures.get("fusion") or {}
        return fusion["weight"] if "weight" in fusion else DEFAULT_WEIGHT

    @property
    def llm(self) -> "LLM | None":
        if self._llm is _UNSET:
            from agentic_router.router.llms import load_llm

            self._llm = load_llm(self.config)
        return self._llm  # type: ignore[return-value]

    @cached_property
    def _tag(self) -> str:
        from agentic_router.indexes.embeddings import model_tag

        # Name collections after the version, not its path: the same workspace reached through another
        # path (relative, absolute, moved) must find the same vectors.
        if self._embedder_spec[1] is None and self.embedder_version is not None:
            return model_tag(f"version:{self.embedder_version}")
        return model_tag(self.config.embed_model)

    @cached_property
    def catalog(self) -> ToolCatalog:
        from agentic_router.indexes.store import chroma_client

        return ToolCatalog(self.config.catalog_path, chroma_client(self.config.chroma_dir), f"tools__{self._tag}")

    @cached_property
    def chunks(self):  # noqa: ANN201 - chromadb Collection
        from agentic_router.indexes.store import collection

        return collection(self.catalog.client, f"chunks__{self._tag}")

    @cached_property
    def indexer(self) -> "DocumentIndexer":
        from agentic_router.indexes.build import DocumentIndexer
        from agentic_router.router.llms import is_capable

        capable = is_capable(self.config)
        return DocumentIndexer(
            self.config, self.embedder, self.catalog, self.chunks.name,
            llm=self.llm if capable else None, llm_summaries=capable,
        )

    @cached_property
    def retriever(self) -> "ToolRetriever":
        from agentic_router.router.retriever import ToolRetriever

        return ToolRetriever(
            self.catalog, self.query_embedder, self.chunks,
            top_k=self.config.top_k, card_weight=self.config.card_weight,
            chunk_candidates=self.config.chunk_candidates, kind_bonus=self.config.kind_bonus,
            lexical=self.lexical, lexical_weight=self.config.lexical_weight,
        )

    @cached_property
    def lexical(self) -> "LexicalCache":
        from agentic_router.indexes.lexical import LexicalCache, default_stopwords

        return LexicalCache(self.config.workspace / "lexical", default_stopwords())

    @cached_property
    def tool_factory(self) -> "ToolFactory":
        from llama_index.vector_stores.chroma import ChromaVectorStore

        from agentic_router.indexes.tools import ToolFactory

        def storage_of(doc_id: str) -> str | None:
            doc = self.catalog.get_document(doc_id)
            return doc["storage"] if doc else None

        return ToolFactory(
            self.config.docs_dir, storage_of, ChromaVectorStore(chroma_collection=self.chunks), self.query_embedder,
            self.llm,
        )

    # ---- catalog -----------------------------------------------------------------------------------
    def ingest(
        self, sources: Iterable[str | Path] | Sequence["SourceDocument"], replace: bool = False, progress: bool = False
    ) -> IngestReport:
        """Index files/folders/JSONL (or ``SourceDocument``s) into three tools per document."""
        from agentic_router.indexes.documents import SourceDocument, load_paths

        items = list(sources)
        docs = items if items and all(isinstance(d, SourceDocument) for d in items) else load_paths(items)  # type: ignore[arg-type]
        return self.indexer.ingest(docs, replace=replace, progress=progress)  # type: ignore[arg-type]

    def add_tools(self, specs_or_path: str | Path | Sequence[ToolSpec], replace: bool = False) -> IngestReport:
        """Register external tools atomically: all rows of a catalog file, or none."""
        from agentic_router.indexes.embeddings import embed_texts
        from agentic_router.indexes.external import load_tool_catalog

        specs = load_tool_catalog(specs_or_path) if isinstance(specs_or_path, (str, Path)) else list(specs_or_path)
        check_unique(specs)
        known = self.catalog.get_tools([s.name for s in specs])
        report, todo = IngestReport(), []
        for spec in specs:
            old = known.get(spec.name)
            if old is None:
                todo.append(spec)
                report.added.append(spec.name)
            elif old.tool_id == spec.tool_id:
                report.unchanged.append(spec.name)
            elif old.kind != "external":
                raise CatalogError(f"tool name {spec.name!r} belongs to document {old.doc_id!r}; rename the tool")
            elif not replace:
                raise CatalogError(f"tool {spec.name!r} is already registered with another description; use --replace")
            else:
                todo.append(spec)
                report.replaced.append(spec.name)
        if todo:
            vectors = embed_texts(self.embedder, [s.card() for s in todo], show_progress=len(todo) > 256)
            self.catalog.upsert_cards(todo, vectors)
            with self.catalog.transaction() as db:
                self.catalog.write_tools(db, todo)
        report.tools = len(todo)
        return report

    def register_tool(self, tool: "BaseTool", replace: bool = True) -> None:
        """Make a Python tool routable and callable: its metadata goes in the catalog, the object in memory."""
        meta = tool.metadata
        params = meta.get_parameters_dict() if meta.fn_schema is not None else None
        spec = ToolSpec(name=meta.get_name(), description=meta.description, kind="external", parameters=params)
        self.add_tools([spec], replace=replace)
        self.tool_factory.registered[spec.name] = tool

    def list_tools(self, kind: str | None = None) -> list[ToolSpec]:
        return self.catalog.list_tools(kind)

    # ---- routing and answering ---------------------------------------------------------------------
    def route(self, query: str, k: int | None = None, rerank: int | None = None) -> list[RouteHit]:
        """Rank tools; with ``rerank=N`` the router's top N are reordered by the active cross-encoder."""
        k = k or self.config.top_k
        if not rerank:
            return self.retriever.route(query, k)
        if self.reranker is None:
            raise InputError("no cross-encoder is active: train one (train --method cross-encoder) and activate it")
        from agentic_router.router.rerank import rerank_hits

        hits = self.retriever.route(query, max(rerank, k))
        return (rerank_hits(self.reranker, query, hits[:rerank], self.reranker_weight) + hits[rerank:])[:k]

    def tools_for(self, hits: Sequence[RouteHit]) -> list["BaseTool"]:
        specs = self.catalog.get_tools([h.name for h in hits])
        return [self.tool_factory.build(specs[h.name]) for h in hits if h.name in specs]

    def object_retriever(self, k: int | None = None) -> "ObjectRetriever":
        """The router as LlamaIndex's ``ObjectRetriever`` for ``tool_retriever=`` of any workflow agent."""
        from agentic_router.router.objects import CatalogToolRetriever

        return CatalogToolRetriever(self, k or self.config.top_k)

    def query(self, question: str, mode: str | None = None, k: int | None = None) -> "AgentResult":
        from agentic_router.router.agent import MODES, default_mode, run_agent, run_direct
        from agentic_router.router.retriever import check_query

        question = check_query(question)
        mode = mode or default_mode(self.config.llm_provider)
        if mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        hits = self.route(question, k)
        if mode == "agent":
            if self.llm is None:
                raise InputError("agent mode needs an LLM; use --mode direct or configure llm_provider")
            return run_agent(question, self.llm, self.object_retriever(k), [h.name for h in hits])
        return run_direct(question, hits, self.tools_for(hits))

    def close(self) -> None:
        if "catalog" in self.__dict__:
            self.catalog.close()
