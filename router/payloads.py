"""The JSON shapes the shells print or send: one definition for ``--json`` on the CLI and the HTTP service.

A client that switches from parsing ``agentic-router route --json`` to calling ``POST /v1/route`` must see
the same objects, so both shells build them here instead of each writing its own dictionaries.

The tool-search formats (``anthropic``, ``openai-tool-search``) are what a client hands back to its model
as the result of a client-side search tool over deferred tools; ``docs/providers.md`` cites the provider
pages each shape follows. Only the routed tools' definitions travel, so a catalog of thousands never has
to be declared to the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from agentic_router.indexes.errors import InputError
from agentic_router.indexes.schema import TOOL_KINDS, RouteHit, ToolSpec, is_valid_tool_name
from agentic_router.router.versions.registry import ModelRegistry

KIND_FETCH_FACTOR = 4  # with a kind filter, rank this many times k before filtering (bounded by the catalog)


def route_json(query: str, hits: Sequence[RouteHit], abstain: bool) -> dict[str, Any]:
    """``{"query", "tools": [...], "abstain"}``: what ``route --json`` prints."""
    return {"query": query, "tools": [h.to_dict() for h in hits], "abstain": abstain}


def tools_json(specs: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """What ``tools list --json`` prints. ``valid_name`` is false for a name registered before names were
    checked that clients would refuse (``TOOL_NAME_RULE``): such a workspace still opens and routes."""
    return [{**s.to_dict(), "valid_name": is_valid_tool_name(s.name)} for s in specs]


def models_json(registry: ModelRegistry) -> dict[str, Any]:
    """``{"active", "versions"}``: what ``models list --json`` prints."""
    return {"active": registry.active(), "versions": [v.to_dict() for v in registry.list()]}


def check_kinds(kinds: Sequence[str] | None) -> tuple[str, ...] | None:
    """Validate a kind filter; None or empty means every kind."""
    if not kinds:
        return None
    unknown = [k for k in kinds if k not in TOOL_KINDS]
    if unknown:
        raise InputError(f"unknown tool kind {unknown[0]!r}; use one of {', '.join(TOOL_KINDS)}")
    return tuple(dict.fromkeys(kinds))


def fetch_size(k: int, kinds: Sequence[str] | None) -> int:
    """How many hits to rank so that ``k`` survive a kind filter in the usual case (the filter is applied to
    the router's ranking, so a kind that is rare near the question may return fewer than ``k``)."""
    return k if not kinds else k * KIND_FETCH_FACTOR


def keep_kinds(hits: Sequence[RouteHit], kinds: Sequence[str] | None, k: int) -> list[RouteHit]:
    """The first ``k`` hits whose kind is in ``kinds`` (all kinds when None)."""
    return [h for h in hits if not kinds or h.kind in kinds][:k]


# ---- provider formats of a routing ------------------------------------------------------------------
ROUTE_FORMATS = ("json", "openai", "anthropic", "openai-tool-search")
TOOL_SEARCH_FORMATS = ("anthropic", "openai-tool-search")
MAX_CALL_ID = 256
NOTHING_FOUND = "No tool in the catalog fits this request."
SEARCH_TOOL_NAME = "search_tools"
SEARCH_DESCRIPTION = ("Search the tool catalog for the tools this request needs and load them. Describe the task "
                      "in plain words; call the tools it returns.")
SEARCH_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": {"query": {"type": "string", "description": "The task, in the user's words."}},
    "required": ["query"],
}


@dataclass(frozen=True)
class ToolDefinition:
    """The three things every provider's tool definition is made of. The router layer fills them from the
    catalog (the input schema depends on what runs the tool), the builders below only arrange them."""

    name: str
    description: str
    input_schema: dict[str, Any]


def check_format(fmt: object) -> str:
    """``fmt`` if it is one of ``ROUTE_FORMATS``; else a one-line ``InputError`` listing them."""
    if fmt not in ROUTE_FORMATS:
        raise InputError(f"unknown format {str(fmt)[:40]!r}; use one of {', '.join(ROUTE_FORMATS)}")
    return str(fmt)


def check_call_id(call_id: object, fmt: str) -> str | None:
    """The id of the model's search-tool call, echoed in the result so the provider can pair them. Only the
    tool-search formats carry one; elsewhere it would be silently dropped, so it is refused."""
    if call_id is None:
        return None
    if fmt not in TOOL_SEARCH_FORMATS:
        raise InputError(f"call_id applies to the formats {' and '.join(TOOL_SEARCH_FORMATS)}, not {fmt!r}")
    if not isinstance(call_id, str) or not call_id.strip() or len(call_id) > MAX_CALL_ID:
        raise InputError(f"call_id must be a non-empty string of at most {MAX_CALL_ID} characters")
    return call_id


def search_tool(fmt: str) -> dict[str, Any]:
    """The search tool a client declares (never deferred) so its model can ask the router for tools."""
    if fmt == "anthropic":
        return {"name": SEARCH_TOOL_NAME, "description": SEARCH_DESCRIPTION, "input_schema": dict(SEARCH_INPUT)}
    if fmt == "openai-tool-search":
        return {"type": "tool_search", "execution": "client", "description": SEARCH_DESCRIPTION,
                "parameters": dict(SEARCH_INPUT)}
    raise InputError(f"no search tool for format {fmt!r}; use one of {', '.join(TOOL_SEARCH_FORMATS)}")


def anthropic_tool(tool: ToolDefinition) -> dict[str, Any]:
    """A Messages API tool that stays out of the model's context until a ``tool_reference`` names it."""
    return {"name": tool.name, "description": tool.description, "input_schema": tool.input_schema,
            "defer_loading": True}


def openai_function(tool: ToolDefinition) -> dict[str, Any]:
    """A Responses API function loaded by ``tool_search_output``. ``strict`` is false because catalog schemas
    (optional fields, no ``additionalProperties: false``) are not written for strict mode, which the API
    would otherwise apply."""
    return {"type": "function", "name": tool.name, "description": tool.description,
            "parameters": tool.input_schema, "strict": False, "defer_loading": True}


def anthropic_search_result(tools: Sequence[ToolDefinition], call_id: str | None = None) -> dict[str, Any]:
    """``{"tool_result", "tools"}``: the ``tool_result`` block answering the search tool's ``tool_use`` (one
    ``tool_reference`` per routed tool), and the definitions the request's ``tools`` must hold for the API
    to expand those references. Nothing found is a plain text result, not an error."""
    content = ([{"type": "tool_reference", "tool_name": t.name} for t in tools] if tools
               else [{"type": "text", "text": NOTHING_FOUND}])
    return {"tool_result": {"type": "tool_result", "tool_use_id": call_id, "content": content},
            "tools": [anthropic_tool(t) for t in tools]}


def openai_search_output(tools: Sequence[ToolDefinition], call_id: str | None = None) -> dict[str, Any]:
    """The ``tool_search_output`` input item answering a client-executed ``tool_search_call``: the loaded
    functions travel inside it. Nothing found is an empty ``tools`` list."""
    return {"type": "tool_search_output", "call_id": call_id, "execution": "client", "status": "completed",
            "tools": [openai_function(t) for t in tools]}


def tool_search_result(fmt: str, tools: Sequence[ToolDefinition], call_id: str | None = None) -> dict[str, Any]:
    """The search tool's result in ``fmt`` (``anthropic`` or ``openai-tool-search``); ``tools`` empty when the
    router abstains."""
    if fmt == "anthropic":
        return anthropic_search_result(tools, call_id)
    if fmt == "openai-tool-search":
        return openai_search_output(tools, call_id)
    raise InputError(f"{fmt!r} is not a tool-search format; use one of {', '.join(TOOL_SEARCH_FORMATS)}")
