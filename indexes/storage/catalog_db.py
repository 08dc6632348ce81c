"""The catalog's rows: documents, tools, tool sources, recorded requests, settings and the version counter.

Rows are the source of truth for which tools and documents exist: they change in transactions, so a
document and its three tools appear together or not at all. ``CatalogDB`` holds what every engine shares
(the reads, and the writes of one transaction as ``Change`` methods, in SQL both engines speak, with ``?``
marks); an engine supplies a connection, its transaction and its writers' lock. ``SQLiteCatalogDB`` is the
embedded default, one file per workspace; ``indexes.storage.postgres`` keeps the rows of a catalog shared by
replicas. Only ``indexes.storage.catalog`` and ``memory`` write through it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

from agentic_router.indexes.schema import ToolSpec

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, title TEXT NOT NULL, content_hash TEXT NOT NULL,
    source TEXT, n_chunks INTEGER NOT NULL DEFAULT 0, storage TEXT, lead TEXT
);
CREATE TABLE IF NOT EXISTS tools (
    name TEXT PRIMARY KEY, tool_id TEXT NOT NULL, kind TEXT NOT NULL, doc_id TEXT, title TEXT,
    description TEXT NOT NULL, parameters TEXT
);
CREATE INDEX IF NOT EXISTS tools_doc ON tools(doc_id);
CREATE TABLE IF NOT EXISTS feedback (
    id TEXT PRIMARY KEY, query TEXT NOT NULL, tool TEXT NOT NULL, source TEXT, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS mcp_servers (
    name TEXT PRIMARY KEY, transport TEXT NOT NULL, target TEXT NOT NULL, cwd TEXT
);
CREATE TABLE IF NOT EXISTS mcp_tools (name TEXT PRIMARY KEY, server TEXT NOT NULL, remote TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS mcp_tools_server ON mcp_tools(server);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS changes (version INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT);
CREATE INDEX IF NOT EXISTS changes_version ON changes(version);
"""
# Counters every engine keeps in ``meta``: the catalog version; where the change log starts (it starts
# where a catalog first opened with it); how many times the recorded requests changed.
META_SEED = (
    "INSERT INTO meta (key, value) VALUES ('version', 0) ON CONFLICT (key) DO NOTHING",
    "INSERT INTO meta (key, value) SELECT 'changes_from', value FROM meta WHERE key = 'version' "
    "ON CONFLICT (key) DO NOTHING",
    "INSERT INTO meta (key, value) VALUES ('requests', 0) ON CONFLICT (key) DO NOTHING",
)
# Workspace-wide choices a shared catalog keeps as settings (an embedded workspace keeps them as files: the
# same name in the workspace folder, and ``models/active.json``).
ROUTING_WEIGHTS = "routing.json"  # weights chosen for this catalog by ``calibrate``
ACTIVE_SETTING = "active_models"  # the active embedder and reranker
COLS = "name, tool_id, kind, doc_id, title, description, parameters"
_SERVER_COLS = ("name", "transport", "target", "cwd")
_DOC_COLS = ("doc_id", "title", "content_hash", "source", "n_chunks", "storage")
# Versions of change log kept: derived indexes catch up on every route, so they are rarely more than a
# few versions behind; one further behind than this reads its cards or chunks whole instead.
CHANGES_KEPT = 1000
_IN_LIMIT = 500  # both engines bind far more parameters than this; keeps statements small


class Statements(Protocol):
    """What a transaction writes through: one engine's connection, with ``?`` marks."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


def _upsert(table: str, cols: Sequence[str], key: str) -> str:
    """``INSERT ... ON CONFLICT DO UPDATE``: SQLite (3.24+) and PostgreSQL both speak it."""
    rest = ", ".join(f"{c} = excluded.{c}" for c in cols if c != key)
    return (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            f"ON CONFLICT ({key}) DO UPDATE SET {rest}")


_PUT_TOOL = _upsert("tools", COLS.split(", "), "name")
_PUT_DOC = _upsert("documents", [*_DOC_COLS, "lead"], "doc_id")
_PUT_SERVER = _upsert("mcp_servers", _SERVER_COLS, "name")
_PUT_SOURCE_TOOL = _upsert("mcp_tools", ("name", "server", "remote"), "name")
_PUT_SETTING = _upsert("settings", ("key", "value"), "key")


class Change:
    """The writes of one transaction. It knows the version it moves the catalog to, so the change log
    rows it adds are stamped with it; ``finish`` moves the counters at the end."""

    def __init__(self, rows: Statements, version: int) -> None:
        self.rows = rows
        self.version = version
        self._requests = False
        self._logged = False

    def put_tools(self, specs: Sequence[ToolSpec]) -> None:
        self.rows.executemany(_PUT_TOOL, [(s.name, s.tool_id, s.kind, s.doc_id, s.title, s.description,
                                           json.dumps(s.parameters) if s.parameters else None) for s in specs])

    def delete_tools(self, names: Sequence[str]) -> None:
        self.rows.executemany("DELETE FROM tools WHERE name = ?", [(n,) for n in names])

    def put_document(self, doc: dict[str, Any], n_chunks: int) -> None:
        self.rows.execute(_PUT_DOC, (doc["doc_id"], doc["title"], doc["content_hash"], doc.get("source"),
                                     doc.get("n_chunks", n_chunks), doc.get("storage"), doc.get("lead")))

    def delete_document(self, doc_id: str) -> None:
        """The document's row and its tools' rows."""
        self.rows.execute("DELETE FROM tools WHERE doc_id = ?", (doc_id,))
        self.rows.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))

    def put_source(self, server: dict[str, Any], tools: dict[str, str]) -> None:
        """Remember how to reach a tool source and exactly which catalog tools (name -> remote name) are its."""
        self.rows.execute(_PUT_SERVER, tuple(server.get(c) for c in _SERVER_COLS))
        self.rows.execute("DELETE FROM mcp_tools WHERE server = ?", (server["name"],))
        self.rows.executemany(_PUT_SOURCE_TOOL, [(name, server["name"], remote) for name, remote in tools.items()])

    def add_requests(self, rows: Sequence[tuple[str, str, str, str, float]]) -> None:
        """``(id, request, tool, source, created)``; an id already stored is kept as it is."""
        self.rows.executemany("INSERT INTO feedback (id, query, tool, source, created) VALUES (?,?,?,?,?) "
                              "ON CONFLICT (id) DO NOTHING", rows)
        self._requests = True

    def forget_requests(self, tools: Sequence[str]) -> None:
        """The recorded requests of tools that leave the catalog."""
        if tools:
            self.rows.executemany("DELETE FROM feedback WHERE tool = ?", [(n,) for n in tools])
            self._requests = True

    def set_setting(self, key: str, value: Any) -> None:
        self.rows.execute(_PUT_SETTING, (key, json.dumps(value)))

    def log(self, kind: str, keys: Sequence[str] | None) -> None:
        """Log which cards or chunks change (None: any of ``kind``), stamped with this change's version, so
        derived indexes (BM25, the card matrix) redo only those."""
        if keys is not None and not keys:
            return
        self.rows.executemany("INSERT INTO changes (version, kind, key) VALUES (?, ?, ?)",
                              [(self.version, kind, key) for key in (keys if keys is not None else [None])])
        self._logged = True

    def finish(self) -> None:
        """Move the version (and the recorded requests' counter); drop log entries older than
        ``CHANGES_KEPT`` versions (an indexed range delete), moving ``changes_from`` up with them, so the log
        of a long-lived catalog stays bounded and a reader further behind than that reads whole."""
        self.rows.execute("UPDATE meta SET value = ? WHERE key = 'version'", (self.version,))
        if self._requests:
            self.rows.execute("UPDATE meta SET value = value + 1 WHERE key = 'requests'")
        if self._logged:
            horizon = self.version - CHANGES_KEPT
            self.rows.execute("DELETE FROM changes WHERE version <= ?", (horizon,))
            self.rows.execute("UPDATE meta SET value = ? WHERE key = 'changes_from' AND value < ?", (horizon, horizon))


class CatalogDB:
    """The catalog rows, whatever engine holds them. Subclasses implement ``_rows`` (a read, committed
    rows), ``_begin`` (one transaction's statements, committed on leaving) and ``exclusive``."""

    shared = False  # True when other replicas share these rows (a change elsewhere shows up here)

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _begin(self) -> Any:  # a context manager yielding ``Statements``
        raise NotImplementedError

    def exclusive(self) -> Any:
        """A context in which this thread is the catalog's only writer (re-entrant). Writers hold it from
        their vector writes to their commit, so whoever holds it may repair vectors without a row."""
        raise NotImplementedError

    def _announce(self, rows: Statements, version: int) -> None:
        """Tell other replicas, inside the committing transaction, that ``version`` exists."""

    def _committed(self, version: int) -> None:
        """After a commit: bring this process's own caches up to it."""

    def close(self) -> None:
        raise NotImplementedError

    def health(self) -> dict[str, Any]:
        """For ``/readyz``: which engine holds the rows, and the version read."""
        return {"engine": "sqlite", "version": self.version()}

    def _in(self, sql: str, values: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        for start in range(0, len(values), _IN_LIMIT):
            part = list(values[start:start + _IN_LIMIT])
            yield from self._rows(sql.format(marks=",".join("?" * len(part))), part)

    # ---- reading -----------------------------------------------------------------------------------
    def version(self) -> int:
        return int(self._rows("SELECT value FROM meta WHERE key = 'version'")[0][0])

    def get_document(self, doc_id: str) -> dict[str, Any] | None:
        rows = self._rows(f"SELECT {', '.join(_DOC_COLS)} FROM documents WHERE doc_id = ?", (doc_id,))
        return dict(zip(_DOC_COLS, rows[0])) if rows else None

    def document_leads(self) -> list[tuple[str, str, str]]:
        """``(doc_id, title, first characters)`` of every document, for baselines and reports."""
        return [tuple(r) for r in self._rows("SELECT doc_id, title, COALESCE(lead, '') FROM documents ORDER BY doc_id")]

    def document_storages(self) -> list[str]:
        """The workspace folder name of every document's persisted indexes."""
        return [r[0] for r in self._rows("SELECT storage FROM documents WHERE storage IS NOT NULL ORDER BY doc_id")]

    def list_documents(self) -> list[dict[str, Any]]:
        """``{doc_id, title, content_hash, source, n_chunks, storage}`` of every document, by doc_id."""
        return [dict(zip(_DOC_COLS, r)) for r in self._rows(f"SELECT {', '.join(_DOC_COLS)} FROM documents ORDER BY doc_id")]

    def get_tools(self, names: Sequence[str]) -> dict[str, ToolSpec]:
        specs = (row_to_spec(r) for r in self._in(f"SELECT {COLS} FROM tools WHERE name IN ({{marks}})", names))
        return {s.name: s for s in specs}

    def tools_for_documents(self, doc_ids: Sequence[str]) -> dict[str, list[ToolSpec]]:
        out: dict[str, list[ToolSpec]] = {}
        for row in self._in(f"SELECT {COLS} FROM tools WHERE doc_id IN ({{marks}}) ORDER BY name", doc_ids):
            spec = row_to_spec(row)
            out.setdefault(spec.doc_id or "", []).append(spec)
        return out

    def list_tools(self, kind: str | None = None) -> list[ToolSpec]:
        """Tools by document (external tools, which have none, first), then name."""
        sql = f"SELECT {COLS} FROM tools" + (" WHERE kind = ?" if kind else "") + " ORDER BY doc_id NULLS FIRST, name"
        return [row_to_spec(r) for r in self._rows(sql, (kind,) if kind else ())]

    def count_tools(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM tools")[0][0])

    def count_documents(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM documents")[0][0])

    def name_taken(self, name: str, by_other_than: str | None) -> bool:
        rows = self._rows("SELECT doc_id FROM tools WHERE name = ?", (name,))
        return bool(rows) and rows[0][0] != by_other_than

    def known_requests(self, ids: Sequence[str]) -> set[str]:
        """Which of these recorded-request ids are already stored."""
        return {r[0] for r in self._in("SELECT id FROM feedback WHERE id IN ({marks})", ids)}

    def feedback(self) -> list[tuple[str, str, str]]:
        """``(id, query, tool)`` of every recorded request whose tool is still in the catalog."""
        return [tuple(r) for r in self._rows(
            "SELECT f.id, f.query, f.tool FROM feedback f JOIN tools t ON t.name = f.tool ORDER BY f.created, f.id")]

    def feedback_stamp(self) -> tuple[int, int]:
        """(rows, changes) of the recorded requests: moves whenever one is recorded or removed, and costs
        one small read, so a route can check that its in-process copy of the memory is fresh."""
        count, changed = self._rows("SELECT COUNT(*), (SELECT value FROM meta WHERE key = 'requests') FROM feedback")[0]
        return int(count), int(changed or 0)

    def changes_since(self, version: int) -> list[tuple[int, str, str | None]] | None:
        """``(version, kind, key)`` of every change logged after ``version``, oldest first, or None when the
        log does not reach back that far. ``kind`` is "cards" (key: a tool name) or "chunks" (key: a doc_id);
        a None key means "any of that kind"."""
        start = self._rows("SELECT value FROM meta WHERE key = 'changes_from'")
        if not start or version < int(start[0][0]):
            return None
        rows = self._rows("SELECT version, kind, key FROM changes WHERE version > ? ORDER BY version, kind, key",
                          (version,))
        return [(int(v), str(k), key) for v, k, key in rows]

    def mcp_servers(self) -> list[dict[str, Any]]:
        """How to reach every registered tool source: ``{name, transport, target, cwd}``."""
        return [dict(zip(_SERVER_COLS, r)) for r in self._rows(f"SELECT {', '.join(_SERVER_COLS)} FROM mcp_servers ORDER BY name")]

    def mcp_tools(self, server: str) -> dict[str, str]:
        """Catalog name -> the tool's name on its server, for every tool registered from ``server``."""
        return {r[0]: r[1] for r in self._rows("SELECT name, remote FROM mcp_tools WHERE server = ?", (server,))}

    def mcp_tool(self, name: str) -> tuple[str, str] | None:
        """``(server, name on the server)`` of a catalog tool registered from a tool source."""
        rows = self._rows("SELECT server, remote FROM mcp_tools WHERE name = ?", (name,))
        return (rows[0][0], rows[0][1]) if rows else None

    def get_setting(self, key: str) -> Any:
        """A workspace-wide choice kept with the rows (the active model, the routing weights), so every
        replica of a shared catalog sees the same one; None when never set."""
        rows = self._rows("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else None

    # ---- writing -----------------------------------------------------------------------------------
    def set_setting(self, key: str, value: Any) -> None:
        with self.transaction() as change:
            change.set_setting(key, value)

    @contextmanager
    def transaction(self) -> Iterator[Change]:
        """One atomic change; it also moves the version counter derived indexes follow."""
        with self.exclusive():
            with self._begin() as rows:
                change = Change(rows, int(rows.fetch("SELECT value FROM meta WHERE key = 'version'")[0][0]) + 1)
                yield change
                change.finish()
                self._announce(rows, change.version)
            self._committed(change.version)


class _SQLiteStatements:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, tuple(args))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, [tuple(r) for r in rows])

    def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, tuple(args)).fetchall()


class SQLiteCatalogDB(CatalogDB):
    """The embedded engine: one SQLite file (WAL) per workspace."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(SCHEMA)
        for sql in META_SEED:
            self._conn.execute(sql)
        self._lock = threading.RLock()
        self._writer: int | None = None  # the thread inside ``transaction``: it reads its own uncommitted rows
        self._readers: dict[int, sqlite3.Connection] = {}

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Reads run on a connection of their own thread: with WAL, SQLite readers do not wait for each
        other or for a writer, whereas one shared connection serialised every route of a busy service."""
        if self._writer == threading.get_ident():
            return self._conn.execute(sql, tuple(args)).fetchall()
        return self._reader().execute(sql, tuple(args)).fetchall()

    def _reader(self) -> sqlite3.Connection:
        ident = threading.get_ident()
        conn = self._readers.get(ident)
        if conn is None:
            with self._lock:
                alive = {t.ident for t in threading.enumerate()}
                for gone in [i for i in self._readers if i not in alive]:
                    self._readers.pop(gone).close()
                conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
                self._readers[ident] = conn
        return conn

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Writers of this process, one at a time (other processes wait at ``BEGIN IMMEDIATE``)."""
        with self._lock:
            yield

    @contextmanager
    def _begin(self) -> Iterator[Statements]:
        self._writer = threading.get_ident()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteStatements(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        finally:
            self._writer = None

    def close(self) -> None:
        with self._lock:
            for conn in self._readers.values():
                conn.close()
            self._readers.clear()
        self._conn.close()


def row_to_spec(row: Sequence[Any]) -> ToolSpec:
    name, _tool_id, kind, doc_id, title, description, params = row
    return ToolSpec(name=name, kind=kind, doc_id=doc_id, title=title, description=description,
                    parameters=json.loads(params) if params else None)
