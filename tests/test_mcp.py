"""MCP in and out, with real parts: the toy MCP server (tests/mcp_toy_server.py) registered in a real catalog,
and a real MCP client session talking to `agentic-router mcp` started as a subprocess over stdio."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from helpers import free_port, serve_asgi, wait_for_port
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse, LLMMetadata
from llama_index.core.llms import CustomLLM
from mcp import Client, StdioServerParameters
from mcp_toy_server import HIJACK
from openai_server import TOOL_LINE

from agentic_router.cli import main
from agentic_router.indexes.errors import CatalogError, InputError, RemoteError
from agentic_router.indexes.schema import ToolSpec
from agentic_router.router.app import AgenticRouter
from agentic_router.router.catalog_summary import MAX_SEARCH_DESCRIPTION, CatalogSummary, search_description
from agentic_router.serve.auth import ApiKeys
from agentic_router.serve.mcp import Access, build_server, http_app

TOY = Path(__file__).resolve().parent / "mcp_toy_server.py"
TOY_TOOLS = 26
READ, ADMIN = "r" * 16 + "-read", "a" * 16 + "-admin"
ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def toy_command(tmp_path: Path, *extra: str) -> list[str]:
    return [sys.executable, str(TOY), "--spec", str(tmp_path / "spec.json"), "--log", str(tmp_path / "calls.jsonl"),
            *extra]


def calls(tmp_path: Path) -> list[dict[str, Any]]:
    log = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def toy_names(router) -> set[str]:
    return {s.name for s in router.list_tools() if s.name.startswith("toy__")}


# ---- the router as an MCP server, over a real client session ------------------------------------------
async def _session(workspace: Path, steps) -> Any:
    params = StdioServerParameters(
        command=sys.executable, args=["-c", "from agentic_router.cli import main; main()", "--workspace",
                                      str(workspace), "--llm", "none", "mcp"],
        env={**ENV, "PYTHONPATH": os.environ.get("PYTHONPATH", "")})
    with anyio.fail_after(120):
        async with Client(params, read_timeout_seconds=60) as client:
            return await steps(client)


def _data(result: Any) -> Any:
    assert not result.is_error, result.content[0].text
    return result.structured_content


def test_mcp_client_finds_and_calls_server_and_document_tools(make_router, corpus_dir: Path, tmp_path: Path) -> None:
    router = make_router()
    router.ingest([corpus_dir])
    report = router.add_mcp_server(command=toy_command(tmp_path))
    assert report["server"] == "toy" and len(report["added"]) == TOY_TOOLS
    router.add_tools([ToolSpec(name="send_email", description="Send an email message to a person", kind="external")])
    workspace = router.config.workspace
    router.close()

    async def steps(client: Client) -> dict[str, Any]:
        out: dict[str, Any] = {"tools": sorted(t.name for t in (await client.list_tools()).tools)}
        search = _data(await client.call_tool("search_tools", {"query": "reverse the characters of a string", "k": 3}))
        out["search_top"] = search["tools"][0]
        out["auto"] = _data(await client.call_tool("search_tools", {"query": "reverse the characters of a string",
                                                                    "k": 0}))
        out["reverse"] = _data(await client.call_tool("call_tool", {"name": search["tools"][0]["name"],
                                                                    "arguments": {"text": "hello"}}))
        out["add"] = _data(await client.call_tool("call_tool", {"name": "toy__add", "arguments": {"a": 2, "b": 40}}))
        doc = _data(await client.call_tool("search_tools", {"query": "What does the borrow checker verify?"}))
        out["doc_top"] = doc["tools"][0]
        out["doc_answer"] = _data(await client.call_tool("call_tool", {
            "name": doc["tools"][0]["name"], "arguments": {"input": "What does the borrow checker verify?"}}))
        out["sum_search"] = _data(await client.call_tool("search_tools", {"query": "add 2 and 3 together"}))
        out["hijack"] = _data(await client.call_tool("describe_tool", {"name": "toy__notes_lookup"}))
        out["calls_before_errors"] = calls(tmp_path)
        out["wrong_type"] = await client.call_tool("call_tool", {"name": "toy__add", "arguments": {"a": "two", "b": 1}})
        out["unknown"] = await client.call_tool("call_tool", {"name": "toy__nope", "arguments": {}})
        out["no_executor"] = await client.call_tool("call_tool", {"name": "send_email", "arguments": {}})
        out["crash"] = await client.call_tool("call_tool", {"name": "toy__crash", "arguments": {}})
        out["after_crash"] = _data(await client.call_tool("call_tool", {"name": "toy__uppercase",
                                                                        "arguments": {"text": "still here"}}))
        return out

    out = anyio.run(_session, workspace, steps)
    assert out["tools"] == ["call_tool", "describe_tool", "search_tools"]
    top = out["search_top"]
    assert top["name"] == "toy__reverse_text" and top["kind"] == "external"
    assert top["input_schema"]["properties"]["text"]["type"] == "string" and "score" in top
    auto = out["auto"]  # k=0: as many as fit, at most k_max
    assert auto["tools"][0]["name"] == "toy__reverse_text" and 1 <= len(auto["tools"]) <= 5 and not auto["abstain"]
    assert out["reverse"]["content"] == "olleh"
    assert out["add"]["structured"] == {"result": 42.0}
    assert out["doc_top"]["doc_id"] and out["doc_top"]["input_schema"]["required"] == ["input"]
    assert "borrow checker" in out["doc_answer"]["content"].lower()
    # the hijacking description is returned as a plain field, verbatim, and changed nothing
    assert out["sum_search"]["tools"][0]["name"] == "toy__add"
    assert out["hijack"]["description"] == " ".join(HIJACK.split()) and out["hijack"]["runner"] == "mcp"
    assert [c["tool"] for c in out["calls_before_errors"]] == ["reverse_text", "add"]
    assert out["wrong_type"].is_error and "not of type 'number'" in out["wrong_type"].content[0].text
    assert out["unknown"].is_error and "unknown tool 'toy__nope'" in out["unknown"].content[0].text
    assert out["no_executor"].is_error and "has no executor" in out["no_executor"].content[0].text
    crash = out["crash"].content[0].text
    assert out["crash"].is_error and "failed while calling 'crash'" in crash and "\n" not in crash
    assert out["after_crash"]["content"] == "STILL HERE"
    # the wrong call never reached the server; the crash did (then the server was started afresh)
    assert [c["tool"] for c in calls(tmp_path)] == ["reverse_text", "add", "crash", "uppercase"]


# ---- registering and syncing ----------------------------------------------------------------------------
def test_sync_keeps_the_catalog_equal_to_the_server_list(make_router, tmp_path: Path) -> None:
    router = make_router()
    router.add_mcp_server(command=toy_command(tmp_path))
    embedded: list[str] = []
    real = router._embed_cards
    router._embed_cards = lambda texts: embedded.extend(texts) or real(texts)  # type: ignore[method-assign]

    (tmp_path / "spec.json").write_text(json.dumps({
        "drop": ["vowel_count"], "add_extra": True, "describe": {"rot13": "Obfuscate text by rotating letters 13 places."}}))
    [report] = router.sync_mcp_servers("toy")
    assert report["added"] == ["toy__word_lengths"] and report["changed"] == ["toy__rot13"]
    assert report["removed"] == ["toy__vowel_count"] and len(report["unchanged"]) == TOY_TOOLS - 2
    assert len(embedded) == 2  # only the new and the changed card
    assert toy_names(router) == {f"toy__{t}" for t in [*_toy_list(), "word_lengths"] if t != "vowel_count"}
    assert router.route("length of each word in a sentence", k=1)[0].name == "toy__word_lengths"
    assert "rotating letters" in router.describe_tool("toy__rot13")["description"]
    with pytest.raises(CatalogError, match="unknown tool 'toy__vowel_count'"):
        router.call_tool("toy__vowel_count", {"text": "abc"})

    version = router.catalog.version()
    [again] = router.sync_mcp_servers()
    assert again["added"] == again["changed"] == again["removed"] == [] and len(embedded) == 2
    assert router.catalog.version() == version  # nothing written, BM25 not rebuilt

    # the agent's tools for MCP entries call the server, sync and async, through the same validation
    [tool] = router.tools_for(router.route("reverse the characters of a text", k=1))
    assert tool.metadata.get_name() == "toy__reverse_text" and "text" in tool.metadata.fn_schema_str
    assert tool.call(text="abc").content == "cba"
    assert anyio.run(lambda: tool.acall(text="xyz")).content == "zyx"

    # the ReAct agent of `query` calls the MCP tool on its server
    agent = AgenticRouter(router.config, llm=ReverseLLM())
    result = agent.query("reverse the characters of the word stressed", mode="agent", k=1)
    agent.close()
    assert [c.name for c in result.tools_called] == ["toy__reverse_text"] and "desserts" in result.answer
    assert calls(tmp_path)[-1] == {"tool": "reverse_text", "arguments": {"text": "stressed"}}

    router.executor.timeout = 4.0  # a call that outlives its timeout is cut, with one line saying so
    started = time.monotonic()
    with pytest.raises(RemoteError, match="did not answer within 4s while calling 'sleep_seconds'"):
        router.call_tool("toy__sleep_seconds", {"seconds": 60})
    assert time.monotonic() - started < 15


class ReverseLLM(CustomLLM):
    """A scripted ReAct model: calls the first tool offered with ``{"text": "stressed"}``, then answers with
    the observation."""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(is_chat_model=True, model_name="scripted")

    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        later = [m.content or "" for m in messages[1:] if "Observation:" in (m.content or "")]
        if later:
            reply = f"Thought: I can answer without using any more tools.\nAnswer: {later[-1].rsplit(':', 1)[1].strip()}"
        else:
            tool = TOOL_LINE.findall(messages[0].content or "")[0]
            reply = f"Thought: I need a tool.\nAction: {tool}\nAction Input: {json.dumps({'text': 'stressed'})}"
        return ChatResponse(message=ChatMessage(role="assistant", content=reply))

    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self.chat(messages)

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text="unused")

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        yield CompletionResponse(text="unused", delta="unused")


def test_call_tool_runs_python_tools_and_checks_arguments_first(make_router) -> None:
    from llama_index.core.tools import FunctionTool

    seen: list[tuple[int, int]] = []

    def multiply_integers(a: int, b: int) -> int:
        """Multiply two whole numbers."""
        seen.append((a, b))
        return a * b

    router = make_router()
    router.register_tool(FunctionTool.from_defaults(fn=multiply_integers))
    assert router.describe_tool("multiply_integers")["runner"] == "python"
    assert router.call_tool("multiply_integers", {"a": 6, "b": 7})["content"] == "42"
    for bad, words in [({"a": 6}, "'b' is a required property"), ({"a": 6, "b": "7"}, "is not of type 'integer'"),
                       ([6, 7], "must be a JSON object")]:
        with pytest.raises(InputError, match=words):
            router.call_tool("multiply_integers", bad)  # type: ignore[arg-type]
    assert seen == [(6, 7)]


def _toy_list() -> list[str]:
    from mcp_toy_server import _tools

    return list(_tools())


def test_failing_servers_leave_the_catalog_unchanged(make_router, tmp_path: Path) -> None:
    router = make_router()
    router.add_tools([ToolSpec(name="toy__add", description="An unrelated adder from a catalog file", kind="external")])
    before = ([s.to_dict() for s in router.list_tools()], router.catalog.version(), router.mcp_servers())

    def state() -> tuple[Any, ...]:
        return [s.to_dict() for s in router.list_tools()], router.catalog.version(), router.mcp_servers()

    failures = [
        ({"command": ["/nonexistent/mcp-server"]}, RemoteError, "FileNotFoundError"),
        ({"command": toy_command(tmp_path, "--garbage")}, RemoteError, "failed while listing"),
        ({"url": f"http://127.0.0.1:{free_port()}/mcp"}, RemoteError, "failed while listing"),
        ({"command": toy_command(tmp_path), "name": "bad__name"}, InputError, "server name"),
        ({"command": toy_command(tmp_path)}, CatalogError, "'toy__add' is already taken"),  # all or nothing
    ]
    for kwargs, error, words in failures:
        with pytest.raises(error, match=words) as caught:
            router.add_mcp_server(**kwargs)
        assert "\n" not in str(caught.value)
        assert state() == before

    # a registered server that now fails at start-up: sync reports it and keeps its tools
    router.add_mcp_server(command=toy_command(tmp_path), name="calc")
    kept = state()
    (tmp_path / "spec.json").write_text("{not json")
    [report] = router.sync_mcp_servers("calc")
    assert "error" in report and "JSONDecodeError" in report["error"] and state() == kept


# ---- the command line ------------------------------------------------------------------------------------
def test_cli_add_sync_and_route_openai(tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, ["--workspace", str(tmp_path / "ws"), "--llm", "none", *args])

    command = " ".join(toy_command(tmp_path))
    added = run("tools", "add", "--mcp-command", command, "--server-name", "calc")
    assert added.exit_code == 0, added.output
    assert added.stdout.strip() == f"calc: added {TOY_TOOLS}, changed 0, removed 0, unchanged 0 tool(s)"
    synced = run("tools", "sync")
    assert synced.stdout.strip() == f"calc: added 0, changed 0, removed 0, unchanged {TOY_TOOLS} tool(s)"

    routed = run("route", "multiply 6 by 7", "-k", "2", "--format", "openai")
    tools = json.loads(routed.stdout)
    assert len(tools) == 2 and tools[0]["type"] == "function"
    assert tools[0]["function"]["name"] == "calc__multiply"
    assert tools[0]["function"]["parameters"]["required"] == ["a", "b"]

    bad = run("tools", "add", "--mcp-command", "/nonexistent/mcp-server")
    assert bad.exit_code == 1 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: MCP server")
    both = run("tools", "add", "x.jsonl", "--mcp-url", "http://127.0.0.1:1/mcp")
    assert both.exit_code == 2
    catalog = tmp_path / "tools.jsonl"
    catalog.write_text(json.dumps({"name": "send_email", "description": "Send an email to someone"}) + "\n")
    plain = run("tools", "add", str(catalog))  # a JSONL catalog is added as before
    assert plain.exit_code == 0 and plain.stdout.startswith("added 1,")


def test_access_rules_for_http() -> None:
    local, remote = Access(loopback=True), Access(loopback=False)
    assert local.may_call({}) and not remote.may_call({}) and remote.may_call(None)  # stdio is always local
    keyed = Access(ApiKeys(read=READ, admin=ADMIN), loopback=False)
    assert keyed.may_read(f"Bearer {READ}") and keyed.may_read(f"Bearer {ADMIN}")
    assert not keyed.may_read("Bearer nope") and not keyed.may_read(None)
    assert keyed.may_call({"authorization": f"Bearer {ADMIN}"}) and not keyed.may_call({"authorization": f"Bearer {READ}"})
    assert remote.may_read(None)  # read-only, but readable


def test_http_transport_read_only_off_loopback(make_router, monkeypatch: pytest.MonkeyPatch) -> None:
    """The streamable-HTTP app on a non-loopback address without keys (served by uvicorn in this process, so
    the embedder is not loaded twice): search works, call_tool is refused; with keys, no key means 401."""
    host = _outward_address()
    if host is None:
        pytest.skip("no non-loopback address on this machine")
    monkeypatch.delenv("AGENTIC_ROUTER_ADMIN_KEY", raising=False)
    monkeypatch.delenv("AGENTIC_ROUTER_READ_KEY", raising=False)
    router = make_router()
    router.add_tools([ToolSpec(name="get_weather", description="Weather forecast for a city", kind="external")])
    access = Access.from_env(host)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(http_app(build_server(router, access), access, host), host=host, port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(host, port)

        async def steps() -> tuple[Any, Any]:
            async with Client(f"http://{host}:{port}/mcp", read_timeout_seconds=60) as client:
                found = await client.call_tool("search_tools", {"query": "will it rain in Lisbon?", "k": 1})
                refused = await client.call_tool("call_tool", {"name": "get_weather", "arguments": {}})
                return found, refused

        found, refused = anyio.run(steps)
        assert _data(found)["tools"][0]["name"] == "get_weather"
        assert refused.is_error and "read-only" in refused.content[0].text
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    keyed = Access(ApiKeys(admin=ADMIN), loopback=False)
    app = http_app(build_server(router, keyed), keyed, host)
    transport = httpx.ASGITransport(app=app)

    async def unauthorised() -> int:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return (await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).status_code

    assert anyio.run(unauthorised) == 401


def _outward_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outward interface
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


# ---- search_tools says what it searches ------------------------------------------------------------------
WEATHER = [ToolSpec(name=f"weather_{what}", description=f"Weather {what} for a city: temperature, rain and wind",
                    kind="external") for what in ("forecast", "alerts", "history")]


def test_search_tools_description_follows_the_catalog(make_router, corpus_dir: Path, tmp_path: Path) -> None:
    """Two real clients on the streamable-HTTP app (uvicorn in a thread): a handshake-era one told by
    notifications/tools/list_changed, a 2026-07-28 one by its subscriptions/listen stream; both read the
    rewritten description after another writer changed the catalog."""
    router = make_router()
    router.ingest([corpus_dir])
    router.add_mcp_server(command=toy_command(tmp_path))
    router.add_tools([ToolSpec(name="send_email", description="Send an email message to a person", kind="external")])
    access = Access(loopback=True)
    seen: list[str] = []

    async def handler(message: Any) -> None:
        seen.append(str(getattr(message, "method", type(message).__name__)))

    async def describe(client: Client) -> str:
        return next(t.description for t in (await client.list_tools()).tools if t.name == "search_tools")

    async def steps(url: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with Client(url + "/mcp", mode="legacy", message_handler=handler, read_timeout_seconds=60) as old, \
                Client(url + "/mcp", read_timeout_seconds=60) as new:
            out["before"] = await describe(old)
            out["before_new"] = await describe(new)
            out["capability"] = old.server_capabilities.tools.list_changed
            async with new.listen(tools_list_changed=True) as events:
                await anyio.to_thread.run_sync(router.add_tools, WEATHER)  # as `tools add` would, meanwhile
                with anyio.fail_after(30):
                    async for event in events:
                        out["event"] = type(event).__name__
                        break
                    while "notifications/tools/list_changed" not in seen:
                        await anyio.sleep(0.05)
            out["after"], out["after_new"] = await describe(old), await describe(new)
            out["search"] = _data(await new.call_tool("search_tools", {"query": "severe weather alerts", "k": 1}))
        return out

    with serve_asgi(http_app(build_server(router, access, watch_seconds=0.2), access, "127.0.0.1")) as url:
        out = anyio.run(steps, url)
    before, after = out["before"], out["after"]
    assert before == out["before_new"] and after == out["after_new"] and out["capability"] is True
    assert before.startswith(f"Find the tools that fit a request among the {9 + TOY_TOOLS + 1} tools of this catalog")
    assert f"MCP server toy ({TOY_TOOLS} tools)" in before and "3 documents (9 tools)" in before
    assert "1 tools from catalog files" in before and "weather" not in before
    assert f"among the {9 + TOY_TOOLS + 4} tools" in after and "4 tools from catalog files" in after
    subjects = after.split("Subjects: ")[1]
    assert "weather" in subjects and "city" in subjects
    assert out["event"] == "ToolsListChanged" and out["search"]["tools"][0]["name"] == "weather_alerts"
    assert len(before) <= MAX_SEARCH_DESCRIPTION and len(after) <= MAX_SEARCH_DESCRIPTION


def test_search_description_stays_short_for_any_catalog() -> None:
    many = CatalogSummary(tools=123_456, documents=4000, document_tools=12_000,
                          sources=[("MCP server", f"server_with_a_long_name_{i:03d}", 100 + i) for i in range(60)],
                          other_tools=5000, subjects=[f"subject{i}" * 3 for i in range(50)])
    text = search_description(many)
    assert len(text) <= MAX_SEARCH_DESCRIPTION and "4000 documents (12000 tools)" in text
    assert "more sources" in text and "Subjects: subject0subject0subject0" in text
    empty = search_description(CatalogSummary(tools=0))
    assert "among the 0 tools" in empty and "empty" in empty and len(empty) <= MAX_SEARCH_DESCRIPTION
