"""The rows of a catalog shared by replicas, in PostgreSQL.

Every change is one PostgreSQL transaction. Writers are serialised by a session advisory lock
(``exclusive``), held from their vector writes on the Chroma server to their commit: a writer killed in
between leaves vectors no row names, and whoever holds the lock next may take them for orphans and sweep
them (``Catalog.sync``, ``Catalog._repair_cards``) because no live writer can be in that window. A killed
writer's session ends, and PostgreSQL releases its lock and rolls its transaction back.

Routes never wait for PostgreSQL: each process keeps a snapshot of what a route reads (the version, the
tool rows, the settings, the recorded requests' stamp), read in one repeatable-read transaction and
brought up to date from the change rows. Each commit sends a NOTIFY; a listener thread refreshes the
snapshot on it, and every ``poll_seconds`` without one, so a replica sees another's write within
milliseconds and, should a notification be lost, within the poll. While PostgreSQL is away, routes answer
from the snapshot, writes fail with ``StateError``, and the listener reconnects.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from agentic_router.indexes.errors import StateError
from agentic_router.indexes.schema import ToolSpec
from agentic_router.indexes.storage.catalog_db import COLS, META_SEED, SCHEMA, CatalogDB, Statements, row_to_spec

logger = logging.getLogger(__name__)

CHANNEL = "agentic_router_catalog"
WRITER_LOCK = 7_316_402_001  # pg_advisory_lock key of the catalog's writers
SCHEMA_LOCK = 7_316_402_002  # replicas starting together create the tables one at a time
# The embedded schema in PostgreSQL's types (timestamps as double precision, counters as 64-bit), plus the
# documents' persisted indexes, which embedded workspaces keep as folders.
_SCHEMA = SCHEMA.replace(" REAL ", " DOUBLE PRECISION ").replace("value INTEGER", "value BIGINT").replace(
    "version INTEGER", "version BIGINT") + """
CREATE INDEX IF NOT EXISTS feedback_tool ON feedback(tool);
CREATE TABLE IF NOT EXISTS document_files (
    doc_id TEXT NOT NULL, content_hash TEXT NOT NULL, files TEXT NOT NULL, PRIMARY KEY (doc_id, content_hash)
);
"""


def _pg(sql: str) -> str:
    """Our SQL marks parameters with ``?`` (no literal contains one); psycopg wants ``%s``."""
    return sql.replace("?", "%s")


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{parts.username + '@' if parts.username else ''}{host}" \
           f"{':' + str(parts.port) if parts.port else ''}{parts.path}"


class _PgStatements:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        self.conn.execute(_pg(sql), tuple(args))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.conn.cursor() as cur:
                cur.executemany(_pg(sql), [tuple(r) for r in rows])

    def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(_pg(sql), tuple(args)).fetchall()


@dataclass
class _Snapshot:
    """What routes read, as of one catalog version. The orderings are built on first use, once per version:
    a route asks for the tools of the documents it found, and sorting every tool for that cost 5 ms at 10k."""

    version: int
    requests: tuple[int, int]  # (recorded requests, times they changed): the usage memory's stamp
    settings: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, ToolSpec] = field(default_factory=dict)
    documents: int = 0

    @cached_property
    def by_document(self) -> dict[str, list[ToolSpec]]:
        out: dict[str, list[ToolSpec]] = {}
        for spec in self.tools.values():
            if spec.doc_id is not None:
                out.setdefault(spec.doc_id, []).append(spec)
        for specs in out.values():
            specs.sort(key=lambda s: s.name)
        return out

    @cached_property
    def ordered(self) -> list[ToolSpec]:
        """By document (external tools, which have none, first), then name, as the SQL engines order them."""
        return sorted(self.tools.values(), key=lambda s: (s.doc_id is not None, s.doc_id or "", s.name))


class PostgresCatalogDB(CatalogDB):
    """Catalog rows in PostgreSQL, with this process's snapshot of what routes read."""

    shared = True

    def __init__(self, url: str, poll_seconds: float = 5.0, pool_size: int = 8) -> None:
        self.url = url
        self.poll_seconds = poll_seconds
        self.pool: ConnectionPool[Any] = ConnectionPool(
            url, min_size=1, max_size=pool_size, kwargs={"autocommit": True, "connect_timeout": 5},
            check=ConnectionPool.check_connection, timeout=10.0, open=False, name="agentic-router-state")
        try:  # one connection first: its error is the one line to show (the pool would retry and log)
            psycopg.connect(url, connect_timeout=5).close()
            self.pool.open(wait=True, timeout=10.0)
        except (psycopg.Error, PoolTimeout) as exc:
            self.pool.close()
            detail = str(exc).strip().splitlines()[0].strip() if str(exc).strip() else type(exc).__name__
            raise StateError(f"cannot reach PostgreSQL at {safe_url(url)}: {detail}") from exc
        self._local = threading.local()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self.listening = threading.Event()  # set while the listener holds a LISTEN connection
        self._create_schema()
        self._snapshot: _Snapshot | None = None
        self.refresh()
        self._listener = threading.Thread(target=self._listen, name="catalog-listener", daemon=True)
        self._listener.start()

    # ---- connections -------------------------------------------------------------------------------
    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; PostgreSQL being away becomes one ``StateError`` line."""
        try:
            with self.pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StateError(f"the shared catalog's PostgreSQL ({safe_url(self.url)}) is unreachable: {detail}") from exc

    def _create_schema(self) -> None:
        with self.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            conn.execute(_SCHEMA)
            for sql in META_SEED:
                conn.execute(sql)

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        held = getattr(self._local, "conn", None)  # a writer reads on its own connection (its transaction)
        if held is not None:
            return held.execute(_pg(sql), tuple(args)).fetchall()
        with self.connection() as conn:
            return conn.execute(_pg(sql), tuple(args)).fetchall()

    # ---- writing -----------------------------------------------------------------------------------
    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """The writers' advisory lock, on a connection this thread keeps until it leaves (re-entrant)."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        with self.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (WRITER_LOCK,))
            self._local.conn = conn
            try:
                self.refresh()  # decide on the newest rows
                yield
            finally:
                self._local.conn = None
                try:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (WRITER_LOCK,))
                except psycopg.Error:
                    pass  # the session is gone, and its lock with it

    @contextmanager
    def _begin(self) -> Iterator[Statements]:
        conn = self._local.conn
        with conn.transaction():
            yield _PgStatements(conn)

    def _announce(self, rows: Statements, version: int) -> None:
        rows.execute("SELECT pg_notify(?, ?)", (CHANNEL, str(version)))

    def _committed(self, version: int) -> None:
        try:
            self.refresh()
        except StateError as exc:  # committed; the listener brings the snapshot up once it reconnects
            logger.warning("%s", exc)

    # ---- the snapshot routes read ----------------------------------------------------------------------
    def refresh(self) -> bool:
        """Bring the snapshot up to the newest version: only the tool rows the change log names are read
        again, unless the log does not reach back. Returns whether the version moved."""
        held = getattr(self._local, "conn", None)  # a writer refreshes on the connection it holds: a pool
        with self._refresh_lock:                  # drained by writers waiting for the lock cannot stall it
            old = self._snapshot
            with (nullcontext(held) if held is not None else self.connection()) as conn, conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                meta = {k: int(v) for k, v in conn.execute("SELECT key, value FROM meta").fetchall()}
                if old is not None and meta["version"] == old.version:
                    return False
                if old is not None and meta["version"] < old.version:
                    logger.warning("the shared catalog went back from version %d to %d (restored from a backup?); "
                                   "reading it whole", old.version, meta["version"])
                    old = None
                tools = self._changed_tools(conn, old, meta) if old is not None else None
                if tools is None:
                    tools = {r[0]: row_to_spec(r) for r in conn.execute(f"SELECT {COLS} FROM tools").fetchall()}
                settings = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM settings").fetchall()}
                count, documents = conn.execute(  # type: ignore[misc]
                    "SELECT (SELECT COUNT(*) FROM feedback), (SELECT COUNT(*) FROM documents)").fetchone()
            self._snapshot = _Snapshot(meta["version"], (int(count), meta["requests"]), settings, tools, int(documents))
            return True

    @staticmethod
    def _changed_tools(conn: psycopg.Connection[Any], old: _Snapshot, meta: dict[str, int]) -> dict[str, ToolSpec] | None:
        if meta["changes_from"] > old.version:
            return None
        keys = [r[0] for r in conn.execute("SELECT DISTINCT key FROM changes WHERE kind = 'cards' AND version > %s",
                                           (old.version,)).fetchall()]
        if None in keys:
            return None
        fresh = {r[0]: row_to_spec(r) for r in conn.execute(f"SELECT {COLS} FROM tools WHERE name = ANY(%s)",
                                                             (keys,)).fetchall()}
        tools = dict(old.tools)
        for key in keys:
            if key in fresh:
                tools[key] = fresh[key]
            else:
                tools.pop(key, None)
        return tools

    def _listen(self) -> None:
        """Refresh on every NOTIFY, and every ``poll_seconds`` without one; reconnect when PostgreSQL goes."""
        backoff = 0.2
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    backoff = 0.2
                    self.refresh()  # whatever was missed while away
                    polled = time.monotonic()
                    while not self._stop.is_set():
                        heard = any(True for _ in conn.notifies(timeout=0.5, stop_after=1))
                        if heard or time.monotonic() - polled >= self.poll_seconds:
                            self.refresh()
                            polled = time.monotonic()
            except (psycopg.Error, StateError) as exc:
                if self.listening.is_set():
                    logger.warning("lost the shared catalog's PostgreSQL; routes answer from this replica's "
                                   "snapshot until it is back (%s)", str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
                self.listening.clear()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)

    def _now(self) -> _Snapshot:
        snap = self._snapshot
        assert snap is not None
        return snap

    def version(self) -> int:
        return self._now().version

    def feedback_stamp(self) -> tuple[int, int]:
        return self._now().requests

    def get_setting(self, key: str) -> Any:
        return self._now().settings.get(key)

    def get_tools(self, names: Sequence[str]) -> dict[str, ToolSpec]:
        tools = self._now().tools
        return {n: spec for n in names if (spec := tools.get(n)) is not None}

    def tools_for_documents(self, doc_ids: Sequence[str]) -> dict[str, list[ToolSpec]]:
        by_document = self._now().by_document
        return {d: list(by_document[d]) for d in dict.fromkeys(doc_ids) if d in by_document}

    def list_tools(self, kind: str | None = None) -> list[ToolSpec]:
        return [s for s in self._now().ordered if kind is None or s.kind == kind]

    def count_tools(self) -> int:
        return len(self._now().tools)

    def count_documents(self) -> int:
        return self._now().documents

    def health(self) -> dict[str, Any]:
        """For ``/readyz``: whether this replica hears the shared state, and the version it serves."""
        return {"engine": "postgresql", "connected": self.listening.is_set(), "version": self.version()}

    def name_taken(self, name: str, by_other_than: str | None) -> bool:
        spec = self._now().tools.get(name)
        return spec is not None and spec.doc_id != by_other_than

    def close(self) -> None:
        self._stop.set()
        self._listener.join(timeout=5)
        self.pool.close()
