"""The router as a LlamaIndex ``ObjectRetriever``: what ``ReActAgent(tool_retriever=...)`` consumes.

Workflow agents call ``aretrieve(question)`` to choose the tools they show the LLM, and call it again
with the *tool's name* when executing a call; the ``ToolRetriever`` answers an exact tool name with that
tool first, so every tool offered in a run stays callable by its exact name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from llama_index.core.objects import ObjectRetriever
from llama_index.core.objects.base_node_mapping import BaseObjectNodeMapping
from llama_index.core.schema import BaseNode
from llama_index.core.tools import BaseTool

if TYPE_CHECKING:
    from agentic_router.router.app import AgenticRouter


class CatalogToolMapping(BaseObjectNodeMapping[BaseTool]):
    """Maps a tool-card node (as the retriever returns it) back to a callable tool, built on demand."""

    def __init__(self, router: "AgenticRouter") -> None:
        self._router = router

    @classmethod
    def from_objects(cls, objs: Sequence[BaseTool], *args: Any, **kwargs: Any) -> "CatalogToolMapping":
        raise NotImplementedError("the catalog is the source of tools; register them with AgenticRouter")

    @property
    def obj_node_mapping(self) -> dict[Any, Any]:
        return {}

    def _add_object(self, obj: BaseTool) -> None:
        self._router.register_tool(obj)

    def to_node(self, obj: BaseTool) -> BaseNode:
        raise NotImplementedError("tool nodes come from the catalog")

    def _from_node(self, node: BaseNode) -> BaseTool:
        name = node.metadata["name"]
        spec = self._router.catalog.get_tool(name)
        if spec is None:
            raise LookupError(f"tool {name!r} is no longer in the catalog")
        return self._router.tool_factory.build(spec)

    def persist(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to persist: the catalog already lives in the workspace."""


class CatalogToolRetriever(ObjectRetriever[BaseTool]):
    """``ObjectRetriever`` over the catalog with a fixed ``k``."""

    def __init__(self, router: "AgenticRouter", k: int) -> None:
        from agentic_router.router.retriever import ToolRetriever

        base = router.retriever
        retriever = ToolRetriever(
            base.catalog, base.embed_model, base.chunks, top_k=k,
            card_weight=base.card_weight, chunk_candidates=base.chunk_candidates, kind_bonus=base.kind_bonus,
            lexical=base.lexical, lexical_weight=base.lexical_weight,
        )
        super().__init__(retriever=retriever, object_node_mapping=CatalogToolMapping(router))
