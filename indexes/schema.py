"""Small value types shared by indexes, catalog, retriever and agent."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from agentic_router.indexes.errors import InputError

TOOL_KINDS = ("vector", "summary", "keyword", "external")
MAX_TOOL_NAME = 64
# The function names OpenAI's and Anthropic's APIs accept. A name outside it would be refused by the client's
# API far from where it came in, so it is refused where it enters the catalog (``check_tool_name``).
TOOL_NAME_RULE = r"^[A-Za-z0-9_-]{1,64}$"
_TOOL_NAME = re.compile(TOOL_NAME_RULE)


def is_valid_tool_name(name: object) -> bool:
    return isinstance(name, str) and _TOOL_NAME.match(name) is not None


def check_tool_name(name: object, where: str) -> str:
    """``name`` if every client accepts it, else an ``InputError`` naming the rule and ``where`` it came from."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{where}: missing tool 'name'")
    if not is_valid_tool_name(name):
        raise InputError(f"{where}: tool name {name[:80]!r} does not match {TOOL_NAME_RULE} (letters, digits, "
                         "'_' and '-', at most 64: what OpenAI and Anthropic clients accept)")
    return name


def safe_tool_name(name: str) -> str:
    """The nearest valid name: every run of other characters becomes ``_`` (``getPM2.5Level`` ->
    ``getPM2_5Level``), cut at 64. Used where the catalog derives a name (MCP, ``--fix-names``)."""
    if is_valid_tool_name(name):
        return name
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", name.strip()).strip("_")[:MAX_TOOL_NAME]
    return safe or "tool"


def stable_hash(*parts: Any, length: int = 16) -> str:
    """A content hash that is the same in every process (Python's ``hash()`` is salted per process)."""
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


def humanize_identifier(name: str) -> str:
    """``getWeatherForecast`` / ``get_weather`` -> ``get weather forecast``: embedders read words, not identifiers."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return re.sub(r"[_\-.]+", " ", spaced).strip().lower()


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the catalog stores it: enough to describe it to an LLM and to rebuild it on demand."""

    name: str
    description: str
    kind: str
    doc_id: str | None = None
    title: str | None = None
    parameters: dict[str, Any] | None = None

    @cached_property
    def tool_id(self) -> str:
        """Stable id: changes exactly when what the router or the agent sees of the tool changes. Cached:
        every ranked candidate carries it, and hashing its JSON was the slowest step of scoring."""
        return stable_hash(self.name, self.kind, self.doc_id, self.description, self.parameters)

    def card(self) -> str:
        """The text embedded for routing: readable name, description, and parameter hints for external tools."""
        text = f"{humanize_identifier(self.name)}: {self.description}"
        if self.parameters:
            props = self.parameters.get("properties", self.parameters)
            hints = []
            if isinstance(props, dict):
                for pname, pdef in props.items():
                    desc = pdef.get("description", "") if isinstance(pdef, dict) else ""
                    hints.append(f"{humanize_identifier(pname)} ({desc})" if desc else humanize_identifier(pname))
            if hints:
                text += " Parameters: " + "; ".join(hints)
        return text

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tool_id"] = self.tool_id
        return data


@dataclass(frozen=True)
class RouteHit:
    """One ranked tool returned by the router."""

    name: str
    score: float
    kind: str
    doc_id: str | None
    tool_id: str
    description: str
    card_score: float | None = None
    evidence_score: float | None = None
    evidence: str | None = None  # the best-matching passage of the tool's document, when one was found

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IngestReport:
    """What one ingest call did, per document."""

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    tools: int = 0
    chunks: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
