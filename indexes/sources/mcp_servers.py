"""MCP servers as a source of tools: reach a server, list its tools as catalog rows, call one of them.

A server is reached either by starting a command and talking over its stdin/stdout (``stdio``) or at a
streamable-HTTP URL (``http``). Its tools enter the catalog as external tools named ``SERVER__tool`` (the
prefix keeps names unique across servers) with the server's description and input schema; how to reach
the server is kept in the catalog database, so any later process can call them.

Why a fresh connection per operation: the catalog is used from short-lived CLI processes, from worker
threads of the MCP and HTTP shells and from the agent's event loop; one connection per call needs no
pool that outlives a loop, and a server that died during one call is simply started again by the next.
The cost is the server's start-up time on every call of a stdio server.

Everything a server says is treated as data: names and schemas are checked, descriptions are kept as
text; a server that cannot be started or reached, or that answers garbage, raises one ``RemoteError``
and nothing is written.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import re
import shlex
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

from agentic_router.indexes.errors import CatalogError, InputError, RemoteError
from agentic_router.indexes.schema import MAX_TOOL_NAME, ToolSpec, check_tool_name, safe_tool_name
from agentic_router.indexes.storage.catalog import Catalog

SEP = "__"
LIST_TIMEOUT = 30.0  # seconds to start a server and list its tools
CALL_TIMEOUT = 60.0  # seconds for one call, start-up included
MAX_PAGES = 100  # a paginating server that never ends cannot hang a listing
MAX_DESCRIPTION = 4000  # characters kept of a tool description (the card embeds far fewer)
_SERVER_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]|_(?!_))*$")
_T = TypeVar("_T")


@dataclass(frozen=True)
class McpServer:
    """How to reach one MCP server; ``target`` is the argv (stdio, JSON in the database) or the URL."""

    name: str
    transport: str  # "stdio" | "http"
    command: tuple[str, ...] = ()
    url: str | None = None
    cwd: str | None = None  # where a stdio command was registered: relative paths in it are resolved there

    @classmethod
    def stdio(cls, command: str | Sequence[str], name: str | None = None, cwd: str | None = None) -> McpServer:
        argv = tuple(shlex.split(command) if isinstance(command, str) else command)
        if not argv:
            raise InputError("the MCP command is empty")
        return cls(name or "", "stdio", command=argv, cwd=cwd or os.getcwd())

    @classmethod
    def http(cls, url: str, name: str | None = None) -> McpServer:
        if not re.match(r"^https?://[^\s/]+", url or ""):
            raise InputError(f"an MCP URL must start with http:// or https://, not {url!r}")
        return cls(name or "", "http", url=url)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> McpServer:
        if row["transport"] == "stdio":
            return cls(row["name"], "stdio", command=tuple(json.loads(row["target"])), cwd=row.get("cwd"))
        return cls(row["name"], "http", url=row["target"])

    def to_row(self) -> dict[str, Any]:
        target = json.dumps(list(self.command)) if self.transport == "stdio" else self.url
        return {"name": self.name, "transport": self.transport, "target": target, "cwd": self.cwd}

    def where(self) -> str:
        return f"`{shlex.join(self.command)}`" if self.transport == "stdio" else str(self.url)

    def named(self, name: str) -> McpServer:
        return McpServer(check_server_name(name), self.transport, self.command, self.url, self.cwd)


@dataclass(frozen=True)
class Listing:
    """What a server said about itself: its own name (if it gave one) and its tools, checked."""

    server_name: str | None
    tools: list[dict[str, Any]]  # {"name", "description", "title", "input_schema"}


@dataclass(frozen=True)
class CallOutcome:
    """A tool's answer: its text blocks joined, its structured content, and whether it reported an error."""

    text: str
    is_error: bool
    structured: Any = None


def check_server_name(name: str) -> str:
    if not isinstance(name, str) or len(name) > 32 or not _SERVER_NAME.match(name):
        raise InputError(f"server name {name!r} must be 1-32 letters, digits, '-' or single '_'")
    return name


def default_server_name(listing: Listing, server: McpServer) -> str:
    """The name the server gives itself, else the command's script or the URL's host, made identifier-safe."""
    raw = listing.server_name or ""
    if not raw or raw in ("mcp-server", "server"):
        if server.transport == "stdio":  # `python my_server.py --flag` -> my_server
            script = next((a for a in server.command[1:] if not a.startswith("-")), server.command[0])
            raw = os.path.splitext(os.path.basename(script))[0]
        else:
            raw = re.sub(r"^https?://", "", server.url or "").split("/")[0].split(":")[0]
    name = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_-]+", "_", raw)).strip("_-")[:32].strip("_-")
    return name or "mcp"


def to_specs(server_name: str, listing: Listing) -> dict[str, tuple[ToolSpec, str]]:
    """Catalog name -> (external ToolSpec, name on the server). The catalog name is ``SERVER__tool`` in
    the form every client accepts (a server's ``files/read`` becomes ``SERVER__files_read``; calls still
    use the server's own name); two tools that would share a catalog name are refused, naming both."""
    out: dict[str, tuple[ToolSpec, str]] = {}
    for tool in listing.tools:
        name = f"{server_name}{SEP}{safe_tool_name(tool['name'])}"
        if len(name) > MAX_TOOL_NAME:
            raise InputError(f"tool name {name!r} is longer than {MAX_TOOL_NAME} characters; "
                             "give the server a shorter name")
        check_tool_name(name, f"MCP server {server_name!r}")
        if name in out:
            raise InputError(f"MCP server {server_name!r}: tools {out[name][1]!r} and {tool['name']!r} would both "
                             f"be registered as {name!r}")
        out[name] = (ToolSpec(name=name, description=tool["description"], kind="external", title=tool["title"],
                              parameters=tool["input_schema"]), tool["name"])
    return out


def list_tools(server: McpServer, timeout: float = LIST_TIMEOUT) -> Listing:
    """Start or reach the server and list every tool it offers (all pages)."""

    async def work(client: Any) -> Listing:
        raw: list[Any] = []
        cursor = None
        for _ in range(MAX_PAGES):
            page = await client.list_tools(cursor=cursor)
            raw.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        info = client.server_info
        return Listing(getattr(info, "name", None), _check_tools(raw, server))

    return _run_sync(lambda: _session(server, timeout, work))


def call_tool(server: McpServer, remote: str, arguments: dict[str, Any], timeout: float = CALL_TIMEOUT) -> CallOutcome:
    """Call ``remote`` on the server; a transport failure (including the server dying) is a ``RemoteError``."""
    return _run_sync(lambda: acall_tool(server, remote, arguments, timeout))


async def acall_tool(server: McpServer, remote: str, arguments: dict[str, Any],
                     timeout: float = CALL_TIMEOUT) -> CallOutcome:
    async def work(client: Any) -> CallOutcome:
        result = await client.call_tool(remote, arguments)
        parts = []
        for block in result.content or []:
            text = getattr(block, "text", None)
            parts.append(text if isinstance(text, str) else f"[{getattr(block, 'type', 'content')} content]")
        return CallOutcome("\n".join(parts), bool(result.is_error), result.structured_content)

    return await _session(server, timeout, work, action=f"calling {remote!r}")


def sync_server(catalog: Catalog, server: McpServer, embed: Callable[[list[str]], list[list[float]]],
                timeout: float = LIST_TIMEOUT, replace: bool = True) -> dict[str, Any]:
    """List the server's tools and make the catalog hold exactly them (all or nothing); unnamed servers are
    named after what they call themselves. Without ``replace``, a name registered for another command or
    URL is refused."""
    listing = list_tools(server, timeout)
    if not server.name:
        server = server.named(default_server_name(listing, server))
    known = next((row for row in catalog.sources() if row["name"] == server.name), None)
    if not replace and known is not None and known != server.to_row():
        where = McpServer.from_row(known).where() if known["transport"] in ("stdio", "http") else "an OpenAPI document"
        raise CatalogError(f"MCP server {server.name!r} is already registered as {where}; use --replace "
                           "or another server name")
    report = catalog.sync_server(server.to_row(), to_specs(server.name, listing), embed)
    return {"server": server.name, **report}


def registered_servers(catalog: Catalog) -> dict[str, McpServer]:
    """The MCP servers among the catalog's sources (the same table holds OpenAPI documents, ``openapi_source``)."""
    return {row["name"]: McpServer.from_row(row) for row in catalog.sources()
            if row["transport"] in ("stdio", "http")}


# ---- internals -------------------------------------------------------------------------------------
def _check_tools(raw: list[Any], server: McpServer) -> list[dict[str, Any]]:
    """A listing the catalog can hold, or a ``RemoteError`` naming the first thing wrong with it."""
    tools, seen = [], set()
    for tool in raw:
        name = getattr(tool, "name", None)
        if not isinstance(name, str) or not re.match(r"^[^\x00-\x1f\x7f]+$", name) or name in seen:
            raise RemoteError(f"MCP server {server.where()} listed an invalid or repeated tool name {name!r}")
        seen.add(name)
        schema = getattr(tool, "input_schema", None)
        if schema is not None and not isinstance(schema, dict):
            raise RemoteError(f"MCP server {server.where()}: the input schema of {name!r} is not a JSON object")
        title = getattr(tool, "title", None) or name
        description = " ".join(str(getattr(tool, "description", None) or title).split())[:MAX_DESCRIPTION]
        tools.append({"name": name, "description": description, "title": title, "input_schema": schema or None})
    return tools


async def _session(server: McpServer, timeout: float, work: Callable[[Any], Awaitable[_T]],
                   action: str = "listing its tools") -> _T:
    """Open one client session, run ``work`` in it, close it; every failure becomes one ``RemoteError`` line."""
    from mcp import Client, StdioServerParameters  # the SDK is heavy; only MCP users pay for importing it

    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errlog:
        try:
            with anyio.fail_after(timeout):
                if server.transport == "stdio":
                    params = StdioServerParameters(command=server.command[0], args=list(server.command[1:]),
                                                   cwd=server.cwd)
                    from mcp.client.stdio import stdio_client

                    target: Any = stdio_client(params, errlog=errlog)
                else:
                    target = server.url
                async with Client(target, read_timeout_seconds=timeout, mode="legacy") as client:
                    return await work(client)
        except RemoteError:
            raise
        except TimeoutError as exc:
            raise RemoteError(f"MCP server {server.where()} did not answer within {timeout:g}s while {action}") from exc
        except Exception as exc:
            leaf = _leaf(exc)
            errlog.seek(0)
            last = [line.strip() for line in errlog.read().splitlines() if line.strip()][-1:]
            detail = f"; its last stderr line: {last[0][:200]}" if last else ""
            raise RemoteError(f"MCP server {server.where()} failed while {action}: "
                              f"{type(leaf).__name__}: {_first_line(leaf)}{detail}") from exc


def _leaf(exc: BaseException) -> BaseException:
    """The first real exception inside (nested) exception groups: anyio wraps transport failures in them."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else "no message"


def _run_sync(make: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine to completion from sync code, also when this thread already runs an event loop (the
    agent's): then it runs on a fresh loop in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(make)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(anyio.run, make).result()
