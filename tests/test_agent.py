"""The agent answers through routed tools: a scripted LLM for the loop, a loopback OpenAI-compatible
server for the openai-like provider, and the real bundled model in direct mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import pytest
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse, LLMMetadata
from llama_index.core.llms import CustomLLM
from openai_server import TOOL_LINE, OpenAICompatServer, react_policy

from agentic_router.indexes.config import RouterConfig
from agentic_router.router.app import AgenticRouter

QUESTION = "What does the borrow checker verify?"


class ScriptedLLM(CustomLLM):
    """Replies with a fixed ReAct policy over the prompt it receives: determinism for the loop tests."""

    pick: int = 0
    prompts: list[str] = []

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(is_chat_model=True, model_name="scripted")

    def _policy(self, messages: Sequence[ChatMessage]) -> str:
        rows = [{"role": m.role.value, "content": m.content or ""} for m in messages]
        self.prompts.append(rows[0]["content"])
        tools = TOOL_LINE.findall(rows[0]["content"])
        reply = react_policy(rows)
        if self.pick and tools and "Action:" in reply:
            reply = reply.replace(f"Action: {tools[0]}", f"Action: {tools[self.pick]}")
        return reply

    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return ChatResponse(message=ChatMessage(role="assistant", content=self._policy(messages)))

    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self.chat(messages)

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text="unused")

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):  # noqa: ANN201
        yield CompletionResponse(text="unused", delta="unused")


def _router_with(tmp_path: Path, corpus_dir: Path, llm: Any, **overrides: Any) -> AgenticRouter:
    router = AgenticRouter(RouterConfig.load(tmp_path / "ws", llm_provider="none", **overrides), llm=llm)
    router.ingest([corpus_dir])
    return router


@pytest.mark.parametrize("pick", [0, 2])
def test_react_agent_plans_over_routed_tools_only(tmp_path: Path, corpus_dir: Path, pick: int) -> None:
    llm = ScriptedLLM(pick=pick, prompts=[])
    router = _router_with(tmp_path, corpus_dir, llm)
    result = router.query(QUESTION, mode="agent", k=3)
    listed = TOOL_LINE.findall(llm.prompts[0])
    assert listed == result.tools_offered and len(listed) == 3  # the LLM saw exactly the routed tools
    assert [c.name for c in result.tools_called] == [listed[pick]]  # callable by exact name, any rank
    assert not result.tools_called[0].is_error
    # the scripted policy answers with the start of the observation: the answer came through the tool
    assert result.answer and result.answer[:60] in result.tools_called[0].output
    doc = router.catalog.get_tool(listed[pick]).title
    assert doc in result.tools_called[0].output
    assert result.sources and all(s["doc_id"] for s in result.sources)


def test_agent_over_openai_compatible_server(tmp_path: Path, corpus_dir: Path) -> None:
    with OpenAICompatServer() as server:
        router = AgenticRouter.open(tmp_path / "ws", llm_provider="openai-like", llm_base_url=server.base_url)
        router.ingest([corpus_dir])
        result = router.query(QUESTION, k=3)  # openai-like defaults to agent mode
    assert result.mode == "agent"
    assert result.tools_called and result.tools_called[0].name == result.tools_offered[0]
    assert "borrow checker" in result.answer and result.sources[0]["doc_id"].startswith("borrow")
    react = [r for r in server.requests if TOOL_LINE.search(str(r["messages"][0]["content"]))]
    assert react and TOOL_LINE.findall(react[0]["messages"][0]["content"]) == result.tools_offered
    # a capable provider also wrote the tool descriptions' summaries at ingest
    assert any("Summarise what the following document is about" in str(r["messages"]) for r in server.requests)


def test_direct_mode_with_the_real_local_model(tmp_path: Path, corpus_dir: Path) -> None:
    from agentic_router.router.answering.answer import is_complete, split_sentences

    router = AgenticRouter.open(tmp_path / "ws", llm_provider="local", llm_max_new_tokens=48)
    router.ingest([corpus_dir])
    result = router.query(QUESTION)  # the local 135M model answers in direct mode by default
    assert result.mode == "direct"
    assert result.tools_called[0].name.startswith("vector_the_rust")
    assert len(result.answer.strip()) > 0
    assert result.sources and result.sources[0]["doc_id"].startswith("borrow")
    # the shown answer is cleaned (48 tokens rarely end on a full stop): complete sentences, none twice
    sentences = split_sentences(result.answer)
    assert result.answer_source in ("generated", "extractive")
    assert all(is_complete(s) for s in sentences)
    assert len({" ".join(s.lower().split()) for s in sentences}) == len(sentences)
    json.dumps(result.to_dict())
