"""The HTTP service: a thin FastAPI shell over ``AgenticRouter`` (``agentic-router serve``; docs at /docs).

Every answer is built by the router layer (``router.payloads``), so ``POST /v1/route`` returns exactly what
``agentic-router route --json`` prints. What this module adds is what a network needs: keys and scopes
(``serve.auth``), request bounds (``serve.limits``), metrics (``serve.metrics``), JSON refusals
(``serve.errors``) and concurrency.

Concurrency (``serve.service``): writes take one lock while reads go on beside them, and every blocking call
runs in the thread pool, never on the event loop. The endpoints live in ``serve.endpoints``, by concern.
Tool descriptions and document text are only ever stored, embedded and returned: data, never instructions.
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import Depends, FastAPI, Header
from fastapi_offline import FastAPIOffline

from agentic_router import __version__
from agentic_router.router.app import AgenticRouter
from agentic_router.serve.auth import ADMIN, READ, ApiKeys
from agentic_router.serve.endpoints import (
    catalog_routes,
    health_routes,
    model_routes,
    routing_routes,
    source_routes,
)
from agentic_router.serve.errors import ContainErrors, install_error_handlers
from agentic_router.serve.limits import BodyLimitMiddleware, Limits
from agentic_router.serve.metrics import Metrics, MetricsMiddleware
from agentic_router.serve.service import Service

SERVE_ENV = "AGENTIC_ROUTER_SERVE"  # how `serve --workers N` tells each worker what to open
SERVICE_BATCH_MS = 2.0  # micro-batching window for question embeddings when the service opens the workspace


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
    app = FastAPIOffline(title="agentic-router", version=__version__, lifespan=lifespan,
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
    app.include_router(health_routes(service, read, admin, metrics))
    app.include_router(routing_routes(service, read, admin))
    app.include_router(catalog_routes(service, read, admin))
    app.include_router(source_routes(service, read, admin))
    app.include_router(model_routes(service, read, admin))
    return app
