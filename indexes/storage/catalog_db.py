"""The SQLite half of the catalog: rows of documents, tools and recorded requests, and the version counter.

SQLite is the source of truth for which tools and documents exist: it gives atomic multi-row changes, so a
document and its three tools appear together or not at all. Only ``indexes.storage.catalog`` writes through it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from agentic_router.indexes.schema import ToolSpec

_SCHEMA = """
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
INSERT OR IGNORE INTO meta (key, value) VALUES ('version', 0);
CREATE TABLE IF NOT EXISTS changes (version INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT);
CREATE INDEX IF NOT EXISTS changes_version ON changes(version);
INSERT OR IGNORE INTO meta (key, value) SELECT 'changes_from', value FROM meta WHERE key = 'version';
"""
_COLS = "name, tool_id, kind, doc_id, title, description, parameters"
_SERVER_COLS = ("name", "transport", "target", "cwd")
_DOC_COLS = ("doc_id", "title", "content_hash", "source", "n_chunks", "storage")
# Versions of change log kept: derived indexes catch up on every route, so they are rarely more than a
# few versions behind; one further behind than this reads its cards or chunks whole instead.
CHANGES_KEPT = 1000
_IN_LIMIT = 500  # SQLite's bound-parameter limit is far above this; keeps statements small


class CatalogDB:
    """The SQLite half of the catalog: rows of documents and tools, and the catalog version."""

    shared = False  # True for a replica's mirror of a catalog shared through a Chroma server

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
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
    def _write_lock(self) -> Iterator[None]:
        """Hold the write lock and mark this thread as the writer (its reads see its transaction)."""
        with self._lock:
            self._writer = threading.get_ident()
            try:
                yield
            finally:
                self._writer = None

    def _in(self, sql: str, values: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        for start in range(0, len(values), _IN_LIMIT):
            part = list(values[start:start + _IN_LIMIT])
            yield from self._rows(sql.format(marks=",".join("?" * len(part))), part)

    # ---- reading -----------------------------------------------------------------------------------
    def version(self) -> int:
        return int(self._rows("SELECT value FROM meta WHERE key = 'version'")[0][0])

    def get_document(self, doc_id: str) -> dict[str, Any] | None:
        rows = self._rows(f"SELECT {', '.join(_DOC_COLS)} FROM documents WHERE doc_id=?", (doc_id,))
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
        specs = (_row_to_spec(r) for r in self._in(f"SELECT {_COLS} FROM tools WHERE name IN ({{marks}})", names))
        return {s.name: s for s in specs}

    def tools_for_documents(self, doc_ids: Sequence[str]) -> dict[str, list[ToolSpec]]:
        out: dict[str, list[ToolSpec]] = {}
        for row in self._in(f"SELECT {_COLS} FROM tools WHERE doc_id IN ({{marks}}) ORDER BY name", doc_ids):
            spec = _row_to_spec(row)
            out.setdefault(spec.doc_id or "", []).append(spec)
        return out

    def list_tools(self, kind: str | None = None) -> list[ToolSpec]:
        sql = f"SELECT {_COLS} FROM tools" + (" WHERE kind=?" if kind else "") + " ORDER BY doc_id, name"
        return [_row_to_spec(r) for r in self._rows(sql, (kind,) if kind else ())]

    def count_tools(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM tools")[0][0])

    def count_documents(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM documents")[0][0])

    def name_taken(self, name: str, by_other_than: str | None) -> bool:
        rows = self._rows("SELECT doc_id FROM tools WHERE name=?", (name,))
        return bool(rows) and rows[0][0] != by_other_than

    def known_requests(self, ids: Sequence[str]) -> set[str]:
        """Which of these recorded-request ids are already stored."""
        return {r[0] for r in self._in("SELECT id FROM feedback WHERE id IN ({marks})", ids)}

    def feedback(self) -> list[tuple[str, str, str]]:
        """``(id, query, tool)`` of every recorded request whose tool is still in the catalog."""
        return [tuple(r) for r in self._rows(
            "SELECT f.id, f.query, f.tool FROM feedback f JOIN tools t ON t.name = f.tool ORDER BY f.created, f.id")]

    def feedback_stamp(self) -> tuple[int, int]:
        """(rows, last rowid) of the recorded requests: changes whenever one is recorded or removed, and
        costs one indexed SQLite read, so a route can check that its in-process copy of the memory is fresh."""
        count, last = self._rows("SELECT COUNT(*), COALESCE(MAX(rowid), 0) FROM feedback")[0]
        return int(count), int(last)

    def changes_since(self, version: int) -> list[tuple[int, str, str | None]] | None:
        """``(version, kind, key)`` of every change logged after ``version``, oldest first, or None when the
        log does not reach back that far (it starts where this workspace first opened with it). ``kind`` is
        "cards" (key: a tool name) or "chunks" (key: a doc_id); a None key means "any of that kind".
        Derived indexes (BM25) use it to redo only what changed between two versions."""
        start = self._rows("SELECT value FROM meta WHERE key = 'changes_from'")
        if not start or version < int(start[0][0]):
            return None
        rows = self._rows("SELECT version, kind, key FROM changes WHERE version > ? ORDER BY version, rowid", (version,))
        return [(int(v), str(k), key) for v, k, key in rows]

    def mcp_servers(self) -> list[dict[str, Any]]:
        """How to reach every registered MCP server: ``{name, transport, target, cwd}``."""
        return [dict(zip(_SERVER_COLS, r)) for r in self._rows(f"SELECT {', '.join(_SERVER_COLS)} FROM mcp_servers ORDER BY name")]

    def mcp_tools(self, server: str) -> dict[str, str]:
        """Catalog name -> the tool's name on its server, for every tool registered from ``server``."""
        return {r[0]: r[1] for r in self._rows("SELECT name, remote FROM mcp_tools WHERE server=?", (server,))}

    def mcp_tool(self, name: str) -> tuple[str, str] | None:
        """``(server, name on the server)`` of a catalog tool registered from an MCP server."""
        rows = self._rows("SELECT server, remote FROM mcp_tools WHERE name=?", (name,))
        return (rows[0][0], rows[0][1]) if rows else None

    def get_setting(self, key: str) -> Any:
        """A workspace-wide choice kept with the rows (the active model, the routing weights), so every
        replica of a shared catalog sees the same one; None when never set."""
        rows = self._rows("SELECT value FROM settings WHERE key=?", (key,))
        return json.loads(rows[0][0]) if rows else None

    # ---- writing -----------------------------------------------------------------------------------
    def set_setting(self, key: str, value: Any) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic change; it also moves the version counter derived indexes follow."""
        with self._write_lock():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for conn in self._readers.values():
                conn.close()
            self._readers.clear()
        self._conn.close()


def write_tools(conn: sqlite3.Connection, specs: Sequence[ToolSpec]) -> None:
    conn.executemany(
        f"INSERT OR REPLACE INTO tools ({_COLS}) VALUES (?,?,?,?,?,?,?)",
        [(s.name, s.tool_id, s.kind, s.doc_id, s.title, s.description,
          json.dumps(s.parameters) if s.parameters else None) for s in specs],
    )


def write_changes(conn: sqlite3.Connection, kind: str, keys: Sequence[str] | None) -> None:
    """Log, inside the transaction that makes them, which cards or chunks change (None: any of ``kind``).
    They are stamped with the version this transaction moves the counter to (``transaction`` adds one at
    its end); one statement whatever the number of keys. Entries older than ``CHANGES_KEPT`` versions are
    dropped in the same transaction (an indexed range delete), and ``changes_from`` moves up with them, so
    the log of a long-lived catalog stays bounded; a reader further behind than that reads whole."""
    if keys is not None and not keys:
        return
    conn.execute("INSERT INTO changes (version, kind, key) SELECT m.value + 1, ?, j.value "
                 "FROM meta AS m, json_each(?) AS j WHERE m.key = 'version'",
                 (kind, json.dumps(list(keys) if keys is not None else [None])))
    horizon = "(SELECT value + 1 - ? FROM meta WHERE key = 'version')"  # in SQL: replicas replay statements
    conn.execute(f"DELETE FROM changes WHERE version <= {horizon}", (CHANGES_KEPT,))
    conn.execute(f"UPDATE meta SET value = MAX(value, {horizon}) WHERE key = 'changes_from'", (CHANGES_KEPT,))


def write_mcp_server(conn: sqlite3.Connection, server: dict[str, Any], tools: dict[str, str]) -> None:
    """Remember how to reach ``server`` and exactly which catalog tools (name -> remote name) are its."""
    conn.execute("INSERT OR REPLACE INTO mcp_servers (name, transport, target, cwd) VALUES (?,?,?,?)",
                 tuple(server.get(c) for c in _SERVER_COLS))
    conn.execute("DELETE FROM mcp_tools WHERE server=?", (server["name"],))
    conn.executemany("INSERT OR REPLACE INTO mcp_tools (name, server, remote) VALUES (?,?,?)",
                     [(name, server["name"], remote) for name, remote in tools.items()])


def delete_tool_rows(conn: sqlite3.Connection, names: Sequence[str]) -> None:
    conn.executemany("DELETE FROM tools WHERE name=?", [(n,) for n in names])


def delete_document_rows(conn: sqlite3.Connection, doc_id: str) -> None:
    conn.execute("DELETE FROM tools WHERE doc_id=?", (doc_id,))
    conn.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))


def _row_to_spec(row: tuple[Any, ...]) -> ToolSpec:
    name, _tool_id, kind, doc_id, title, description, params = row
    return ToolSpec(name=name, kind=kind, doc_id=doc_id, title=title, description=description,
                    parameters=json.loads(params) if params else None)
