"""Application tools that are not documents: rows of a catalog JSONL.

Accepted rows (one per line):
- ``{"name", "description", "parameters"?}``
- an OpenAI tool schema: ``{"type": "function", "function": {"name", "description", "parameters"}}``
- a document-style row ``{"doc_id", "title", "text"}``: ``doc_id`` is the name and ``text`` the description.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from agentic_router.indexes.errors import InputError
from agentic_router.indexes.schema import ToolSpec, check_tool_name, safe_tool_name
from agentic_router.indexes.sources.documents import iter_jsonl


def validate_tool_name(name: Any, where: str, fix: bool = False) -> str:
    """The row's name, checked against the client rule; with ``fix`` an invalid name is replaced by its
    nearest valid form (real catalogs hold names such as "requestFirst Aid Assistance")."""
    if isinstance(name, str):
        name = name.strip()
        if fix and name:
            name = safe_tool_name(name)
    return check_tool_name(name, where)


def spec_from_row(row: dict[str, Any], where: str, fix_names: bool = False) -> ToolSpec:
    if isinstance(row.get("function"), dict):
        row = row["function"]
    if "name" in row:
        raw = row.get("name")
        name = validate_tool_name(raw, where, fix_names)
        description = row.get("description")
        title = row.get("title") or (raw.strip() if isinstance(raw, str) else name)
    elif "doc_id" in row:
        raw = str(row.get("doc_id"))
        name = validate_tool_name(raw, where, fix_names)
        description = row.get("text")
        title = row.get("title") or raw
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


def load_tool_catalog(path: str | Path, fix_names: bool = False) -> list[ToolSpec]:
    """Parse and validate a whole catalog file before anything is registered."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    return specs_from_rows(((f"{path} line {lineno}", row) for lineno, row in iter_jsonl(path)), fix_names)


def specs_from_rows(rows: Iterable[tuple[str, Any]], fix_names: bool = False) -> list[ToolSpec]:
    """``(where, row)`` pairs (a file's lines, an HTTP body's items) to specs; a name given twice is refused,
    naming both places (with ``fix_names``, two names that become the same are refused the same way)."""
    specs: list[ToolSpec] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        if not isinstance(row, dict):
            raise InputError(f"{where}: a tool row must be a JSON object")
        spec = spec_from_row(row, where, fix_names)
        if spec.name in seen:
            raise InputError(f"{where}: tool {spec.name!r} already defined at {seen[spec.name]}")
        seen[spec.name] = where
        specs.append(spec)
    return specs
