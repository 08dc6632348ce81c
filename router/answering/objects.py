"""The router as a LlamaIndex ``ObjectRetriever``: what ``ReActAgent(tool_retriever=...)`` consumes.

A workflow agent asks its tool retriever twice per step: with the user's question (which tools to show
the LLM) and with a tool's exact name (which tool to run). So a question is routed once and remembered
for the run, and a tool name is a catalog lookup, not a ranking; every tool offered in a run stays
callable by its exact name.
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

from llama_index.core.objects import ObjectRetriever
from llama_index.core.objects.base_node_mapping import BaseObjectNodeMapping
from llama_index.core.schema import BaseNode, QueryBundle
from llama_index.core.tools import BaseTool

from agentic_router.indexes.schema import RouteHit
from agentic_router.indexes.storage.catalog import Catalog
from agentic_router.indexes.tools import ToolFactory
from agentic_router.router.retrieval.retriever import ToolRetriever


class CatalogToolMapping(BaseObjectNodeMapping[BaseTool]):
    """Maps a tool-card node (as the retriever returns it) back to a callable tool, built on demand."""

    def __init__(self, catalog: Catalog, factory: ToolFactory) -> None:
        self._catalog, self._factory = catalog, factory

    @classmethod
    def from_objects(cls, objs: Sequence[BaseTool], *args: Any, **kwargs: Any) -> "CatalogToolMapping":
        raise NotImplementedError("the catalog is the source of tools; register them with AgenticRouter")

    @property
    def obj_node_mapping(self) -> dict[Any, Any]:
        return {}

    def _add_object(self, obj: BaseTool) -> None:
        raise NotImplementedError("register tools with AgenticRouter.register_tool")

    def to_node(self, obj: BaseTool) -> BaseNode:
        raise NotImplementedError("tool nodes come from the catalog")

    def _from_node(self, node: BaseNode) -> BaseTool:
        name = node.metadata["name"]
        spec = self._catalog.get_tool(name)
        if spec is None:
            raise LookupError(f"tool {name!r} is no longer in the catalog")
        return self._factory.build(spec)

    def persist(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to persist: the catalog already lives in the workspace."""


class CatalogToolRetriever(ObjectRetriever[BaseTool]):
    """``ObjectRetriever`` over the catalog with a fixed ``k``; remembers the questions it routed."""

    def __init__(self, retriever: ToolRetriever, catalog: Catalog, factory: ToolFactory, k: int,
                 routed: dict[str, list[RouteHit]] | None = None) -> None:
        super().__init__(retriever=retriever, object_node_mapping=CatalogToolMapping(catalog, factory))
        self._router = retriever
        self._factory = factory
        self._k = k
        self._routed: dict[str, list[RouteHit]] = dict(routed or {})

    def hits(self, query: str) -> list[RouteHit]:
        """The routed hits of ``query``: remembered, or routed now and remembered."""
        if query not in self._routed:
            self._routed[query] = self._router.rank_tools(query, self._k)
        return self._routed[query][: self._k]

    def retrieve(self, str_or_query_bundle: str | QueryBundle) -> list[BaseTool]:
        query = str_or_query_bundle.query_str if isinstance(str_or_query_bundle, QueryBundle) else str_or_query_bundle
        exact = self._router.lookup(query.strip()) if query.strip() else None
        if exact is not None:
            return [self._factory.build(exact)]
        specs = self._router.catalog.get_tools([h.name for h in self.hits(query)])
        return [self._factory.build(specs[h.name]) for h in self.hits(query) if h.name in specs]

    async def aretrieve(self, str_or_query_bundle: str | QueryBundle) -> list[BaseTool]:
        # Embedding and Chroma calls block; run them off the event loop the agent lives on.
        return await asyncio.to_thread(self.retrieve, str_or_query_bundle)
