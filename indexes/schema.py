"""Small value types shared by indexes, catalog, retriever and agent."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

TOOL_KINDS = ("vector", "summary", "keyword", "external")
MAX_TOOL_NAME = 64


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
