"""Turning catalog entries into callable LlamaIndex tools.

Tools are built on demand: the catalog may hold a million tools, the agent only ever sees the handful the
router offered, and a tool's index is only loaded when the agent actually calls it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.response.schema import Response
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index.core.tools import FunctionTool, QueryEngineTool, ToolMetadata

from agentic_router.indexes.schema import ToolSpec

if TYPE_CHECKING:
    from llama_index.core.llms import LLM
    from llama_index.core.tools import BaseTool
    from llama_index.core.vector_stores.types import BasePydanticVectorStore
    from llama_index.core.base.embeddings.base import BaseEmbedding

SUMMARY_NODES = 6
PASSAGES = 4


class PassageQueryEngine(BaseQueryEngine):
    """Answers with the retrieved passages themselves: the engine used when no LLM is configured."""

    def __init__(self, retriever: "BaseRetriever", max_chars: int = 1600) -> None:
        super().__init__(callback_manager=None)
        self._retriever = retriever
        self._max_chars = max_chars

    def _get_prompt_modules(self) -> dict[str, Any]:
        return {}

    def _query(self, query_bundle: QueryBundle) -> Response:
        nodes = self._retriever.retrieve(query_bundle)
        return Response(response=format_passages(nodes, self._max_chars), source_nodes=nodes)

    async def _aquery(self, query_bundle: QueryBundle) -> Response:
        nodes = await self._retriever.aretrieve(query_bundle)
        return Response(response=format_passages(nodes, self._max_chars), source_nodes=nodes)


class LazyQueryEngine(BaseQueryEngine):
    """Builds the real engine on the first query, so offering a tool to the agent costs nothing."""

    def __init__(self, factory: Callable[[], BaseQueryEngine]) -> None:
        super().__init__(callback_manager=None)
        self._factory = factory
        self._engine: BaseQueryEngine | None = None

    @property
    def engine(self) -> BaseQueryEngine:
        if self._engine is None:
            self._engine = self._factory()
        return self._engine

    def _get_prompt_modules(self) -> dict[str, Any]:
        return {}

    def _query(self, query_bundle: QueryBundle) -> Any:
        return self.engine.query(query_bundle)

    async def _aquery(self, query_bundle: QueryBundle) -> Any:
        return await self.engine.aquery(query_bundle)


def format_passages(nodes: list[NodeWithScore], max_chars: int) -> str:
    if not nodes:
        return "No passage found."
    parts, used = [], 0
    for nws in nodes:
        text = " ".join(nws.node.get_content().split())
        room = max_chars - used
        if room <= 80:
            break
        parts.append(text[:room])
        used += len(parts[-1])
    return "\n---\n".join(parts)


class ToolFactory:
    """Builds a ``BaseTool`` for any catalog entry; application tools registered in Python take precedence."""

    def __init__(
        self,
        docs_dir: Path,
        storage_of: Callable[[str], str | None],
        vector_store: "BasePydanticVectorStore",
        embedder: "BaseEmbedding",
        llm: "LLM | None",
    ) -> None:
        self.docs_dir = docs_dir
        self.storage_of = storage_of
        self.vector_store = vector_store
        self.embedder = embedder
        self.llm = llm
        self.registered: dict[str, "BaseTool"] = {}
        # Set by the router: the tool that calls an external tool's real executor (an MCP server), or None.
        self.remote_tool: Callable[[ToolSpec], "BaseTool | None"] | None = None

    def build(self, spec: ToolSpec) -> "BaseTool":
        if spec.name in self.registered:
            return self.registered[spec.name]
        metadata = ToolMetadata(name=spec.name, description=spec.description)
        if spec.kind == "external":
            remote = self.remote_tool(spec) if self.remote_tool is not None else None
            return remote or _external_tool(spec)
        engine = LazyQueryEngine(lambda: self._engine(spec))
        return QueryEngineTool(query_engine=engine, metadata=metadata)

    def retriever_for(self, spec: ToolSpec) -> "BaseRetriever":
        """The retriever behind a document tool: filtered vector search, whole-document, or keyword table."""
        from llama_index.core import StorageContext, VectorStoreIndex, load_index_from_storage
        from llama_index.core.vector_stores import ExactMatchFilter, MetadataFilters

        if spec.kind == "vector":
            index = VectorStoreIndex.from_vector_store(self.vector_store, embed_model=self.embedder)
            return index.as_retriever(
                similarity_top_k=PASSAGES, filters=MetadataFilters(filters=[ExactMatchFilter(key="doc_id", value=spec.doc_id)])
            )
        storage = self.storage_of(spec.doc_id or "")
        if storage is None:
            raise LookupError(f"document {spec.doc_id!r} of tool {spec.name!r} is not in the catalog")
        ctx = StorageContext.from_defaults(persist_dir=str(self.docs_dir / storage))
        if spec.kind == "summary":
            summary = load_index_from_storage(ctx, index_id="summary")
            return _FirstNodes(summary.as_retriever(), SUMMARY_NODES)
        from llama_index.core.llms import MockLLM

        # retriever_mode="simple" extracts query keywords by regex; the LLM is never called.
        keyword = load_index_from_storage(ctx, index_id="keyword", llm=self.llm or MockLLM())
        return keyword.as_retriever(retriever_mode="simple", num_chunks_per_query=PASSAGES)

    def _engine(self, spec: ToolSpec) -> BaseQueryEngine:
        retriever = self.retriever_for(spec)
        if self.llm is None:
            return PassageQueryEngine(retriever)
        from llama_index.core.query_engine import RetrieverQueryEngine
        from llama_index.core.response_synthesizers import ResponseMode

        mode = ResponseMode.TREE_SUMMARIZE if spec.kind == "summary" else ResponseMode.COMPACT
        return RetrieverQueryEngine.from_args(retriever, llm=self.llm, response_mode=mode)


class _FirstNodes(BaseRetriever):
    """Caps a SummaryIndex retriever (which returns every node) to the first ``n`` nodes, in order."""

    def __init__(self, inner: BaseRetriever, n: int) -> None:
        super().__init__()
        self._inner, self._n = inner, n

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._inner.retrieve(query_bundle)[: self._n]


def _external_tool(spec: ToolSpec) -> "BaseTool":
    """An application tool known only by its description: calling it returns the call the agent planned,
    so the application (or the user) can execute it."""

    def plan_call(**kwargs: Any) -> str:
        return json.dumps({"tool": spec.name, "arguments": kwargs}, ensure_ascii=False)

    return FunctionTool.from_defaults(
        fn=plan_call, name=spec.name, description=spec.description[:1024], fn_schema=None,
    )
