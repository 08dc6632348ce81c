"""OpenAPI documents as a source of tools: read a document, turn each operation into a catalog row, call one.

An OpenAPI 3 document (a file or an http(s) URL, JSON or YAML) is registered under a source name; each of its
operations becomes the external tool ``NAME__operationId`` (or a name built from the method and the path when
the operation has no id), described by its summary and description, with an input schema made of its path,
query and header parameters and its JSON request body. Sources live in the catalog's server table beside the
MCP servers (``transport = "openapi"``), and each tool's row there keeps how to send its request (method, URL
template, where each argument goes), so a call needs no second read of the document.

Why the base URL is pinned at registration: the bearer token named by ``--auth-env`` goes wherever the base
URL points, and a document that later names another server must not redirect the token; ``tools sync``
re-reads the operations, not the host. The token itself is read from the environment at call time and never
written anywhere.

A document that cannot be read, is not OpenAPI 3, has a ``$ref`` cycle or yields an invalid name raises one
``InputError``/``RemoteError`` line before anything is written: nothing is half-registered.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx

from agentic_router.indexes.errors import CatalogError, InputError, RemoteError
from agentic_router.indexes.schema import MAX_TOOL_NAME, ToolSpec, check_tool_name, safe_tool_name, stable_hash
from agentic_router.indexes.sources.mcp_servers import MAX_DESCRIPTION, SEP, CallOutcome, check_server_name
from agentic_router.indexes.sources.openapi_schema import input_schema, resolve
from agentic_router.indexes.storage.catalog import Catalog

TRANSPORT = "openapi"
FETCH_TIMEOUT = 30.0  # seconds to fetch a document
DEFAULT_TIMEOUT = 30.0  # seconds for one API call
MAX_TIMEOUT = 600.0
MAX_DOCUMENT = 20_000_000  # bytes of a document read
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_URL = re.compile(r"^https?://[^\s/]+")


@dataclass(frozen=True)
class OpenApiSource:
    """One registered document: where it is read from, where its requests go and which variable holds the token."""

    name: str
    spec: str  # an absolute file path or an http(s) URL
    base_url: str | None = None  # None until resolved from the document at registration
    auth_env: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def create(cls, spec: str | Path, name: str | None = None, base_url: str | None = None,
               auth_env: str | None = None, timeout: float | None = None) -> OpenApiSource:
        """A source checked for everything that can be checked before reading the document."""
        location = str(spec or "").strip()
        if not location:
            raise InputError("the OpenAPI document is empty: give a file path or an http(s) URL")
        if not _URL.match(location):
            path = Path(location).expanduser()
            if not path.is_file():
                raise InputError(f"OpenAPI document {location!r} is neither an http(s) URL nor a readable file")
            location = str(path.resolve())
        if base_url is not None and not _URL.match(base_url):
            raise InputError(f"a base URL must start with http:// or https://, not {base_url!r}")
        if auth_env is not None and not _ENV_NAME.match(auth_env):
            raise InputError(f"--auth-env takes the name of an environment variable, not {auth_env[:40]!r}")
        timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
        if not 0 < timeout <= MAX_TIMEOUT:
            raise InputError(f"the call timeout must lie in (0, {MAX_TIMEOUT:g}] seconds, not {timeout:g}")
        return cls(check_server_name(name) if name else "", location, base_url.rstrip("/") if base_url else None,
                   auth_env, timeout)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> OpenApiSource:
        target = json.loads(row["target"])
        return cls(row["name"], target["spec"], target.get("base_url"), target.get("auth_env"),
                   float(target.get("timeout") or DEFAULT_TIMEOUT))

    def to_row(self) -> dict[str, Any]:
        target = {"spec": self.spec, "base_url": self.base_url, "auth_env": self.auth_env, "timeout": self.timeout}
        return {"name": self.name, "transport": TRANSPORT, "target": json.dumps(target, sort_keys=True), "cwd": None}

    def where(self) -> str:
        return f"OpenAPI document {self.spec}"


def load_document(location: str) -> dict[str, Any]:
    """The parsed document (JSON, else YAML), checked to be OpenAPI 3 with a ``paths`` object."""
    if _URL.match(location):
        raw = _fetch(location)
    else:
        path = Path(location)
        try:
            if path.stat().st_size > MAX_DOCUMENT:
                raise InputError(f"OpenAPI document {location} is larger than {MAX_DOCUMENT // 1_000_000} MB")
            raw = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read OpenAPI document {location}: {exc.strerror or exc}") from exc
    text = raw.decode("utf-8", errors="replace")
    try:
        doc = json.loads(text)
    except ValueError:
        import yaml  # a dependency of transformers; only YAML documents need it

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"OpenAPI document {location} is neither JSON nor YAML: "
                             f"{str(exc).splitlines()[0][:200]}") from exc
    if not isinstance(doc, dict):
        raise InputError(f"OpenAPI document {location} is not a JSON object")
    version = str(doc.get("openapi") or "")
    if not version.startswith("3."):
        found = f"Swagger {doc['swagger']}" if "swagger" in doc else f"openapi {version!r}" if version else "no version"
        raise InputError(f"{location} is not an OpenAPI 3 document ({found}); only OpenAPI 3.x is read")
    if not isinstance(doc.get("paths"), dict):
        raise InputError(f"OpenAPI document {location} has no 'paths' object")
    return doc


def base_url_of(doc: dict[str, Any], location: str) -> str:
    """The document's first server URL with its variables at their defaults, relative ones resolved against
    the document's own URL (no ``servers``: where the document is served, as OpenAPI says)."""
    servers = doc.get("servers")
    first = servers[0] if isinstance(servers, list) and servers and isinstance(servers[0], dict) else {}
    url = str(first.get("url") or "")
    for var, spec in (first.get("variables") or {}).items():
        if isinstance(spec, dict):
            url = url.replace("{" + str(var) + "}", str(spec.get("default", "")))
    if not _URL.match(url):
        if not _URL.match(location):
            raise InputError(f"OpenAPI document {location} names no absolute server URL; give --base-url")
        url = urljoin(location, url or "/")
    return url.rstrip("/")


def default_source_name(doc: dict[str, Any]) -> str:
    """The document's ``info.title`` made identifier-safe (``Pet Store API`` -> ``Pet_Store_API``)."""
    title = str((doc.get("info") or {}).get("title") or "")
    name = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_-]+", "_", title)).strip("_-")[:32].strip("_-")
    return name or "api"


def to_specs(source: OpenApiSource, doc: dict[str, Any]) -> tuple[dict[str, tuple[ToolSpec, str]], list[str]]:
    """Catalog name -> (external ToolSpec, the operation's request plan as JSON), and the operations left out
    (with why). Two operations that would share a catalog name refuse the document, naming both."""
    assert source.base_url, "the base URL is resolved before the operations are read"
    out: dict[str, tuple[ToolSpec, str]] = {}
    origin: dict[str, str] = {}
    skipped: list[str] = []
    for path, item in doc["paths"].items():
        item = resolve(item, doc, source.spec, shallow=True) if isinstance(item, dict) else None
        if not isinstance(item, dict):
            raise InputError(f"{source.where()}: path {str(path)[:80]!r} is not an object")
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            label = f"{method.upper()} {path}"
            shared = item.get("parameters") or []
            schema, plan, reason = input_schema(op, shared, doc, source.spec, label)
            if reason:
                skipped.append(f"{label}: {reason}")
                continue
            name = _catalog_name(source.name, op.get("operationId"), method, str(path))
            check_tool_name(name, source.where())
            if name in out:
                raise InputError(f"{source.where()}: operations {origin[name]} and {label} would both be "
                                 f"registered as {name!r}")
            origin[name] = label
            plan.update(method=method.upper(), url=source.base_url + str(path))
            summary = " ".join(str(op.get("summary") or "").split())
            detail = " ".join(str(op.get("description") or "").split())
            text = (summary + (". " if summary and not summary.endswith((".", "!", "?")) else " ") + detail).strip()
            out[name] = (ToolSpec(name=name, description=(text or label)[:MAX_DESCRIPTION], kind="external",
                                  title=summary or str(op.get("operationId") or label), parameters=schema),
                         json.dumps(plan, sort_keys=True))
    return out, skipped


def sync_source(catalog: Catalog, source: OpenApiSource, embed: Callable[[list[str]], list[list[float]]],
                replace_source: bool = True) -> dict[str, Any]:
    """Read the document and make the catalog hold exactly its operations (all or nothing). A new source gets
    its name from the document's title and its base URL from the document unless given; without
    ``replace_source`` a name registered with other settings is refused."""
    doc = load_document(source.spec)
    if source.base_url is None:
        source = replace(source, base_url=base_url_of(doc, source.spec))
    if not source.name:
        source = replace(source, name=check_server_name(default_source_name(doc)))
    if source.auth_env and not _safe_for_token(source.base_url or ""):
        raise InputError(f"OpenAPI source {source.name!r}: a bearer token is sent only over https (or to a loopback "
                         f"host), not to {source.base_url}")
    known = next((row for row in catalog.sources() if row["name"] == source.name), None)
    if not replace_source and known is not None and known != source.to_row():
        where = OpenApiSource.from_row(known).where() if known["transport"] == TRANSPORT else "an MCP server"
        raise CatalogError(f"source {source.name!r} is already registered as {where} with other settings; use "
                           "--replace or another server name")
    tools, skipped = to_specs(source, doc)
    report = catalog.sync_server(source.to_row(), tools, embed)
    return {"server": source.name, **report, "skipped": skipped}


def registered_sources(catalog: Catalog) -> dict[str, OpenApiSource]:
    return {row["name"]: OpenApiSource.from_row(row) for row in catalog.sources() if row["transport"] == TRANSPORT}


# ---- calling -----------------------------------------------------------------------------------------
def call_operation(source: OpenApiSource, plan: str, arguments: dict[str, Any]) -> CallOutcome:
    """Send the operation's request (arguments already validated); an HTTP error status is the tool's own
    error (``is_error``), a request that cannot be made or times out is a ``RemoteError``."""
    method, url, kwargs = _request(source, plan, arguments)
    try:
        with httpx.Client(timeout=source.timeout, follow_redirects=False) as client:
            response = client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise RemoteError(f"{method} {url} did not answer within {source.timeout:g}s") from exc
    except httpx.HTTPError as exc:
        raise RemoteError(f"{method} {url} failed: {type(exc).__name__}: {_first_line(exc)}") from exc
    return _outcome(response)


async def acall_operation(source: OpenApiSource, plan: str, arguments: dict[str, Any]) -> CallOutcome:
    """``call_operation`` for the agent's event loop."""
    method, url, kwargs = _request(source, plan, arguments)
    try:
        async with httpx.AsyncClient(timeout=source.timeout, follow_redirects=False) as client:
            response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise RemoteError(f"{method} {url} did not answer within {source.timeout:g}s") from exc
    except httpx.HTTPError as exc:
        raise RemoteError(f"{method} {url} failed: {type(exc).__name__}: {_first_line(exc)}") from exc
    return _outcome(response)


def _request(source: OpenApiSource, plan_json: str, arguments: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """Method, URL and httpx keyword arguments; the token is read here, at call time, and only sent."""
    plan = json.loads(plan_json)
    url: str = plan["url"]
    query: list[tuple[str, str]] = []
    headers = {"accept": "application/json"}
    for arg, (where, wire) in plan["params"].items():
        if arg not in arguments or arguments[arg] is None:
            continue
        value = arguments[arg]
        if where == "path":
            url = url.replace("{" + wire + "}", quote(_text(value), safe=""))
        elif where == "query":
            query.extend((wire, _text(v)) for v in (value if isinstance(value, list) else [value]))
        else:
            headers[wire] = _text(value)
    kwargs: dict[str, Any] = {"params": query}
    body = plan.get("body")
    if isinstance(body, str) and body in arguments:  # the body as one argument
        kwargs["json"] = arguments[body]
    elif isinstance(body, list):
        fields = {k: arguments[k] for k in body if k in arguments}
        if fields or plan.get("body_required"):
            kwargs["json"] = fields
    if source.auth_env:
        token = os.environ.get(source.auth_env, "").strip()
        if not token:
            raise InputError(f"environment variable {source.auth_env} is not set: it holds the bearer token of "
                             f"OpenAPI source {source.name!r}")
        headers["authorization"] = f"Bearer {token}"
    kwargs["headers"] = headers
    return plan["method"], url, kwargs


def _outcome(response: httpx.Response) -> CallOutcome:
    structured = None
    if "json" in response.headers.get("content-type", ""):
        try:
            structured = response.json()
        except ValueError:
            structured = None
    text = response.text
    if response.status_code >= 400:
        detail = " ".join(text.split())[:500] or "no body"
        return CallOutcome(f"HTTP {response.status_code} {response.reason_phrase}: {detail}", True, structured)
    return CallOutcome(text, False, structured)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _catalog_name(source: str, operation_id: Any, method: str, path: str) -> str:
    """``SOURCE__operationId`` made valid, else ``SOURCE__get_items_by_item_id`` for ``GET /items/{item_id}``;
    a name over 64 characters is cut and keeps a short hash of the whole, so two long names stay apart."""
    if isinstance(operation_id, str) and operation_id.strip():
        local = safe_tool_name(operation_id)
    else:
        parts = [method]
        for segment in path.strip("/").split("/"):
            found = re.fullmatch(r"\{(.+)\}", segment)
            parts.append(f"by_{found.group(1)}" if found else segment)
        local = safe_tool_name("_".join(p for p in parts if p))
    name = f"{source}{SEP}{local}"
    if len(name) > MAX_TOOL_NAME:
        name = f"{name[:MAX_TOOL_NAME - 7].rstrip('_-')}_{stable_hash(local, length=6)}"
    return name


def _safe_for_token(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _fetch(url: str) -> bytes:
    try:
        headers = {"accept": "application/json, application/yaml"}
        with httpx.Client(timeout=FETCH_TIMEOUT, follow_redirects=True) as client, \
                client.stream("GET", url, headers=headers) as response:
            if response.status_code >= 400:
                raise RemoteError(f"cannot fetch OpenAPI document {url}: HTTP {response.status_code}")
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_DOCUMENT:
                    raise InputError(f"OpenAPI document {url} is larger than {MAX_DOCUMENT // 1_000_000} MB")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.TimeoutException as exc:
        raise RemoteError(f"cannot fetch OpenAPI document {url}: no answer within {FETCH_TIMEOUT:g}s") from exc
    except httpx.HTTPError as exc:
        raise RemoteError(f"cannot fetch OpenAPI document {url}: {type(exc).__name__}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else "no message"
