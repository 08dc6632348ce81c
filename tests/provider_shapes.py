"""The provider shapes the tool-search formats must match, written down from the providers' documentation
(docs/providers.md cites the pages) so the tests check against them rather than against our own output.

- Anthropic: a client-side search tool answers with a standard ``tool_result`` whose content holds
  ``tool_reference`` blocks; every referenced tool needs a definition in the request's ``tools`` (normally
  ``defer_loading: true``) and at least one tool must stay non-deferred. No Anthropic SDK is installed, so
  the blocks are JSON Schemas copied field by field from the Messages API reference.
- OpenAI: a client-executed ``tool_search`` answers a ``tool_search_call`` with a ``tool_search_output``
  item echoing its ``call_id``. The installed ``openai`` SDK's types are generated from OpenAI's API
  specification, so they validate those items.
"""

from __future__ import annotations

from typing import Any

import jsonschema
from openai.types.responses import ResponseToolSearchOutputItemParam, ToolSearchToolParam
from openai.types.responses.response_input_item_param import ToolSearchCall
from pydantic import TypeAdapter

NAME = r"^[a-zA-Z0-9_-]{1,256}$"  # ToolReferenceBlockParam.tool_name
CACHE_CONTROL = {"type": "object"}

ANTHROPIC_TOOL = {  # ToolParam (custom tool)
    "type": "object",
    "required": ["name", "input_schema"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "custom"},
        "name": {"type": "string", "pattern": r"^[a-zA-Z0-9_-]{1,128}$"},
        "description": {"type": "string"},
        "input_schema": {"type": "object", "required": ["type"], "properties": {"type": {"const": "object"}}},
        "defer_loading": {"type": "boolean"},
        "cache_control": CACHE_CONTROL,
        "strict": {"type": "boolean"},
        "input_examples": {"type": "array"},
    },
}
TOOL_REFERENCE = {
    "type": "object", "required": ["type", "tool_name"], "additionalProperties": False,
    "properties": {"type": {"const": "tool_reference"}, "tool_name": {"type": "string", "pattern": NAME},
                   "cache_control": CACHE_CONTROL},
}
TEXT_BLOCK = {
    "type": "object", "required": ["type", "text"], "additionalProperties": False,
    "properties": {"type": {"const": "text"}, "text": {"type": "string", "minLength": 1},
                   "cache_control": CACHE_CONTROL},
}
ANTHROPIC_TOOL_RESULT = {  # ToolResultBlockParam
    "type": "object",
    "required": ["type", "tool_use_id"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "tool_result"},
        "tool_use_id": {"type": "string", "pattern": r"^[a-zA-Z0-9_-]+$"},
        "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"oneOf": [TOOL_REFERENCE, TEXT_BLOCK]}}]},
        "is_error": {"type": "boolean"},
        "cache_control": CACHE_CONTROL,
    },
}


def check_anthropic_result(result: dict[str, Any]) -> list[str]:
    """``route --format anthropic``: a tool_result (id filled in) and the definitions it references; returns
    the referenced names."""
    assert set(result) == {"tool_result", "tools"}, result
    block = dict(result["tool_result"])
    if block["tool_use_id"] is None:  # without --call-id the client fills it in
        block["tool_use_id"] = "toolu_filled_in"
    jsonschema.validate(block, ANTHROPIC_TOOL_RESULT)
    for tool in result["tools"]:
        jsonschema.validate(tool, ANTHROPIC_TOOL)
        assert tool["defer_loading"] is True
    names = [b["tool_name"] for b in block["content"] if b["type"] == "tool_reference"]
    assert names == [t["name"] for t in result["tools"]]
    if not names:  # nothing found: one text block, and no error
        assert [b["type"] for b in block["content"]] == ["text"] and "is_error" not in block
    return names


def check_anthropic_request(body: dict[str, Any]) -> list[str]:
    """A Messages request continuing after the search tool ran: every tool valid, at least one not deferred,
    the search tool's ``tool_use`` answered by the ``tool_result`` with the same id, every
    ``tool_reference`` defined in ``tools``. Returns the referenced names."""
    assert isinstance(body.get("model"), str) and isinstance(body.get("max_tokens"), int)
    for tool in body["tools"]:
        jsonschema.validate(tool, ANTHROPIC_TOOL)
    defined = {t["name"]: t for t in body["tools"]}
    assert len(defined) == len(body["tools"]), "tool names must be unique"
    assert any(not t.get("defer_loading") for t in body["tools"]), "at least one tool must stay non-deferred"
    user, assistant, answer = body["messages"][-3:]
    assert user["role"] == "user" and assistant["role"] == "assistant" and answer["role"] == "user"
    uses = [b for b in assistant["content"] if b["type"] == "tool_use"]
    assert len(uses) == 1 and not defined[uses[0]["name"]].get("defer_loading"), "the search tool is not deferred"
    results = [b for b in answer["content"] if b["type"] == "tool_result"]
    assert len(results) == 1
    jsonschema.validate(results[0], ANTHROPIC_TOOL_RESULT)
    assert results[0]["tool_use_id"] == uses[0]["id"]
    names = [b["tool_name"] for b in results[0]["content"] if b["type"] == "tool_reference"]
    missing = [n for n in names if n not in defined]
    assert not missing, f"tool_reference without a definition in tools (the API answers 400): {missing}"
    return names


def check_openai_output(item: dict[str, Any], call_id: str | None = None) -> list[str]:
    """``route --format openai-tool-search``: a client ``tool_search_output``; returns the loaded names."""
    parsed = ResponseToolSearchOutputItemParam.model_validate(item)
    assert parsed.type == "tool_search_output" and parsed.execution == "client" and parsed.status == "completed"
    assert set(item) <= {"type", "id", "call_id", "execution", "status", "tools"}
    assert item["call_id"] == call_id
    for tool in parsed.tools:
        assert tool.type == "function" and tool.defer_loading is True and tool.strict is False
    return [t["name"] for t in item["tools"]]


def check_openai_request(body: dict[str, Any]) -> list[str]:
    """A Responses request continuing after a client-executed search: the ``tool_search`` tool declared with
    ``execution: client``, the model's ``tool_search_call`` followed by the ``tool_search_output`` echoing
    its ``call_id``. Returns the loaded names."""
    assert isinstance(body.get("model"), str)
    searches = [t for t in body["tools"] if t.get("type") == "tool_search"]
    assert len(searches) == 1 and searches[0]["execution"] == "client"
    TypeAdapter(ToolSearchToolParam).validate_python(searches[0])
    jsonschema.Draft202012Validator.check_schema(searches[0]["parameters"])
    calls = [i for i in body["input"] if i.get("type") == "tool_search_call"]
    outputs = [i for i in body["input"] if i.get("type") == "tool_search_output"]
    assert len(calls) == 1 and len(outputs) == 1
    TypeAdapter(ToolSearchCall).validate_python(calls[0])
    assert calls[0]["execution"] == "client" and calls[0]["call_id"]
    assert body["input"].index(calls[0]) < body["input"].index(outputs[0])
    return check_openai_output(outputs[0], calls[0]["call_id"])
