"""Application tools that are not documents: rows of a catalog JSONL.

Accepted rows (one per line):
- ``{"name", "description", "parameters"?}``
- an OpenAI tool schema: ``{"type": "function", "function": {"name", "description", "parameters"}}``
- a document-style row ``{"doc_id", "title", "text"}``: ``doc_id`` is the name and ``text`` the description.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

from agentic_router.indexes.documents import iter_jsonl
from agentic_router.indexes.errors import InputError
from agentic_router.indexes.schema import MAX_TOOL_NAME, ToolSpec

# Real catalogs use names such as "requestFirst Aid Assistance": accept any printable name, since gold
# labels and applications refer to tools by the name they gave; only control characters are refused.
_VALID_NAME = re.compile(r"^[^\x00-\x1f\x7f]+$")


def validate_tool_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{where}: missing tool 'name'")
    name = name.strip()
    if len(name) > MAX_TOOL_NAME or not _VALID_NAME.match(name):
        raise InputError(
            f"{where}: tool name {name[:80]!r} must be at most {MAX_TOOL_NAME} printable characters"
        )
    return name


def spec_from_row(row: dict[str, Any], where: str) -> ToolSpec:
    if isinstance(row.get("function"), dict):
        row = row["function"]
    if "name" in row:
        name = validate_tool_name(row.get("name"), where)
        description = row.get("description")
        title = row.get("title") or name
    elif "doc_id" in row:
        name = validate_tool_name(str(row.get("doc_id")), where)
        description = row.get("text")
        title = row.get("title") or name
    else:
        raise InputError(f"{where}: a tool row needs 'name' and 'description' (or 'doc_id' and 'text')")
    if not isinstance(description, str) or not description.strip():
        raise InputError(f"{where}: tool {name!r} has no description")
    params = row.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise InputError(f"{where}: 'parameters' of tool {name!r} must be a JSON object")
    return ToolSpec(
        name=name, description=" ".join(description.split()), kind="external", title=str(title), parameters=params
    )


def load_tool_catalog(path: str | Path) -> list[ToolSpec]:
    """Parse and validate a whole catalog file before anything is registered."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    return specs_from_rows((f"{path} line {lineno}", row) for lineno, row in iter_jsonl(path))


def specs_from_rows(rows: Iterable[tuple[str, Any]]) -> list[ToolSpec]:
    """``(where, row)`` pairs (a file's lines, an HTTP body's items) to specs; a name given twice is refused,
    naming both places."""
    specs: list[ToolSpec] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        spec = spec_from_row(row, where)
        if spec.name in seen:
            raise InputError(f"{where}: tool {spec.name!r} already defined at {seen[spec.name]}")
        seen[spec.name] = where
        specs.append(spec)
    return specs
