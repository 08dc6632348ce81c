"""Copy a catalog between an embedded workspace and shared state (PostgreSQL + a Chroma server), all or
nothing: to move from one machine to several replicas, and back.

Into shared state (``copy_to_shared``): the target database must hold no catalog and the Chroma server no
collection of the workspace's names. Vectors go first, then every row in one PostgreSQL transaction taken
under the writers' lock, so replicas started on the target see the catalog whole or not at all; on any
failure the transaction rolls back and the collections written are removed. The workspace's file settings
(``routing.json``, ``models/active.json``) become settings, and each document's persisted indexes a row of
``document_files``.

Out of shared state (``copy_from_shared``): under the writers' lock (no change can happen meanwhile), the
rows are read in one snapshot into a new SQLite file, the collections into an embedded Chroma, the
documents' indexes into ``docs/``, the settings back into files, the model versions copied; the folder is
built under a hidden name and renamed into place, as ``copy_workspace`` does.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Callable

import psycopg

from agentic_router.indexes.atomic import atomic_write_json
from agentic_router.indexes.config import RouterConfig
from agentic_router.indexes.errors import CatalogError, InputError
from agentic_router.indexes.storage.catalog_db import ACTIVE_SETTING, ROUTING_WEIGHTS, SQLiteCatalogDB
from agentic_router.indexes.storage.chroma import chroma_client, forget_client
from agentic_router.indexes.storage.copy import MODEL_CACHES, check_target, copy_collections, move_into_place
from agentic_router.indexes.storage.docstore import HASH_FILE, unpack
from agentic_router.indexes.storage.postgres import CHANNEL, WRITER_LOCK, PostgresCatalogDB, safe_url

# Every table of the catalog, with its columns, in the order rows are copied.
TABLES = {
    "documents": ("doc_id", "title", "content_hash", "source", "n_chunks", "storage", "lead"),
    "tools": ("name", "tool_id", "kind", "doc_id", "title", "description", "parameters"),
    "feedback": ("id", "query", "tool", "source", "created"),
    "mcp_servers": ("name", "transport", "target", "cwd"),
    "mcp_tools": ("name", "server", "remote"),
    "settings": ("key", "value"),
}
COLLECTION_PREFIXES = ("tools__", "chunks__", "memory__")  # the catalog's collections on a Chroma server
ACTIVE_FILE = Path("models") / "active.json"


def _ours(client: Any) -> list[Any]:
    return [c for c in client.list_collections() if c.name.startswith(COLLECTION_PREFIXES)]


def copy_to_shared(config: RouterConfig, state_url: str, chroma_url: str,
                   progress: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Copy an embedded workspace's catalog into an empty PostgreSQL database and Chroma server."""

    if config.shared:
        raise InputError("state copy --to postgresql:// reads an embedded workspace; this one is shared already")
    if not config.catalog_path.is_file():
        raise InputError(f"{config.workspace} holds no catalog to copy")
    PostgresCatalogDB(state_url, poll_seconds=3600).close()  # creates the tables (and says so if unreachable)
    source = SQLiteCatalogDB(config.catalog_path)
    dest = chroma_client(chroma_url)
    written: list[str] = []
    try:
        with psycopg.connect(state_url) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK,))
            held = sum(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES)  # type: ignore[index]
            if held:
                raise InputError(f"{safe_url(state_url)} already holds a catalog ({held} rows); copy into an empty database")
            clash = sorted(c.name for c in _ours(dest))
            if clash:
                raise InputError(f"the Chroma server {chroma_url} already holds {clash[0]}; use an empty server")
            snap = sqlite3.connect(f"file:{config.catalog_path}?mode=ro", uri=True)
            try:
                snap.execute("BEGIN")  # one read snapshot of every table (WAL)
                rows = {t: snap.execute(f"SELECT {', '.join(cols)} FROM {t}").fetchall() for t, cols in TABLES.items()}
                meta = dict(snap.execute("SELECT key, value FROM meta").fetchall())
            finally:
                snap.close()
            version = int(meta.get("version", 0))
            sources = _ours(chroma_client(config.chroma_dir))
            written = [c.name for c in sources]
            counts = copy_collections(sources, dest, progress)
            settings = dict(rows["settings"])
            for key, path in ((ROUTING_WEIGHTS, config.workspace / ROUTING_WEIGHTS),
                              (ACTIVE_SETTING, config.models_dir / "active.json")):
                if path.is_file():
                    settings[key] = json.dumps(json.loads(path.read_text(encoding="utf-8")))
            rows["settings"] = list(settings.items())
            with conn.cursor() as cur:
                for table, cols in TABLES.items():
                    if rows[table]:
                        cur.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})",
                                        rows[table])
                cur.executemany("INSERT INTO document_files (doc_id, content_hash, files) VALUES (%s, %s, %s)",
                                list(_document_files(config, rows["documents"])))
                for key, value in (("version", version), ("changes_from", version),
                                   ("requests", int(meta.get("requests", 0)))):
                    cur.execute("UPDATE meta SET value = %s WHERE key = %s", (value, key))
                cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(version)))
            if source.version() != version:
                raise CatalogError("the catalog changed while it was copied; copy again when no one is writing to it")
            conn.commit()
    except BaseException:
        for name in written:
            try:
                dest.delete_collection(name)
            except Exception:  # noqa: BLE001 - never created
                pass
        raise
    finally:
        source.close()
    return {"target": safe_url(state_url), "chroma_url": chroma_url, "version": version,
            "tools": len(rows["tools"]), "documents": len(rows["documents"]), "collections": counts}


def _document_files(config: RouterConfig, documents: list[tuple[Any, ...]]) -> Any:
    """``(doc_id, content_hash, files)`` of every document's persisted indexes folder."""
    for doc_id, _title, content_hash, _source, _n, storage, _lead in documents:
        if not storage:
            continue
        folder = config.docs_dir / storage
        if not folder.is_dir():
            raise CatalogError(f"document {doc_id!r} has no persisted indexes at {folder}")
        files = {str(p.relative_to(folder)): p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*"))
                 if p.is_file() and p.name != HASH_FILE}
        yield doc_id, content_hash, json.dumps(files)


def copy_from_shared(config: RouterConfig, target: Path,
                     progress: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Copy a shared catalog (``config.state_url``, ``config.chroma_url``) into a new workspace folder."""
    assert config.state_url and config.chroma_url
    target = check_target(config.workspace, target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".copying", dir=target.parent))
    layout = RouterConfig(workspace=tmp)
    try:
        with psycopg.connect(config.state_url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (WRITER_LOCK,))  # no writer until the copy is whole
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                rows = {t: conn.execute(f"SELECT {', '.join(cols)} FROM {t}").fetchall() for t, cols in TABLES.items()}
                meta: dict[str, int] = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                files = conn.execute("SELECT doc_id, content_hash, files FROM document_files").fetchall()
            SQLiteCatalogDB(layout.catalog_path).close()  # the tables
            db = sqlite3.connect(str(layout.catalog_path), isolation_level=None)
            try:
                db.execute("BEGIN")
                for table, cols in TABLES.items():
                    db.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                   rows[table])
                db.executemany("UPDATE meta SET value = ? WHERE key = ?",
                               [(int(meta[k]), k) for k in ("version", "requests") if k in meta])
                db.execute("UPDATE meta SET value = ? WHERE key = 'changes_from'", (int(meta["version"]),))
                db.execute("COMMIT")
            finally:
                db.close()
            counts = copy_collections(_ours(chroma_client(config.chroma_url)), chroma_client(layout.chroma_dir), progress)
            _unpack_documents(layout, rows["documents"], files)
            settings = {k: json.loads(v) for k, v in rows["settings"]}
            if config.models_dir.is_dir():
                shutil.copytree(config.models_dir, layout.models_dir, ignore=lambda folder, names: [
                    n for n in names if Path(folder) == config.models_dir and n in MODEL_CACHES])
            for key, path in ((ROUTING_WEIGHTS, tmp / ROUTING_WEIGHTS), (ACTIVE_SETTING, layout.models_dir / "active.json")):
                if settings.get(key) is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write_json(path, settings[key])
        forget_client(layout.chroma_dir)
        move_into_place(tmp, target)
    except BaseException:
        forget_client(layout.chroma_dir)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"target": str(target), "version": int(meta["version"]), "tools": len(rows["tools"]),
            "documents": len(rows["documents"]), "collections": counts}


def _unpack_documents(layout: RouterConfig, documents: list[tuple[Any, ...]], files: list[tuple[Any, ...]]) -> None:
    stored = {(doc_id, content_hash): json.loads(text) for doc_id, content_hash, text in files}
    for doc_id, _title, content_hash, _source, _n, storage, _lead in documents:
        if not storage:
            continue
        content = stored.get((doc_id, content_hash))
        if content is None:
            raise CatalogError(f"document {doc_id!r} has no stored indexes in the shared catalog")
        unpack(layout.docs_dir / storage, doc_id, content_hash, content)
