"""Replicas on one Chroma server: the catalog's rows as an ordered log in Chroma, replayed into local SQLite.

Why a log and not the rows themselves in Chroma: the catalog needs atomic multi-row changes (a document
and its three tools appear together or not at all) and indexed reads on every route, which SQLite gives and
a vector store does not. So with ``chroma_url`` set, every committed catalog transaction is also written as
one record of a Chroma collection (``agentic-router-log``: record N holds the statements of change N), and
every replica keeps a local SQLite *mirror* that applies the records it has not seen, in order. Replicas
then agree on which tools and documents exist, the recorded requests, the active model and the catalog
version (the version counter is itself one of the replayed rows), while the vectors live in the server's
collections anyway.

Writers take a lock that is a Chroma collection (``agentic-router-lock``): creating a collection that
exists fails on the server, so exactly one replica holds it; it carries an expiry so a writer killed while
holding it blocks the others for at most ``LOCK_SECONDS``. Under the lock a writer catches up, runs its
transaction on its mirror, appends the record (the commit point) and commits locally; a crash between the
append and the local commit is repaired by the next catch-up, which applies the record like any other.

Documents' own persisted indexes (summary and keyword tables, a folder of JSON files per document) are
stored in ``agentic-router-docstore`` before the commit that names them, and unpacked by a replica the
first time it needs one.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from agentic_router.indexes.atomic import atomic_write_dir
from agentic_router.indexes.errors import CatalogError
from agentic_router.indexes.storage.catalog_db import CatalogDB

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

logger = logging.getLogger(__name__)

LOG = "agentic-router-log"
LOCK = "agentic-router-lock"
DOCSTORE = "agentic-router-docstore"
LOCK_SECONDS = 30.0  # a writer holds the lock for one commit (milliseconds); a dead one for at most this
WAIT_SECONDS = 60.0
HASH_FILE = "content_hash"
_PAGE = 200
_UNIT = [1.0]  # Chroma stores a vector with every record; log and docstore records carry a constant one


def _records(client: "ClientAPI", name: str) -> "Collection":
    return client.get_or_create_collection(name, embedding_function=None)


class SharedLog:
    """The ordered change records of one catalog, and the writers' lock, in a Chroma server."""

    def __init__(self, client: "ClientAPI") -> None:
        self.client = client
        self.coll = _records(client, LOG)
        self.owner = uuid.uuid4().hex

    @property
    def epoch(self) -> str:
        """Names this log: a mirror built from another log (a fresh server) must start again."""
        return str(self.coll.id)

    def head(self) -> int:
        """Records are numbered 1, 2, ... without gaps (appends happen under the lock), so the count is
        the number of the last one."""
        return int(self.coll.count())

    def read(self, after: int, upto: int) -> Iterator[tuple[int, list[Any]]]:
        """Records ``after + 1 .. upto`` in order: ``(number, statements)``."""
        for start in range(after + 1, upto + 1, _PAGE):
            ids = [_rid(n) for n in range(start, min(upto, start + _PAGE - 1) + 1)]
            got = self.coll.get(ids=ids, include=["documents"])
            docs = dict(zip(got["ids"], got["documents"] or []))
            for rid in ids:
                if rid not in docs:
                    raise CatalogError(f"the shared catalog log lacks record {int(rid)}; is the Chroma server's data intact?")
                yield int(rid), json.loads(docs[rid] or "[]")

    def append(self, number: int, statements: list[Any]) -> None:
        self.coll.add(ids=[_rid(number)], embeddings=[_UNIT], documents=[json.dumps(statements)],
                      metadatas=[{"writer": self.owner, "at": time.time()}])
        got = self.coll.get(ids=[_rid(number)], include=["metadatas"])
        if not got["metadatas"] or got["metadatas"][0].get("writer") != self.owner:
            raise CatalogError(f"another replica wrote change {number} while this one held the lock")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive among every replica of this Chroma server, for one commit."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                self.client.create_collection(LOCK, metadata={"owner": self.owner, "expires": time.time() + LOCK_SECONDS})
                break
            except Exception as exc:  # noqa: BLE001 - Chroma reports "exists" with a generic error type
                if "already exists" not in str(exc):
                    raise CatalogError(f"cannot take the catalog lock on the Chroma server: {exc}".splitlines()[0]) from exc
            self._break_if_expired()
            if time.monotonic() > deadline:
                raise CatalogError("the shared catalog is locked by another replica; try again")
            time.sleep(0.02)
        try:
            yield
        finally:
            self._release()

    def _break_if_expired(self) -> None:
        try:
            meta = self.client.get_collection(LOCK).metadata or {}
        except Exception:  # noqa: BLE001 - released in between
            return
        if float(meta.get("expires", 0)) < time.time():
            logger.warning("breaking the catalog lock of a replica that held it past its expiry")
            self._delete_lock()

    def _release(self) -> None:
        try:
            meta = self.client.get_collection(LOCK).metadata or {}
        except Exception:  # noqa: BLE001 - already gone (broken as expired)
            return
        if meta.get("owner") == self.owner:
            self._delete_lock()

    def _delete_lock(self) -> None:
        try:
            self.client.delete_collection(LOCK)
        except Exception:  # noqa: BLE001 - someone else deleted it first
            pass


def _rid(number: int) -> str:
    return f"{number:012d}"


class _Recorder:
    """The connection a transaction writes through: executes each statement and keeps it for the log."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.statements: list[Any] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        self.statements.append([sql, list(params)])
        return self._conn.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        rows = [list(r) for r in rows]
        self.statements.append([sql, rows, "many"])
        return self._conn.executemany(sql, [tuple(r) for r in rows])


def _apply(conn: sqlite3.Connection, statements: list[Any]) -> None:
    for item in statements:
        if len(item) == 3:
            conn.executemany(item[0], [tuple(r) for r in item[1]])
        else:
            conn.execute(item[0], tuple(item[1]))


class ReplicatedCatalogDB(CatalogDB):
    """A ``CatalogDB`` whose rows follow the shared log: reads catch up (at most every ``sync_seconds``),
    writes go through the lock and the log. Several service processes may share one mirror file."""

    shared = True

    def __init__(self, path: Path, client: "ClientAPI", sync_seconds: float = 0.1) -> None:
        self.log = SharedLog(client)
        self.docstore = DocStore(client)
        super().__init__(path)
        self._conn.execute("CREATE TABLE IF NOT EXISTS replica (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        if self._replica("epoch") not in (None, self.log.epoch):
            logger.warning("the catalog mirror %s follows another Chroma server's log; rebuilding it", path.name)
            self._conn.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            super().__init__(path)
            self._conn.execute("CREATE TABLE IF NOT EXISTS replica (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._conn.execute("INSERT OR IGNORE INTO replica (key, value) VALUES ('epoch', ?)", (self.log.epoch,))
        self.sync_seconds = sync_seconds
        self._checked = 0.0
        self._writing = threading.local()
        self.catch_up(force=True)

    def _replica(self, key: str) -> str | None:
        rows = self._conn.execute("SELECT value FROM replica WHERE key=?", (key,)).fetchall()
        return rows[0][0] if rows else None

    def applied(self) -> int:
        """The number of the last log record this mirror holds."""
        return int(self._replica("applied") or 0)

    def catch_up(self, force: bool = False) -> int:
        """Apply the log records this mirror lacks; returns how many. Rate-limited unless ``force``."""
        if getattr(self._writing, "active", False):
            return 0
        if not force and time.monotonic() - self._checked < self.sync_seconds:
            return 0
        with self._lock:
            head = self.log.head()
            self._checked = time.monotonic()
            done = 0
            if head > self.applied():
                for number, statements in self.log.read(self.applied(), head):
                    self._conn.execute("BEGIN IMMEDIATE")
                    try:
                        if number == self.applied() + 1:  # another process on this mirror may have applied it
                            _apply(self._conn, statements)
                            self._set_applied(number)
                            done += 1
                    except BaseException:
                        self._conn.execute("ROLLBACK")
                        raise
                    self._conn.execute("COMMIT")
            return done

    def _set_applied(self, number: int) -> None:
        self._conn.execute("INSERT OR REPLACE INTO replica (key, value) VALUES ('applied', ?)", (str(number),))

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.catch_up()
        return super()._rows(sql, args)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Lock, catch up, change the mirror, append the change to the log (the commit point), commit."""
        with self._write_lock(), self.log.locked():
            self.catch_up(force=True)
            self._writing.active = True
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                recorder = _Recorder(self._conn)
                yield recorder  # type: ignore[misc]
                recorder.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")
                number = self.applied() + 1
                self.log.append(number, recorder.statements)
                self._set_applied(number)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            finally:
                self._writing.active = False
            self._conn.execute("COMMIT")


class DocStore:
    """Each document's persisted indexes (a folder of JSON files), kept in the Chroma server by content."""

    def __init__(self, client: "ClientAPI") -> None:
        self.coll = _records(client, DOCSTORE)
        self._lock = threading.Lock()

    @staticmethod
    def key(doc_id: str, content_hash: str) -> str:
        return f"{doc_id}:{content_hash}"

    def put(self, doc_id: str, content_hash: str, folder: Path) -> None:
        files = {str(p.relative_to(folder)): p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*")) if p.is_file()}
        self.coll.upsert(ids=[self.key(doc_id, content_hash)], embeddings=[_UNIT], documents=[json.dumps(files)],
                         metadatas=[{"doc_id": doc_id, "content_hash": content_hash}])

    def drop(self, doc_id: str, keep: str | None = None) -> None:
        """Every stored version of ``doc_id`` except the one with content hash ``keep``."""
        got = self.coll.get(where={"doc_id": doc_id}, include=["metadatas"])
        stale = [i for i, m in zip(got["ids"], got["metadatas"] or []) if (m or {}).get("content_hash") != keep]
        if stale:
            self.coll.delete(ids=stale)

    def ensure(self, doc_id: str, content_hash: str, folder: Path) -> None:
        """Make ``folder`` hold this content of the document, unpacking it from the server if it does not."""
        marker = folder / HASH_FILE
        if marker.is_file() and marker.read_text(encoding="utf-8").strip() == content_hash:
            return
        with self._lock:
            if marker.is_file() and marker.read_text(encoding="utf-8").strip() == content_hash:
                return
            got = self.coll.get(ids=[self.key(doc_id, content_hash)], include=["documents"])
            if not got["ids"]:
                raise CatalogError(f"document {doc_id!r} has no stored indexes on the Chroma server")
            files: dict[str, str] = json.loads(got["documents"][0])

            def fill(tmp: Path) -> None:
                for rel, text in files.items():
                    target = (tmp / rel).resolve()
                    if tmp.resolve() not in target.parents:
                        raise CatalogError(f"document {doc_id!r}: stored file name {rel!r} leaves its folder")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(text, encoding="utf-8")
                (tmp / HASH_FILE).write_text(content_hash, encoding="utf-8")

            folder.parent.mkdir(parents=True, exist_ok=True)
            try:
                atomic_write_dir(folder, fill)
            except OSError:  # another process (a worker of the same service) unpacked it at the same moment
                if not (marker.is_file() and marker.read_text(encoding="utf-8").strip() == content_hash):
                    raise
