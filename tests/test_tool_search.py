"""Provider tool-search formats: what the router hands back as a client-side search tool's result.

Checked against the providers' documented shapes (``provider_shapes``): from the Python API and the CLI,
from the examples run as scripts, and in an agent loop over real HTTP against the scripted Responses
server, where the model searches, the router's result loads the tools, and the model's call executes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from click.testing import CliRunner
from helpers import write_jsonl
from llama_index.core.tools import FunctionTool
from openai_server import OpenAICompatServer
from provider_shapes import check_anthropic_request, check_anthropic_result, check_openai_output, check_openai_request

from agentic_router.cli import main
from agentic_router.indexes.errors import InputError
from agentic_router.router.payloads import search_tool

ROOT = Path(__file__).resolve().parents[1]
TOOLS = [
    {"name": "get_weather", "description": "Current weather and forecast for a city: rain, temperature, wind.",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    {"type": "function", "function": {"name": "send_email", "description": "Send an email to a recipient.",
                                      "parameters": {"type": "object", "properties": {"to": {"type": "string"}}}}},
    {"name": "convert_currency", "description": "Convert an amount between two currencies."},
]
RAIN = "will it rain in Lisbon tomorrow?"
NOTHING = "who painted the Mona Lisa"


@pytest.fixture
def catalog_router(make_router, tmp_path: Path):
    router = make_router("tools")
    router.add_tools(write_jsonl(tmp_path / "tools.jsonl", TOOLS))
    return router


def _cli(ws: Path, *args: str) -> tuple[int, str, str]:
    run = CliRunner().invoke(main, ["--workspace", str(ws), "--llm", "none", *args])
    return run.exit_code, run.stdout, run.stderr


# ---- the Python API --------------------------------------------------------------------------------
def test_the_routed_tools_are_revealed_in_both_shapes(catalog_router) -> None:
    found = catalog_router.route_as(RAIN, "anthropic", 1, call_id="toolu_01A")
    assert check_anthropic_result(found) == ["get_weather"] and found["tool_result"]["tool_use_id"] == "toolu_01A"
    assert found["tools"][0]["input_schema"]["required"] == ["city"]
    loaded = catalog_router.route_as(RAIN, "openai-tool-search", 2, call_id="call_7")
    assert check_openai_output(loaded, "call_7")[0] == "get_weather" and len(loaded["tools"]) == 2
    # the same routing as --json, only shaped for the provider
    assert [t["name"] for t in catalog_router.route_as(RAIN, "json", 2)["tools"]] == check_openai_output(
        loaded, "call_7")


def test_when_no_tool_fits_the_result_is_the_providers_nothing_found(make_router, tmp_path: Path) -> None:
    strict = make_router("strict", abstain_below=0.95)
    strict.add_tools(write_jsonl(tmp_path / "tools.jsonl", TOOLS))
    assert strict.route_as(NOTHING, "json", 3)["abstain"] is True  # the premise: ranked, but nothing fits
    for k in (3, "auto"):
        found = strict.route_as(NOTHING, "anthropic", k, call_id="toolu_01B")
        assert check_anthropic_result(found) == [] and found["tools"] == []
        assert found["tool_result"]["content"][0]["text"] == "No tool in the catalog fits this request."
        assert check_openai_output(strict.route_as(NOTHING, "openai-tool-search", k, call_id="c"), "c") == []


def test_document_tools_take_the_question_as_input(router) -> None:
    found = router.route_as("What does the borrow checker verify?", "anthropic", 1, call_id="toolu_01C")
    assert "borrow" in check_anthropic_result(found)[0]
    assert found["tools"][0]["input_schema"]["required"] == ["input"]


def test_bad_format_or_call_id_is_a_one_line_input_error(catalog_router) -> None:
    with pytest.raises(InputError, match=r"^unknown format 'xml'; use one of json, openai, anthropic, "
                                         r"openai-tool-search$"):
        catalog_router.route_as(RAIN, "xml")
    with pytest.raises(InputError, match="call_id applies to the formats anthropic and openai-tool-search"):
        catalog_router.route_as(RAIN, "json", call_id="x")
    with pytest.raises(InputError, match="non-empty string of at most 256"):
        catalog_router.route_as(RAIN, "anthropic", call_id="x" * 257)


# ---- the command line ------------------------------------------------------------------------------
def test_cli_prints_each_format_as_one_json_document(catalog_router) -> None:
    ws = catalog_router.config.workspace
    code, out, err = _cli(ws, "route", RAIN, "-k", "1", "--format", "anthropic", "--call-id", "toolu_01D")
    assert code == 0, err
    found = json.loads(out)
    assert check_anthropic_result(found) == ["get_weather"] and found["tool_result"]["tool_use_id"] == "toolu_01D"
    code, out, err = _cli(ws, "route", RAIN, "-k", "auto", "--format", "openai-tool-search", "--call-id", "call_9")
    assert code == 0, err
    assert check_openai_output(json.loads(out), "call_9")[0] == "get_weather"
    code, out, _ = _cli(ws, "route", RAIN, "-k", "1", "--format", "anthropic")
    assert json.loads(out)["tool_result"]["tool_use_id"] is None  # no --call-id: the client fills it in
    code, out, _ = _cli(ws, "route", RAIN, "-k", "1", "--format", "openai")
    assert json.loads(out)[0]["function"]["name"] == "get_weather"  # unchanged Chat Completions array


def test_cli_bad_format_and_stray_call_id_are_one_line_usage_errors(catalog_router) -> None:
    ws = catalog_router.config.workspace
    code, out, err = _cli(ws, "route", RAIN, "--format", "xml")
    assert (code, out) == (2, "") and err == ("error: unknown --format 'xml'; use one of text, json, openai, "
                                              "anthropic, openai-tool-search\n")
    code, out, err = _cli(ws, "route", RAIN, "--json", "--call-id", "x")
    assert (code, out) == (2, "") and err == "error: --call-id goes with --format anthropic or openai-tool-search\n"


# ---- the examples, as scripts ----------------------------------------------------------------------
@pytest.mark.parametrize("script,check", [("anthropic_tool_search.py", check_anthropic_request),
                                          ("openai_tool_search.py", check_openai_request)])
def test_examples_print_a_request_body_the_provider_documents(script: str, check, tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TMPDIR": str(tmp_path)}
    run = subprocess.run([sys.executable, str(ROOT / "examples" / script)], capture_output=True, text=True,
                         env=env, timeout=300, cwd=tmp_path, check=False)
    assert run.returncode == 0, run.stderr[-1500:]
    body = json.loads(run.stdout)
    assert check(body)[0] == "get_weather"
    assert body["model"] in ("claude-opus-4-8", "gpt-5.4")


# ---- the agent loop over real HTTP -----------------------------------------------------------------
def _loop(router, client: openai.OpenAI, question: str) -> tuple[list, str]:
    """The client's loop: the model searches, the router answers, the model calls a revealed tool, the
    router runs it, the model answers. Every turn is a real Responses request to the scripted server."""
    tools, items, calls = [search_tool("openai-tool-search")], [{"role": "user", "content": question}], []
    for _ in range(4):
        response = client.responses.create(model="test-model", input=items, tools=tools)
        step = response.output[0]
        items.append(step.model_dump(exclude_none=True))
        if step.type == "tool_search_call":
            items.append(router.route_as(step.arguments["query"], "openai-tool-search", "auto", call_id=step.call_id))
        elif step.type == "function_call":
            result = router.call_tool(step.name, json.loads(step.arguments))
            calls.append((step.name, result))
            items.append({"type": "function_call_output", "call_id": step.call_id, "output": result["content"]})
        else:
            return calls, response.output_text
    raise AssertionError("the loop did not end")


def test_agent_loop_search_reveal_call(catalog_router) -> None:
    asked: list[str] = []

    def get_weather(city: str) -> str:
        """Current weather and forecast for a city: rain, temperature, wind."""
        asked.append(city)
        return "Light rain tomorrow, 14 C."

    catalog_router.register_tool(FunctionTool.from_defaults(fn=get_weather))  # now it runs in this process
    with OpenAICompatServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="not-needed", max_retries=0)
        calls, answer = _loop(catalog_router, client, RAIN)
        assert [(name, r["is_error"]) for name, r in calls] == [("get_weather", False)] and asked == [RAIN]
        assert answer == "Done: Light rain tomorrow, 14 C."
        first, second = server.requests[0], server.requests[1]
        assert [t["type"] for t in first["tools"]] == ["tool_search"]  # no function declared up front
        assert check_openai_request(second)[0] == "get_weather"
        # the server holds the documented rule: an output must answer a call of the same call_id
        bad = [*second["input"][:1], {**second["input"][2], "call_id": "call_unknown"}]
        with pytest.raises(openai.BadRequestError, match="No tool call found for tool_search_output"):
            client.responses.create(model="test-model", input=bad, tools=first["tools"])


def test_agent_loop_when_nothing_fits_calls_no_tool(make_router, tmp_path: Path) -> None:
    strict = make_router("strict", abstain_below=0.95)
    strict.add_tools(write_jsonl(tmp_path / "tools.jsonl", TOOLS))
    with OpenAICompatServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="not-needed", max_retries=0)
        calls, answer = _loop(strict, client, NOTHING)
    assert calls == [] and answer.startswith("No tool can do that")
    assert server.requests[1]["input"][-1]["tools"] == []
