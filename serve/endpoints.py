"""The service's endpoints, by concern: health, routing and answering, the catalog, model versions.

Each group is an ``APIRouter`` built over the shared ``Service`` and the two key scopes, so ``create_app``
only assembles them. Every answer is built by the router layer (``router.payloads``), so the JSON matches
the CLI's ``--json``; blocking work runs in the thread pool and writes go through ``Service.write``.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Annotated, Any, Literal, Sequence

from fastapi import APIRouter, Body, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.params import Depends
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from agentic_router.indexes.errors import InputError
from agentic_router.indexes.schema import TOOL_KINDS, ToolSpec
from agentic_router.indexes.sources.documents import SourceDocument, document_from_row
from agentic_router.indexes.sources.external import specs_from_rows
from agentic_router.router.payloads import (
    MAX_CALL_ID,
    ROUTE_FORMATS,
    check_call_id,
    check_kinds,
    fetch_size,
    keep_kinds,
    models_json,
    route_json,
    tools_json,
)
from agentic_router.router.versions.registry import BASE
from agentic_router.serve.limits import Limits, UnsupportedUpload, parse_multipart
from agentic_router.serve.metrics import Metrics
from agentic_router.serve.service import Service

Scope = Sequence[Depends]  # the dependencies that check a request's key: read or admin


class RouteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    query: str = Field(description="The request to route (at most 10,000 characters).")
    k: Annotated[int, Field(ge=1, le=100)] | Literal["auto"] = Field(
        5, description="How many tools to return, or \"auto\": those close to the best one (at most k_max; none "
                       "when no tool fits).")
    rerank: int | None = Field(None, ge=1, le=100, description="Reorder the top N with the active cross-encoder.")
    kinds: list[Literal[TOOL_KINDS]] | None = Field(None, description="Keep only tools of these kinds.")  # type: ignore[valid-type]
    format: Literal[ROUTE_FORMATS] = Field(  # type: ignore[valid-type]
        "json", description="json: `{query, tools, abstain}`; openai: a Chat Completions `tools` array; anthropic / "
                            "openai-tool-search: the result of a client-side search tool over deferred tools.")
    call_id: str | None = Field(None, min_length=1, max_length=MAX_CALL_ID,
                                description="anthropic / openai-tool-search: the id of the model's search-tool "
                                            "call, echoed in the result.")


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    query: str = Field(description="The question to answer (at most 10,000 characters).")
    mode: Literal["agent", "direct"] | None = Field(None, description="Default depends on the configured LLM.")
    k: int | None = Field(None, ge=1, le=50, description="Tools offered to the agent.")


def health_routes(service: Service, read: Scope, admin: Scope, metrics: Metrics) -> APIRouter:
    """Liveness, readiness and Prometheus metrics."""
    api, router = APIRouter(), service.router

    @api.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process answers (says nothing about the models)."""
        return {"status": "ok"}

    @api.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """Ready once the embedder is loaded and the catalog is readable."""
        if not service.ready.is_set():
            return JSONResponse({"ready": False, "reason": service.not_ready_reason}, status_code=503)
        try:
            counts = {"tools": router.catalog.count_tools(), "documents": router.catalog.count_documents()}
        except Exception as exc:  # noqa: BLE001 - not ready is the answer, whatever broke
            return JSONResponse({"ready": False, "reason": f"catalog unreadable: {exc}".splitlines()[0]}, 503)
        view = router.view  # what requests use now; ``active`` is what the registry names
        serving = {"embedder": view.embedder_version, "reranker": view.reranker_version}
        return JSONResponse({"ready": True, **counts, "active": router.registry.active(), "serving": serving,
                             "activating": service.activating, "process": os.getpid(),
                             "state": router.workspace.db.health()})

    @api.get("/metrics", tags=["health"], dependencies=read)
    def metrics_endpoint() -> Response:
        """Prometheus text format: requests and latency per route, catalog size."""
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)
    return api


def routing_routes(service: Service, read: Scope, admin: Scope) -> APIRouter:
    """Routing a request, and answering it through the routed tools."""
    api, router = APIRouter(), service.router

    @api.post("/v1/route", tags=["routing"], dependencies=read)
    async def route(req: RouteRequest) -> JSONResponse:
        """The same JSON as `agentic-router route --json`: `{query, tools, abstain}`; with `format`, the same
        as `route --format FORMAT` (docs/cli.md)."""
        auto = req.k == "auto"
        kinds, k = check_kinds(req.kinds), router.config.k_max if auto else int(req.k)
        check_call_id(req.call_id, req.format)
        routed = await asyncio.wrap_future(service.routes.submit(req.query, fetch_size(k, kinds), req.rerank))
        hits = keep_kinds(routed, kinds, k)
        hits = router.auto_k(hits) if auto else hits
        if req.format == "json":
            return JSONResponse(route_json(req.query, hits, router.abstains(hits)))
        return JSONResponse(await run_in_threadpool(router.format_route, req.query, hits, req.format, req.call_id))

    @api.post("/v1/query", tags=["routing"], dependencies=read)
    def query(req: QueryRequest) -> JSONResponse:
        """The same JSON as `agentic-router query --json`: answer, tools offered and called, sources."""
        if router.config.llm_provider == "none":
            result = router.query(req.query, mode=req.mode, k=req.k)
        else:
            with service.answer_lock:
                result = router.query(req.query, mode=req.mode, k=req.k)
        return JSONResponse(result.to_dict())
    return api


def catalog_routes(service: Service, read: Scope, admin: Scope) -> APIRouter:
    """Listing, adding and deleting tools and documents (writes need the admin key)."""
    api, router = APIRouter(), service.router

    @api.get("/v1/tools", tags=["catalog"], dependencies=read)
    def list_tools(kind: Literal[TOOL_KINDS] | None = None, offset: int = Query(0, ge=0),  # type: ignore[valid-type]
                   limit: int | None = Query(None, ge=1)) -> JSONResponse:
        """The same JSON as `agentic-router tools list --json`; `X-Total-Count` holds the catalog's size."""
        specs = router.list_tools(kind)
        page = specs[offset:offset + limit] if limit else specs[offset:]
        return JSONResponse(tools_json(page), headers={"X-Total-Count": str(len(specs))})

    @api.post("/v1/tools", tags=["catalog"], dependencies=admin)
    def add_tools(rows: list[dict[str, Any]] = Body(..., description="Rows as `tools add` reads them."),
                  replace: bool = False) -> JSONResponse:
        """Register application tools (all or none): `{name, description, parameters?}` or OpenAI schemas."""
        if len(rows) > service.limits.max_rows:
            raise InputError(f"{len(rows):,} rows in one request; the limit is {service.limits.max_rows:,}")
        specs = _specs_from_rows(rows)
        report = service.write(lambda: router.add_tools(specs, replace=replace))
        return JSONResponse(report.to_dict())

    @api.delete("/v1/tools/{name:path}", tags=["catalog"], dependencies=admin)
    def delete_tool(name: str) -> JSONResponse:
        """Remove an application tool; a document's tools go with `DELETE /v1/documents/{doc_id}`."""
        def remove() -> list[str]:
            if router.catalog.get_tool(name) is None:
                raise HTTPException(404, f"unknown tool {name!r}")
            return router.delete_tools([name])
        return JSONResponse({"deleted": service.write(remove)})

    @api.get("/v1/documents", tags=["catalog"], dependencies=read)
    def list_documents() -> JSONResponse:
        """Every ingested document: doc_id, title, source, number of chunks."""
        return JSONResponse([{k: d[k] for k in ("doc_id", "title", "source", "n_chunks")}
                             for d in router.list_documents()])

    @api.post("/v1/documents", tags=["catalog"], dependencies=admin, openapi_extra=_DOCUMENTS_BODY)
    async def add_documents(request: Request, replace: bool = False) -> JSONResponse:
        """Ingest documents: a JSON array of `{doc_id?, title?, text}` rows, or files as multipart/form-data
        (txt, md, html, pdf, jsonl). Each document commits whole or not at all."""
        content_type = request.headers.get("content-type", "")
        body = await request.body()
        if content_type.startswith("multipart/form-data"):  # parsing megabytes: off the event loop too
            files = await run_in_threadpool(parse_multipart, content_type, body, service.limits)
            docs = await run_in_threadpool(service.load_uploads, files)
        elif content_type.startswith("application/json") or not content_type:
            docs = await run_in_threadpool(_documents_from_json, body, service.limits)
        else:
            raise UnsupportedUpload(f"unsupported content type {content_type.split(';')[0]!r}; send "
                                    "application/json rows or multipart/form-data files")
        report = await run_in_threadpool(service.write, lambda: router.ingest(docs, replace=replace))
        return JSONResponse(report.to_dict())

    @api.delete("/v1/documents/{doc_id:path}", tags=["catalog"], dependencies=admin)
    def delete_document(doc_id: str) -> JSONResponse:
        """Remove a document with its three tools, its chunks and its indexes (all or none)."""
        def remove() -> list[str]:
            if router.catalog.get_document(doc_id) is None:
                raise HTTPException(404, f"unknown document {doc_id!r}")
            return router.delete_document(doc_id)
        return JSONResponse({"deleted": doc_id, "tools": service.write(remove)})
    return api


class OpenApiRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: str = Field(description="An http(s) URL of an OpenAPI 3 document (the service never reads its own files).")
    name: str | None = Field(None, description="The source's name, the tools' prefix (default: the document's title).")
    base_url: str | None = Field(None, description="Where the API is (default: the document's first server).")
    auth_env: str | None = Field(None, description="An environment variable of the service whose value is sent as a "
                                                   "bearer token, read at call time and never stored.")
    timeout: float | None = Field(None, gt=0, le=300, description="Seconds per call (default 30).")
    replace: bool = Field(False, description="Replace a source of the same name registered with other settings.")


class CallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    arguments: dict[str, Any] = Field(default_factory=dict, description="Checked against the tool's input schema.")


def source_routes(service: Service, read: Scope, admin: Scope) -> APIRouter:
    """Tool sources (OpenAPI documents; MCP servers are registered from the CLI or Python) and calling a tool
    where it lives. Both need the admin key: a call acts on the world, as MCP's ``call_tool`` does."""
    api, router = APIRouter(), service.router

    @api.post("/v1/sources/openapi", tags=["sources"], dependencies=admin)
    def add_openapi(req: OpenApiRequest) -> JSONResponse:
        """Register every operation of an OpenAPI 3 document as `NAME__operationId` (all or none), as
        `tools add --openapi` does: `{server, added, changed, unchanged, removed, skipped}`."""
        if not req.url.startswith(("http://", "https://")):
            raise InputError("url must be an http(s) URL of an OpenAPI document; the service does not read its own files")
        return JSONResponse(service.write(lambda: router.add_openapi(
            req.url, name=req.name, base_url=req.base_url, auth_env=req.auth_env, timeout=req.timeout,
            replace=req.replace)))

    @api.post("/v1/sources/sync", tags=["sources"], dependencies=admin)
    def sync_sources(name: str | None = None) -> JSONResponse:
        """Read registered MCP servers and OpenAPI documents again (or only `name`), as `tools sync` does; a
        source that fails says so in its row and keeps its tools."""
        return JSONResponse(service.write(lambda: router.sync_sources(name)))

    @api.post("/v1/tools/{name}/call", tags=["sources"], dependencies=admin)
    async def call_tool(name: str, req: CallRequest) -> JSONResponse:
        """Run a tool where it lives (its API, MCP server, document index or Python function), arguments checked
        against its input schema before anything is sent: `{tool, is_error, content, structured}`."""
        return JSONResponse(await run_in_threadpool(router.call_tool, name, req.arguments))

    return api


def model_routes(service: Service, read: Scope, admin: Scope) -> APIRouter:
    """Model versions: listing them, and activating one without stopping the service."""
    api, router = APIRouter(), service.router

    @api.get("/v1/models", tags=["models"], dependencies=read)
    def list_models() -> JSONResponse:
        """The same JSON as `agentic-router models list --json`: `{active, versions}`."""
        return JSONResponse(models_json(router.registry))

    @api.post("/v1/models/{name}/activate", tags=["models"], dependencies=admin)
    def activate(name: str) -> JSONResponse:
        """Make a version (or `base`) active without stopping: requests keep being served by the previous
        version until the new one is complete and loaded, then switch over."""
        def switch() -> dict[str, Any]:
            if name != BASE and name not in {v.name for v in router.registry.list()}:
                raise HTTPException(404, f"unknown model {name!r}")
            service.activating = name
            try:
                return router.activate(name)
            finally:
                service.activating = None
        return JSONResponse(service.write(switch))
    return api


def _specs_from_rows(rows: list[dict[str, Any]]) -> list[ToolSpec]:
    specs = specs_from_rows((f"row {i}", row) for i, row in enumerate(rows))
    if not specs:
        raise InputError("no tool rows; send a JSON array of {name, description, parameters?}")
    return specs


def _documents_from_json(body: bytes, limits: Limits) -> list[SourceDocument]:
    if not body.strip():
        raise HTTPException(400, "the request body is empty; send a JSON array of {doc_id?, title?, text}")
    try:
        rows = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPException(400, f"malformed JSON: {exc}".splitlines()[0]) from exc
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise InputError("send a non-empty JSON array of {doc_id?, title?, text} objects")
    if len(rows) > limits.max_rows:
        raise InputError(f"{len(rows):,} rows in one request; the limit is {limits.max_rows:,}")
    docs: dict[str, SourceDocument] = {}
    for i, row in enumerate(rows):
        doc = document_from_row(row, where=f"row {i}", source=f"http:row {i}")
        if doc.doc_id in docs and docs[doc.doc_id].content_hash != doc.content_hash:
            raise InputError(f"row {i}: doc_id {doc.doc_id!r} is given twice with different content")
        docs[doc.doc_id] = doc
    return list(docs.values())


_DOCUMENTS_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "array", "items": {"type": "object", "required": ["text"], "properties": {
        "doc_id": {"type": "string"}, "title": {"type": "string"}, "text": {"type": "string"}}}}},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
}}}
