"""The HTTP service: a thin FastAPI shell over ``AgenticRouter`` (``agentic-router serve``; docs at /docs).

Every answer is built by the router layer (``router.payloads``), so ``POST /v1/route`` returns exactly what
``agentic-router route --json`` prints. What this module adds is what a network needs: keys and scopes
(``serve.auth``), request bounds (``serve.limits``), metrics (``serve.metrics``), JSON refusals
(``serve.errors``) and concurrency.

Concurrency: the router is not safe for concurrent writes, so writes (ingest, tools, deletions, model
activation) take one lock while reads (route, query, listings) go on beside them. Every blocking call runs
in the thread pool, never on the event loop. A model activation fills the new version's collections under
the write lock and then swaps the router's view in one assignment, so no request fails or waits for it.
Tool descriptions and document text are only ever stored, embedded and returned: data, never instructions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import tempfile
import threading
from contextlib import asynccontextmanager
from dataclasses import replace as dc_replace
from pathlib import Path
from typing import Annotated, Any, AsyncIterator, Callable, Literal, TypeVar

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field

from agentic_router.indexes.documents import SourceDocument, document_from_row, load_paths
from agentic_router.indexes.errors import InputError
from agentic_router.indexes.external import specs_from_rows
from agentic_router.indexes.schema import TOOL_KINDS, ToolSpec
from agentic_router.router.app import AgenticRouter
from agentic_router.router.batching import RoutePipeline
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
from agentic_router.router.registry import BASE
from agentic_router.serve.auth import ADMIN, READ, ApiKeys
from agentic_router.serve.errors import ContainErrors, install_error_handlers
from agentic_router.serve.limits import BodyLimitMiddleware, Limits, UnsupportedUpload, parse_multipart
from agentic_router.serve.metrics import Metrics, MetricsMiddleware

logger = logging.getLogger(__name__)
T = TypeVar("T")
UPLOADS = "uploads"  # inside the workspace: uploads are read from here, then removed
SERVE_ENV = "AGENTIC_ROUTER_SERVE"  # how `serve --workers N` tells each worker what to open
SERVICE_BATCH_MS = 2.0  # micro-batching window for question embeddings when the service opens the workspace


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


class Service:
    """What the endpoints share: the router, its write lock, and whether it is ready."""

    def __init__(self, router: AgenticRouter, keys: ApiKeys, limits: Limits) -> None:
        self.router = router
        self.keys = keys
        self.limits = limits
        self.write_lock = threading.Lock()
        self.answer_lock = threading.Lock()  # a local LLM generates for one request at a time
        self.ready = threading.Event()
        self.activating: str | None = None  # the version being switched to, shown by /readyz
        self.not_ready_reason = "loading the embedder"
        # /v1/route: encoded in batches and ranked by two worker threads, awaited by the event loop
        self.routes = RoutePipeline(lambda: router.view, router.config.query_batch_ms)

    def warm(self) -> None:
        """Load the embedder and the BM25 indexes before the first request needs them (readiness)."""
        try:
            _remove_orphan_uploads(self.router.config.workspace / UPLOADS)
            self.router.view.query_embedder  # noqa: B018
            if self.router.catalog.count_tools():
                self.router.route("warm up the question encoder and the BM25 indexes", 1)
            self.ready.set()
        except Exception as exc:  # noqa: BLE001 - reported by /readyz, one line
            self.not_ready_reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            logger.error("the service cannot become ready: %s", self.not_ready_reason)

    def write(self, fn: Callable[[], T]) -> T:
        with self.write_lock:
            return fn()

    def follow(self, stop: threading.Event) -> None:
        """With a catalog shared by replicas: switch to the model version and routing weights another replica
        activated, loading them here, off the request path (requests keep the old view until then)."""
        period = max(0.2, self.router.config.replica_sync_ms / 1000.0)
        while not stop.wait(period):
            if not self.ready.is_set():
                continue
            try:
                with self.write_lock:
                    self.router.follow_active()
            except Exception as exc:  # noqa: BLE001 - a bad version elsewhere must not stop this replica
                logger.warning("cannot follow the shared active model: %s", str(exc).splitlines()[0])

    def load_uploads(self, files: list[tuple[str, bytes]]) -> list[SourceDocument]:
        """Read uploaded files with the document loader, from a folder inside the workspace."""
        root = self.router.config.workspace / UPLOADS / str(os.getpid())  # workers of one service share the workspace
        root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=root))
        names = {str(folder / str(i) / name): name for i, (name, _) in enumerate(files)}

        def as_uploaded(text: str) -> str:  # name the upload, not the folder it was read from
            for path, name in names.items():
                text = text.replace(path, name)
            return text

        try:
            for path in names:
                Path(path).parent.mkdir()
            for path, (_, data) in zip(names, files):
                Path(path).write_bytes(data)
            try:
                docs = load_paths(list(names))
            except InputError as exc:
                raise InputError(as_uploaded(str(exc))) from exc
            return [dc_replace(d, source="upload:" + as_uploaded(d.source)) for d in docs]
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _remove_orphan_uploads(root: Path) -> None:
    """Uploads left by a process that crashed mid-request (each process reads its own ``uploads/<pid>``;
    folders of live processes, other workers of this service, stay)."""
    if not root.is_dir():
        return
    for folder in root.iterdir():
        alive = folder.name.isdigit() and int(folder.name) != os.getpid() and _alive(int(folder.name))
        if not alive:
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def limit_cpu_threads(threads: int) -> None:
    """Give torch and the BLAS numpy calls ``threads`` threads each: the service's parallelism comes from
    concurrent requests. Sixteen request threads each asking a two-thread OpenBLAS for the card scan made
    /v1/route twice as slow at 10k tools (66 vs 139 requests/s); torch's second thread did the same to the
    encoder earlier (bench_http.py: 10 vs 56 requests/s at 1,000 tools)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads, user_api="blas")


def app_from_env() -> FastAPI:
    """The app of one worker of ``serve --workers N``: uvicorn imports this factory in every worker process;
    the parent passes the workspace and settings in ``AGENTIC_ROUTER_SERVE`` (JSON)."""
    spec = json.loads(os.environ[SERVE_ENV])
    limit_cpu_threads(int(spec.get("threads", 1)))
    return create_app(AgenticRouter.open(spec["workspace"], **spec["overrides"]))


def create_app(router_or_workspace: AgenticRouter | str | Path, keys: ApiKeys | None = None,
               limits: Limits | None = None, **overrides: Any) -> FastAPI:
    """The service over an open router, or over a workspace folder (opened with ``overrides`` as
    ``RouterConfig`` fields, question batching on). ``keys`` default to the environment's."""
    if isinstance(router_or_workspace, AgenticRouter):
        router = router_or_workspace
    else:
        overrides.setdefault("query_batch_ms", SERVICE_BATCH_MS)
        router = AgenticRouter.open(router_or_workspace, **overrides)
    service = Service(router, keys if keys is not None else ApiKeys.from_env(), limits or Limits())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=service.warm, name="warm-up", daemon=True).start()
        stop = threading.Event()
        if router.config.shared:
            threading.Thread(target=service.follow, args=(stop,), name="follow-replicas", daemon=True).start()
        yield
        stop.set()

    # FastAPIOffline serves the Swagger UI assets from its package: the stock page fetches them from a CDN,
    # and the service is meant to run offline.
    app = FastAPIOffline(title="agentic-router", version="0.1.0", lifespan=lifespan,
                  description="Route requests to the right tools among thousands; answer through them. "
                              "Send `Authorization: Bearer <key>` when the service has keys.")
    app.state.service = service
    metrics = Metrics(lambda: router.catalog.count_tools(), lambda: router.catalog.count_documents(),
                      lambda: [service.routes, getattr(router.view.retriever.embed_model, "batcher", None)])
    app.add_middleware(BodyLimitMiddleware, limits=service.limits)
    app.add_middleware(ContainErrors)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    install_error_handlers(app)

    async def read_scope(authorization: str | None = Header(None, include_in_schema=False)) -> None:
        service.keys.require(authorization, READ)

    async def admin_scope(authorization: str | None = Header(None, include_in_schema=False)) -> None:
        service.keys.require(authorization, ADMIN)

    read, admin = [Depends(read_scope)], [Depends(admin_scope)]

    # ---- health ------------------------------------------------------------------------------------
    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process answers (says nothing about the models)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
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
                             "activating": service.activating, "process": os.getpid()})

    @app.get("/metrics", tags=["health"], dependencies=read)
    def metrics_endpoint() -> Response:
        """Prometheus text format: requests and latency per route, catalog size."""
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    # ---- routing and answering ---------------------------------------------------------------------
    @app.post("/v1/route", tags=["routing"], dependencies=read)
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

    @app.post("/v1/query", tags=["routing"], dependencies=read)
    def query(req: QueryRequest) -> JSONResponse:
        """The same JSON as `agentic-router query --json`: answer, tools offered and called, sources."""
        if router.config.llm_provider == "none":
            result = router.query(req.query, mode=req.mode, k=req.k)
        else:
            with service.answer_lock:
                result = router.query(req.query, mode=req.mode, k=req.k)
        return JSONResponse(result.to_dict())

    # ---- catalog -----------------------------------------------------------------------------------
    @app.get("/v1/tools", tags=["catalog"], dependencies=read)
    def list_tools(kind: Literal[TOOL_KINDS] | None = None, offset: int = Query(0, ge=0),  # type: ignore[valid-type]
                   limit: int | None = Query(None, ge=1)) -> JSONResponse:
        """The same JSON as `agentic-router tools list --json`; `X-Total-Count` holds the catalog's size."""
        specs = router.list_tools(kind)
        page = specs[offset:offset + limit] if limit else specs[offset:]
        return JSONResponse(tools_json(page), headers={"X-Total-Count": str(len(specs))})

    @app.post("/v1/tools", tags=["catalog"], dependencies=admin)
    def add_tools(rows: list[dict[str, Any]] = Body(..., description="Rows as `tools add` reads them."),
                  replace: bool = False) -> JSONResponse:
        """Register application tools (all or none): `{name, description, parameters?}` or OpenAI schemas."""
        if len(rows) > service.limits.max_rows:
            raise InputError(f"{len(rows):,} rows in one request; the limit is {service.limits.max_rows:,}")
        specs = _specs_from_rows(rows)
        report = service.write(lambda: router.add_tools(specs, replace=replace))
        return JSONResponse(report.to_dict())

    @app.delete("/v1/tools/{name:path}", tags=["catalog"], dependencies=admin)
    def delete_tool(name: str) -> JSONResponse:
        """Remove an application tool; a document's tools go with `DELETE /v1/documents/{doc_id}`."""
        def remove() -> list[str]:
            if router.catalog.get_tool(name) is None:
                raise HTTPException(404, f"unknown tool {name!r}")
            return router.delete_tools([name])
        return JSONResponse({"deleted": service.write(remove)})

    @app.get("/v1/documents", tags=["catalog"], dependencies=read)
    def list_documents() -> JSONResponse:
        """Every ingested document: doc_id, title, source, number of chunks."""
        return JSONResponse([{k: d[k] for k in ("doc_id", "title", "source", "n_chunks")}
                             for d in router.list_documents()])

    @app.post("/v1/documents", tags=["catalog"], dependencies=admin, openapi_extra=_DOCUMENTS_BODY)
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

    @app.delete("/v1/documents/{doc_id:path}", tags=["catalog"], dependencies=admin)
    def delete_document(doc_id: str) -> JSONResponse:
        """Remove a document with its three tools, its chunks and its indexes (all or none)."""
        def remove() -> list[str]:
            if router.catalog.get_document(doc_id) is None:
                raise HTTPException(404, f"unknown document {doc_id!r}")
            return router.delete_document(doc_id)
        return JSONResponse({"deleted": doc_id, "tools": service.write(remove)})

    # ---- models ------------------------------------------------------------------------------------
    @app.get("/v1/models", tags=["models"], dependencies=read)
    def list_models() -> JSONResponse:
        """The same JSON as `agentic-router models list --json`: `{active, versions}`."""
        return JSONResponse(models_json(router.registry))

    @app.post("/v1/models/{name}/activate", tags=["models"], dependencies=admin)
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

    return app


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
