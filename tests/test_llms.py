"""LLM providers: the OpenAI-compatible path against a loopback server, and the real bundled local model."""

from __future__ import annotations

import json
import time

import pytest
from llama_index.core.llms import ChatMessage
from openai_server import OpenAICompatServer

from agentic_router.indexes.config import RouterConfig
from agentic_router.indexes.errors import ModelError
from agentic_router.router.answering import llms


@pytest.fixture
def server():
    with OpenAICompatServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def local_llm_config(tmp_path_factory):
    """A config for the real bundled SmolLM2 model whose workspace will hold its de-quantised copy."""
    return RouterConfig.load(workspace=tmp_path_factory.mktemp("llm-ws"), llm_provider="local", llm_max_new_tokens=32)


@pytest.fixture(scope="module")
def local_llm(local_llm_config):
    """The real local LLM, de-quantised from GGUF once (~25 s); the in-process cache shares it afterwards."""
    llms.clear_local_cache()  # this workspace must get its saved copy even if another test loaded the model
    return llms.load_llm(local_llm_config)


def _like(tmp_path, base_url):
    return RouterConfig.load(workspace=tmp_path, llm_provider="openai-like", llm_base_url=base_url)


def test_openai_like_chat_and_stream(tmp_path, server):
    llm = llms.load_llm(_like(tmp_path, server.base_url))
    reply = llm.chat([ChatMessage(role="user", content="hello there")])
    assert reply.message.content == "Answer: hello there"
    assert server.requests[-1]["messages"][-1]["content"] == "hello there"

    chunks = list(llm.stream_chat([ChatMessage(role="user", content="stream me please")]))
    assert chunks[-1].message.content == "Answer: stream me please"
    assert "".join(c.delta or "" for c in chunks) == "Answer: stream me please"
    assert server.requests[-1]["stream"] is True
    assert len(server.requests) == 2


def test_server_follows_react_policy(tmp_path, server):
    llm = llms.load_llm(_like(tmp_path, server.base_url))
    system = ChatMessage(role="system", content="Tools:\n> Tool Name: weather\nTool Description: x\n\nObservation: tool response")
    first = llm.chat([system, ChatMessage(role="user", content="Rain in Paris?")]).message.content
    assert "Action: weather\nAction Input: " in first
    assert json.loads(first.split("Action Input: ", 1)[1]) == {"input": "Rain in Paris?"}
    second = llm.chat(
        [system, ChatMessage(role="user", content="Rain in Paris?"), ChatMessage(role="assistant", content=first),
         ChatMessage(role="user", content="Observation: light rain all day")]
    ).message.content
    assert second.endswith("\nAnswer: light rain all day")


def test_openai_like_needs_base_url(tmp_path):
    with pytest.raises(ModelError, match="llm_base_url"):
        llms.load_llm(RouterConfig.load(workspace=tmp_path, llm_provider="openai-like"))


def test_openai_needs_key(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AGENTIC_ROUTER_LLM_API_KEY", raising=False)
    with pytest.raises(ModelError, match="OPENAI_API_KEY"):
        llms.load_llm(RouterConfig.load(workspace=tmp_path, llm_provider="openai"))


def test_provider_none_and_capability(tmp_path):
    assert llms.load_llm(RouterConfig.load(workspace=tmp_path, llm_provider="none")) is None
    assert not llms.is_capable(RouterConfig.load(workspace=tmp_path, llm_provider="local"))
    assert llms.is_capable(RouterConfig.load(workspace=tmp_path, llm_provider="openai-like"))


def test_llama_cpp_missing_is_a_model_error(tmp_path):
    try:
        import llama_index.llms.llama_cpp  # noqa: F401
    except ImportError:
        with pytest.raises(ModelError, match="llama-index-llms-llama-cpp"):
            llms.load_llm(RouterConfig.load(workspace=tmp_path, llm_provider="llama-cpp"))
    else:
        pytest.skip("llama-cpp integration installed")


def test_local_gguf_must_exist(tmp_path):
    with pytest.raises(ModelError, match="gguf"):
        llms.load_llm(RouterConfig.load(workspace=tmp_path, llm_provider="local", llm_model=str(tmp_path / "x.gguf")))


def test_corrupt_gguf_is_a_model_error(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ModelError, match="cannot load LLM"):
        llms.load_llm(RouterConfig.load(workspace=tmp_path, llm_provider="local", llm_model=str(bad)))
    assert not (tmp_path / "models" / "llm" / "broken").exists()


def test_bundled_gguf_is_found():
    path = llms.bundled_gguf_path()
    assert path.suffix == ".gguf" and path.is_file()


def test_local_model_generates_and_caches(local_llm, local_llm_config):
    """The real 135M model: de-quantised once per session, answers, batches, then reloads from the saved copy."""
    llm, config = local_llm, local_llm_config
    cache = config.models_dir / "llm" / llms.bundled_gguf_path().stem
    assert (cache / "source.json").is_file() and (cache / "model.safetensors").is_file()
    assert not [p for p in cache.parent.iterdir() if p.name.startswith(".")]  # no temp dir left behind

    assert llm.metadata.is_chat_model
    capital = llm.complete("What is the capital of France?", max_new_tokens=12).text
    assert "paris" in capital.lower()
    outs = llm.generate_batch(["Name a fruit.", "What is 2+2?", "Say hello."], max_new_tokens=8)
    assert len(outs) == 3 and all(isinstance(o, str) and o for o in outs)
    counted = llm.complete("Count from 1 to 10 separated by commas.", stop=["4"], max_new_tokens=16).text
    assert "4" not in counted and counted.startswith("1")
    streamed = [r.delta for r in llm.stream_complete("Count from 1 to 10 separated by commas.", stop=["4"])]
    assert "".join(streamed).strip() == counted
    chunks = list(llm.stream_chat([ChatMessage(role="user", content="What is the capital of France?")], max_new_tokens=12))
    assert chunks[-1].message.content.strip() == capital  # runs to its natural end, same text as complete()

    llms.clear_local_cache()
    start = time.perf_counter()
    again = llms.load_llm(config)
    assert time.perf_counter() - start < 20  # from the saved copy, not a second de-quantisation
    assert again.complete("What is the capital of France?", max_new_tokens=12).text == capital  # same weights


def test_react_agent_end_to_end_against_server(tmp_path, server):
    """llama-index's own ReAct loop: the server's policy calls the listed tool, then answers from its output."""
    import asyncio

    from llama_index.core.agent.workflow import ReActAgent
    from llama_index.core.tools import FunctionTool

    def weather(input: str) -> str:
        """Weather lookup."""
        return f"It rains in Paris today ({input})."

    agent = ReActAgent(tools=[FunctionTool.from_defaults(weather)], llm=llms.load_llm(_like(tmp_path, server.base_url)))

    async def ask() -> str:  # a workflow run must start inside a running event loop
        return str(await agent.run("Will it rain in Paris?"))

    answer = asyncio.run(ask())
    assert str(answer) == "It rains in Paris today (Will it rain in Paris?)."
    assert len(server.requests) == 2
    assert "> Tool Name: weather" in server.requests[0]["messages"][0]["content"]
