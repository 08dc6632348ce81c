"""Running a catalog tool by name, whatever stands behind it.

- a document tool (vector, summary, keyword) runs its index with ``{"input": question}``;
- a tool registered from an MCP server is called on that server;
- a tool registered from an OpenAPI document sends its HTTP request to the API;
- a Python tool given to ``AgenticRouter.register_tool`` is called in this process;
- a tool known only from a JSONL catalog has no executor, and saying so is the answer.

Arguments are checked against the tool's input schema *before* anything runs, so a wrong call costs no
server start and gets a one-line reason. The same executor backs ``call_tool`` of the Python API and of
the MCP server, and the LlamaIndex tools the agent gets for MCP and OpenAPI tools, so every caller meets one
behaviour.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jsonschema
from jsonschema.exceptions import SchemaError
from llama_index.core.tools import FunctionTool, ToolMetadata, adapt_to_async_tool

from agentic_router.indexes.errors import CatalogError, InputError, RemoteError
from agentic_router.indexes.schema import ToolSpec
from agentic_router.indexes.sources.mcp_servers import CALL_TIMEOUT, CallOutcome, McpServer, acall_tool, call_tool
from agentic_router.indexes.sources.openapi import TRANSPORT as OPENAPI
from agentic_router.indexes.sources.openapi import OpenApiSource, acall_operation, call_operation
from agentic_router.indexes.storage.catalog import Catalog
from agentic_router.indexes.tools import ToolFactory

if TYPE_CHECKING:
    from llama_index.core.tools import BaseTool

DOCUMENT_INPUT = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "The question to answer from the document."}},
    "required": ["input"],
}
ANY_OBJECT: dict[str, Any] = {"type": "object"}
MAX_RESULT = 20_000  # characters of a tool's text answer passed on


class ToolExecutor:
    """Describes and calls catalog tools by name (see the module docstring for what runs what)."""

    def __init__(self, catalog: Catalog, factory: ToolFactory, timeout: float = CALL_TIMEOUT) -> None:
        self.catalog = catalog
        self.factory = factory
        self.timeout = timeout

    # ---- reading -----------------------------------------------------------------------------------
    def spec(self, name: str) -> ToolSpec:
        spec = self.catalog.get_tool(name) if isinstance(name, str) else None
        if spec is None:
            raise CatalogError(f"unknown tool {str(name)[:80]!r}; search the catalog for the right name")
        return spec

    def runner(self, spec: ToolSpec) -> str:
        """What runs the tool: ``index``, ``mcp``, ``openapi``, ``python`` or ``none``."""
        if spec.name in self.factory.registered:
            return "python"
        if spec.kind != "external":
            return "index"
        found = self.catalog.source_of(spec.name)
        if found is None:
            return "none"
        rows = {r["name"]: r["transport"] for r in self.catalog.sources()}
        return "openapi" if rows.get(found[0]) == OPENAPI else "mcp"

    def input_schema(self, spec: ToolSpec) -> dict[str, Any]:
        if spec.kind != "external":
            return dict(DOCUMENT_INPUT)
        return spec.parameters or dict(ANY_OBJECT)

    def describe(self, name: str) -> dict[str, Any]:
        """The full card of one tool, its input schema and what would run it."""
        spec = self.spec(name)
        remote = self.catalog.source_of(spec.name)
        return {"name": spec.name, "kind": spec.kind, "title": spec.title, "doc_id": spec.doc_id,
                "description": spec.description, "card": spec.card(), "input_schema": self.input_schema(spec),
                "runner": self.runner(spec), "server": remote[0] if remote else None}

    def openai_tool(self, spec: ToolSpec) -> dict[str, Any]:
        """The tool as one entry of an OpenAI ``tools`` array."""
        return {"type": "function", "function": {"name": spec.name, "description": spec.description,
                                                 "parameters": self.input_schema(spec)}}

    # ---- calling -----------------------------------------------------------------------------------
    def call(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Validate, then run. Returns ``{"tool", "is_error", "content", "structured"}``; a tool that reports
        its own failure is a result with ``is_error``, a call that cannot be made raises a ``RouterError``."""
        spec = self.spec(name)
        arguments = {} if arguments is None else arguments
        validate_arguments(spec.name, self.input_schema(spec), arguments)
        runner = self.runner(spec)
        if runner == "none":
            raise CatalogError(f"tool {spec.name!r} has no executor: it is known only from a catalog file "
                               "(register it in Python with register_tool, or from its MCP server or OpenAPI "
                               "document)")
        if runner in ("mcp", "openapi"):
            source, remote = self._remote(spec)
            if isinstance(source, OpenApiSource):
                return _result(spec.name, call_operation(source, remote, arguments))
            return _result(spec.name, call_tool(source, remote, arguments, self.timeout))
        tool = self.factory.build(spec)
        output = adapt_to_async_tool(tool).call(**arguments)  # a registered tool may be a plain BaseTool
        return {"tool": spec.name, "is_error": bool(output.is_error), "content": str(output.content)[:MAX_RESULT],
                "structured": None}

    def function_tool(self, spec: ToolSpec) -> BaseTool | None:
        """A LlamaIndex tool that calls an MCP- or OpenAPI-registered tool at its source (None for any other
        tool), so the agent's calls take the same validated path as ``call``."""
        if spec.kind != "external" or self.catalog.source_of(spec.name) is None:
            return None
        schema = self.input_schema(spec)

        def run(**kwargs: Any) -> str:
            return self._answer(self.call(spec.name, kwargs))

        async def arun(**kwargs: Any) -> str:
            validate_arguments(spec.name, schema, kwargs)
            source, remote = self._remote(spec)
            if isinstance(source, OpenApiSource):
                return self._answer(_result(spec.name, await acall_operation(source, remote, kwargs)))
            return self._answer(_result(spec.name, await acall_tool(source, remote, kwargs, self.timeout)))

        metadata = SchemaMetadata(name=spec.name, description=spec.description[:1024], schema=schema)
        return FunctionTool(fn=run, metadata=metadata, async_fn=arun)

    def _remote(self, spec: ToolSpec) -> tuple[McpServer | OpenApiSource, str]:
        """The tool's source and what that source needs to run it (its name on an MCP server, or an OpenAPI
        operation's request plan)."""
        found = self.catalog.source_of(spec.name)
        rows = {r["name"]: r for r in self.catalog.sources()}
        if found is None or found[0] not in rows:
            raise CatalogError(f"the source of tool {spec.name!r} is no longer registered")
        row = rows[found[0]]
        source = OpenApiSource.from_row(row) if row["transport"] == OPENAPI else McpServer.from_row(row)
        return source, found[1]

    @staticmethod
    def _answer(result: dict[str, Any]) -> str:
        if result["is_error"]:
            raise RemoteError(f"{result['tool']} failed: {result['content'][:500]}")
        return result["content"]


@dataclass
class SchemaMetadata(ToolMetadata):
    """Tool metadata whose parameters are a server's JSON Schema rather than a Python signature's."""

    schema: dict[str, Any] = field(default_factory=dict)

    def get_parameters_dict(self) -> dict:
        return self.schema

    @property
    def fn_schema_str(self) -> str:
        return json.dumps(self.schema, ensure_ascii=False)


def validate_arguments(name: str, schema: dict[str, Any], arguments: Any) -> None:
    """One-line ``InputError`` when ``arguments`` do not match ``schema``. A schema that is not valid JSON
    Schema (some catalogs write ``"type": "dict"``) is checked only for an object with its required keys."""
    if not isinstance(arguments, dict):
        raise InputError(f"arguments of {name!r} must be a JSON object, not {type(arguments).__name__}")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError:
        missing = [k for k in schema.get("required", []) if isinstance(k, str) and k not in arguments]
        if missing:
            raise InputError(f"arguments of {name!r}: missing required argument {missing[0]!r}") from None
        return
    error = jsonschema.exceptions.best_match(cls(schema).iter_errors(arguments))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "arguments"
        raise InputError(f"arguments of {name!r} do not match its input schema at {where}: {error.message[:200]}")


def _result(name: str, outcome: CallOutcome) -> dict[str, Any]:
    return {"tool": name, "is_error": outcome.is_error, "content": outcome.text[:MAX_RESULT],
            "structured": outcome.structured}
