"""Prometheus metrics of the service: requests and latency per route, catalog size.

Each app gets its own registry (not prometheus-client's global one), so two apps in one process, as in
tests, never collide. Requests are labelled with the route *template* (``/v1/tools/{name}``), never the
raw path, so a client cannot grow the label set without bound.
"""

from __future__ import annotations

import os
import time
from typing import Any, Awaitable, Callable

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest,
                               multiprocess)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0)


class Metrics:
    """The service's metrics. One process: its own registry. ``serve --workers N``: the parent sets
    ``PROMETHEUS_MULTIPROC_DIR`` before the workers start, each worker's values go to files there, and a
    scrape answered by any worker sums them (``prometheus_client``'s multiprocess mode)."""

    def __init__(self, catalog_tools: Callable[[], float], catalog_documents: Callable[[], float],
                 batchers: Callable[[], list[Any]]) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = CollectorRegistry()
        self._catalog = (catalog_tools, catalog_documents)
        self._batchers = batchers
        self.requests = Counter("agentic_router_http_requests", "HTTP requests by route and status",
                                ("method", "route", "status"), registry=self.registry)
        self.latency = Histogram("agentic_router_http_request_seconds", "HTTP request latency by route",
                                 ("method", "route"), buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("agentic_router_http_in_flight", "requests being served", registry=self.registry,
                               multiprocess_mode="livesum")
        # The catalog is the same for every worker: the one answering the scrape reads it.
        self.tools = Gauge("agentic_router_catalog_tools", "tools in the catalog", registry=self.registry,
                           multiprocess_mode="mostrecent")
        self.documents = Gauge("agentic_router_catalog_documents", "documents in the catalog",
                               registry=self.registry, multiprocess_mode="mostrecent")
        # Micro-batching at work: questions encoded per encoder call (the route pipeline's and the question
        # batcher's of the active view since it loaded), summed over live workers.
        self.encoder_calls = Gauge("agentic_router_query_encoder_calls", "encoder calls for questions",
                                   registry=self.registry, multiprocess_mode="livesum")
        self.questions = Gauge("agentic_router_query_questions_encoded", "questions encoded", registry=self.registry,
                               multiprocess_mode="livesum")

    def count_encoding(self) -> None:
        """Copy the batchers' counters into the gauges (after each request, and before a scrape)."""
        live = [b for b in self._batchers() if b is not None]
        self.encoder_calls.set(sum(getattr(b, "batches", 0) for b in live))
        self.questions.set(sum(getattr(b, "questions", 0) for b in live))

    def render(self) -> tuple[bytes, str]:
        self.count_encoding()
        self.tools.set(self._catalog[0]())
        self.documents.set(self._catalog[1]())
        if not self.multiprocess:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST


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
            self.metrics.count_encoding()
