"""Prometheus metrics of the service: requests and latency per route, catalog size.

Each app gets its own registry (not prometheus-client's global one), so two apps in one process, as in
tests, never collide. Requests are labelled with the route *template* (``/v1/tools/{name}``), never the
raw path, so a client cannot grow the label set without bound.
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0)


class Metrics:
    def __init__(self, catalog_tools: Callable[[], float], catalog_documents: Callable[[], float],
                 batchers: Callable[[], list[Any]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("agentic_router_http_requests", "HTTP requests by route and status",
                                ("method", "route", "status"), registry=self.registry)
        self.latency = Histogram("agentic_router_http_request_seconds", "HTTP request latency by route",
                                 ("method", "route"), buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("agentic_router_http_in_flight", "requests being served", registry=self.registry)
        tools = Gauge("agentic_router_catalog_tools", "tools in the catalog", registry=self.registry)
        tools.set_function(catalog_tools)
        docs = Gauge("agentic_router_catalog_documents", "documents in the catalog", registry=self.registry)
        docs.set_function(catalog_documents)
        # Micro-batching at work: questions encoded per encoder call (the route pipeline's, and the question
        # batcher's of the active view since it loaded).
        def total(attr: str) -> float:
            return float(sum(getattr(b, attr, 0) for b in batchers() if b is not None))

        calls = Gauge("agentic_router_query_encoder_calls", "encoder calls for questions", registry=self.registry)
        calls.set_function(lambda: total("batches"))
        asked = Gauge("agentic_router_query_questions_encoded", "questions encoded", registry=self.registry)
        asked.set_function(lambda: total("questions"))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts and times every HTTP request (the outermost layer, so refusals by the limits count too)."""

    def __init__(self, app: Callable[..., Awaitable[None]], metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, tracked_send)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], label, str(status)).inc()
            self.metrics.latency.labels(scope["method"], label).observe(time.perf_counter() - start)
