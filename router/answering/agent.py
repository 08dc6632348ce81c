"""Answering a question over the routed tools: a ReAct agent, or a direct run of the best tool.

- ``agent``: LlamaIndex's workflow ``ReActAgent`` with the tool retriever as ``tool_retriever=`` — the LLM
  plans only over the few tools the router offers for the question.
- ``direct``: runs the best routed tool and lets its query engine synthesise (or, without an LLM, returns
  the retrieved passages). This is what a small local model is good for: it cannot plan reliably, but it
  can phrase an answer from passages handed to it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from agentic_router.indexes.schema import RouteHit
from agentic_router.indexes.tools import PassageQueryEngine
from agentic_router.router.answering.answer import finish_answer

if TYPE_CHECKING:
    from llama_index.core.llms import LLM
    from llama_index.core.objects import ObjectRetriever
    from llama_index.core.tools import BaseTool

logger = logging.getLogger(__name__)
AGENT_PROVIDERS = {"openai", "openai-like", "llama-cpp"}
MODES = ("agent", "direct")


def default_mode(provider: str) -> str:
    """ReAct planning needs a capable model; the bundled 135M model and ``none`` answer directly."""
    return "agent" if provider in AGENT_PROVIDERS else "direct"


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    output: str
    is_error: bool = False


@dataclass
class AgentResult:
    question: str
    mode: str
    answer: str
    tools_offered: list[str]
    tools_called: list[ToolCall] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None
    # direct mode: "generated" (the LLM's cleaned answer), "extractive" (passage sentences standing in for
    # it) or "passages" (no LLM); None in agent mode
    answer_source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sources_of(raw_output: Any, limit: int = 5) -> list[dict[str, Any]]:
    """Source passages of a query-engine response (empty for tools that are not query engines)."""
    out = []
    for nws in getattr(raw_output, "source_nodes", None) or []:
        meta = nws.node.metadata or {}
        out.append({
            "doc_id": meta.get("doc_id"), "title": meta.get("title"), "score": nws.score,
            "text": " ".join(nws.node.get_content().split())[:500],
        })
    return out[:limit]


def run_direct(question: str, hits: list[RouteHit], tools: list["BaseTool"]) -> AgentResult:
    """Call the best routed tool with the question itself.

    When the tool's query engine synthesised its answer with an LLM, the answer goes through
    ``router.answering.answer``: a small model's repeats, cut-off tail and chatter are removed, and an answer that
    loops or strays from the passages is replaced by the passage sentences that best match the question
    (``note`` says why). A tool without an LLM returns its passages, which are shown as they are, and so
    is the output of a tool that retrieved nothing or is not a query engine.
    """
    offered = [h.name for h in hits]
    if not tools:
        return AgentResult(question, "direct", "No tool in the catalog matches this question.", offered)
    from llama_index.core.tools import adapt_to_async_tool

    tool = tools[0]
    output = adapt_to_async_tool(tool).call(input=question)  # a registered tool may be a plain BaseTool
    call = ToolCall(tool.metadata.get_name(), {"input": question}, str(output.content), output.is_error)
    result = AgentResult(
        question, "direct", str(output.content), offered, [call], sources_of(output.raw_output),
    )
    engine = getattr(tool, "query_engine", None)
    engine = getattr(engine, "engine", engine)  # a LazyQueryEngine holds the engine it built on first use
    if isinstance(engine, PassageQueryEngine):
        result.answer_source = "passages"
        return result
    # the full node texts, not the 500-character source excerpts: the best sentence may lie further in
    passages = [n.node.get_content() for n in getattr(output.raw_output, "source_nodes", None) or []]
    if engine is None or output.is_error or not passages:  # not a synthesis over retrieved passages
        return result
    finished = finish_answer(question, str(output.content), passages)
    result.answer, result.answer_source = finished.text, finished.how
    if finished.reason:
        result.note = f"the model's answer was replaced by sentences from the sources: {finished.reason}"
    return result


async def arun_agent(
    question: str, llm: "LLM", retriever: "ObjectRetriever", offered: list[str], max_iterations: int = 6,
    timeout: float = 600.0,
) -> AgentResult:
    """Run the workflow ReActAgent; collect every tool call and its sources from the event stream."""
    from llama_index.core.agent.workflow import ReActAgent, ToolCallResult

    agent = ReActAgent(tool_retriever=retriever, llm=llm, timeout=timeout, streaming=False)
    handler = agent.run(user_msg=question, max_iterations=max_iterations)
    calls: list[ToolCall] = []
    sources: list[dict[str, Any]] = []
    async for event in handler.stream_events():
        if isinstance(event, ToolCallResult):
            out = event.tool_output
            calls.append(ToolCall(event.tool_name, dict(event.tool_kwargs), str(out.content), bool(out.is_error)))
            sources.extend(sources_of(out.raw_output))
    result = await handler
    message = getattr(result, "response", result)
    answer = str(getattr(message, "content", None) or "").strip()
    return AgentResult(question, "agent", answer, offered, calls, sources)


def run_agent(question: str, llm: "LLM", retriever: "ObjectRetriever", offered: list[str], **kw: Any) -> AgentResult:
    return asyncio.run(arun_agent(question, llm, retriever, offered, **kw))
