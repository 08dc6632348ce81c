"""The JSON shapes the shells print or send: one definition for ``--json`` on the CLI and the HTTP service.

A client that switches from parsing ``agentic-router route --json`` to calling ``POST /v1/route`` must see
the same objects, so both shells build them here instead of each writing its own dictionaries.
"""

from __future__ import annotations

from typing import Any, Sequence

from agentic_router.indexes.errors import InputError
from agentic_router.indexes.schema import TOOL_KINDS, RouteHit, ToolSpec, is_valid_tool_name
from agentic_router.router.registry import ModelRegistry

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
