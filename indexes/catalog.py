"""The tool catalog: which tools exist (SQLite, the source of truth) and their card vectors (Chroma).

SQLite gives atomic multi-row changes, so a document and its three tools appear together or not at all.
Chroma holds one vector per tool card in a collection named after the embedder, so a fine-tuned model can
get its own collection and the switch is a matter of pointing at another name.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from agentic_router.indexes.errors import CatalogError
from agentic_router.indexes.schema import ToolSpec
from agentic_router.indexes.store import collection, upsert

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

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
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('version', 0);
"""


class ToolCatalog:
    """Registry of tools and documents, plus the Chroma collection of tool-card vectors."""

    def __init__(self, db_path: Path, client: "ClientAPI", collection_name: str) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db_path = db_path
        self._db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self.client = client
        self.collection_name = collection_name
        self.cards = collection(client, collection_name)
        self.max_batch = client.get_max_batch_size()

    # ---- reading -----------------------------------------------------------------------------------
    def get_document(self, doc_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT doc_id, title, content_hash, source, n_chunks, storage FROM documents WHERE doc_id=?", (doc_id,)
        ).fetchone()
        keys = ("doc_id", "title", "content_hash", "source", "n_chunks", "storage")
        return dict(zip(keys, row)) if row else None

    def document_leads(self) -> list[tuple[str, str, str]]:
        """``(doc_id, title, first characters)`` of every document, for baselines and reports."""
        return [tuple(r) for r in self._db.execute("SELECT doc_id, title, COALESCE(lead, '') FROM documents ORDER BY doc_id")]

    def get_tool(self, name: str) -> ToolSpec | None:
        found = self.get_tools([name])
        return found.get(name)

    def get_tools(self, names: Sequence[str]) -> dict[str, ToolSpec]:
        out: dict[str, ToolSpec] = {}
        for start in range(0, len(names), 500):
            part = list(names[start : start + 500])
            marks = ",".join("?" * len(part))
            for row in self._db.execute(f"SELECT {_COLS} FROM tools WHERE name IN ({marks})", part):
                spec = _row_to_spec(row)
                out[spec.name] = spec
        return out

    def tools_for_documents(self, doc_ids: Sequence[str]) -> dict[str, list[ToolSpec]]:
        out: dict[str, list[ToolSpec]] = {}
        for start in range(0, len(doc_ids), 500):
            part = list(doc_ids[start : start + 500])
            marks = ",".join("?" * len(part))
            for row in self._db.execute(f"SELECT {_COLS} FROM tools WHERE doc_id IN ({marks})", part):
                spec = _row_to_spec(row)
                out.setdefault(spec.doc_id or "", []).append(spec)
        return out

    def list_tools(self, kind: str | None = None) -> list[ToolSpec]:
        sql = f"SELECT {_COLS} FROM tools" + (" WHERE kind=?" if kind else "") + " ORDER BY doc_id, name"
        return [_row_to_spec(r) for r in self._db.execute(sql, (kind,) if kind else ())]

    def count_tools(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM tools").fetchone()[0])

    def count_documents(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def name_taken(self, name: str, by_other_than: str | None) -> bool:
        row = self._db.execute("SELECT doc_id FROM tools WHERE name=?", (name,)).fetchone()
        return row is not None and row[0] != by_other_than

    # ---- writing -----------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic change of the catalog; it also moves the version counter derived indexes follow."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def version(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])

    def bump_version(self) -> None:
        """Say that vectors changed outside a catalog transaction (a re-embedding, a collection sync)."""
        with self.transaction():
            pass

    def upsert_cards(self, specs: Sequence[ToolSpec], vectors: Sequence[list[float]]) -> None:
        """Write card vectors first: an orphan vector is harmless (hits are checked against SQLite)."""
        if not specs:
            return
        upsert(
            self.cards,
            ids=[s.name for s in specs],
            embeddings=list(vectors),
            metadatas=[{"kind": s.kind, "doc_id": s.doc_id or "", "tool_id": s.tool_id} for s in specs],
            documents=[s.card() for s in specs],
            max_batch=self.max_batch,
        )

    def write_tools(self, db: sqlite3.Connection, specs: Sequence[ToolSpec]) -> None:
        db.executemany(
            f"INSERT OR REPLACE INTO tools ({_COLS}) VALUES (?,?,?,?,?,?,?)",
            [
                (s.name, s.tool_id, s.kind, s.doc_id, s.title, s.description, json.dumps(s.parameters) if s.parameters else None)
                for s in specs
            ],
        )

    def write_document(self, db: sqlite3.Connection, doc: dict[str, Any]) -> None:
        db.execute(
            "INSERT OR REPLACE INTO documents (doc_id, title, content_hash, source, n_chunks, storage, lead) "
            "VALUES (?,?,?,?,?,?,?)",
            (doc["doc_id"], doc["title"], doc["content_hash"], doc.get("source"), doc.get("n_chunks", 0),
             doc.get("storage"), doc.get("lead")),
        )

    def delete_document_rows(self, db: sqlite3.Connection, doc_id: str) -> list[str]:
        names = [r[0] for r in db.execute("SELECT name FROM tools WHERE doc_id=?", (doc_id,))]
        db.execute("DELETE FROM tools WHERE doc_id=?", (doc_id,))
        db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
        return names

    def delete_cards(self, names: Sequence[str]) -> None:
        for start in range(0, len(names), self.max_batch):
            self.cards.delete(ids=list(names[start : start + self.max_batch]))

    def missing_cards(self) -> list[ToolSpec]:
        """Tools whose card vector is absent from this collection (new embedder, interrupted write)."""
        specs = self.list_tools()
        present: set[str] = set()
        names = [s.name for s in specs]
        for start in range(0, len(names), self.max_batch):
            got = self.cards.get(ids=names[start : start + self.max_batch], include=["metadatas"])
            for name, meta in zip(got["ids"], got["metadatas"] or []):
                if meta and meta.get("tool_id"):
                    present.add(f"{name}\x00{meta['tool_id']}")
        return [s for s in specs if f"{s.name}\x00{s.tool_id}" not in present]

    def close(self) -> None:
        self._db.close()


_COLS = "name, tool_id, kind, doc_id, title, description, parameters"


def _row_to_spec(row: tuple[Any, ...]) -> ToolSpec:
    name, _tool_id, kind, doc_id, title, description, params = row
    return ToolSpec(
        name=name, kind=kind, doc_id=doc_id, title=title, description=description,
        parameters=json.loads(params) if params else None,
    )


def check_unique(specs: Sequence[ToolSpec]) -> None:
    seen: set[str] = set()
    for s in specs:
        if s.name in seen:
            raise CatalogError(f"tool name {s.name!r} appears twice in one batch")
        seen.add(s.name)
