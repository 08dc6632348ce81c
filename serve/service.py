"""What the endpoints of one service process share: the router, its write lock, readiness, and uploads.

The router is not safe for concurrent writes, so writes (ingest, tools, deletions, model activation) take one
lock while reads (route, query, listings) go on beside them. A model activation fills the new version's
collections under the write lock and then swaps the router's view in one assignment, so no request fails
or waits for it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from dataclasses import replace as dc_replace
from pathlib import Path
from typing import Callable, TypeVar

from agentic_router.indexes.errors import InputError, RouterError
from agentic_router.indexes.sources.documents import SourceDocument, load_paths
from agentic_router.router.app import AgenticRouter
from agentic_router.router.retrieval.batching import RoutePipeline
from agentic_router.serve.auth import ApiKeys
from agentic_router.serve.limits import Limits

logger = logging.getLogger(__name__)
T = TypeVar("T")
UPLOADS = "uploads"  # inside the workspace: uploads are read from here, then removed


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
            if self.router.config.shared:  # a writer killed mid-change may have left vectors without rows
                try:
                    self.router.repair()
                except RouterError as exc:  # serving the catalog as it is beats not serving it
                    logger.warning("cannot repair the shared catalog's vectors: %s", str(exc).splitlines()[0])
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
        period = 0.5  # reads this replica's snapshot of the shared settings: no query
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
