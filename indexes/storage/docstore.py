"""Each document's persisted indexes (summary and keyword tables: a folder of JSON files), kept with the
shared catalog's rows so every replica can answer from a document another one ingested.

A writer stores the folder, keyed by document and content hash, before the commit that names it; a
replica unpacks it into its own workspace the first time it needs that content. A row stored by a writer
killed before its commit names content no document has: ``drop`` removes it with the next change of that
document.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from agentic_router.indexes.atomic import atomic_write_dir
from agentic_router.indexes.errors import CatalogError
from agentic_router.indexes.storage.postgres import PostgresCatalogDB

HASH_FILE = "content_hash"  # written into an unpacked folder: which content of the document it holds


def unpack(folder: Path, doc_id: str, content_hash: str, files: dict[str, str]) -> None:
    """Write a document's stored index files into ``folder``, marked with the content they hold; a stored
    name that would leave the folder is refused."""
    for rel, text in files.items():
        target = (folder / rel).resolve()
        if folder.resolve() not in target.parents:
            raise CatalogError(f"document {doc_id!r}: stored file name {rel!r} leaves its folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    (folder / HASH_FILE).write_text(content_hash, encoding="utf-8")


class DocStore:
    """Documents' persisted-index folders in the ``document_files`` table of the shared state."""

    def __init__(self, db: PostgresCatalogDB) -> None:
        self.db = db
        self._lock = threading.Lock()

    def put(self, doc_id: str, content_hash: str, folder: Path) -> None:
        files = {str(p.relative_to(folder)): p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*")) if p.is_file()}
        with self.db.connection() as conn:
            conn.execute("INSERT INTO document_files (doc_id, content_hash, files) VALUES (%s, %s, %s) "
                         "ON CONFLICT (doc_id, content_hash) DO UPDATE SET files = excluded.files",
                         (doc_id, content_hash, json.dumps(files)))

    def drop(self, doc_id: str, keep: str | None = None) -> None:
        """Every stored content of ``doc_id`` except the one with content hash ``keep``."""
        with self.db.connection() as conn:
            conn.execute("DELETE FROM document_files WHERE doc_id = %s AND content_hash IS DISTINCT FROM %s",
                         (doc_id, keep))

    def ensure(self, doc_id: str, content_hash: str, folder: Path) -> None:
        """Make ``folder`` hold this content of the document, unpacking it from the shared state if not."""
        marker = folder / HASH_FILE
        if marker.is_file() and marker.read_text(encoding="utf-8").strip() == content_hash:
            return
        with self._lock:
            if marker.is_file() and marker.read_text(encoding="utf-8").strip() == content_hash:
                return
            with self.db.connection() as conn:
                row = conn.execute("SELECT files FROM document_files WHERE doc_id = %s AND content_hash = %s",
                                   (doc_id, content_hash)).fetchone()
            if row is None:
                raise CatalogError(f"document {doc_id!r} has no stored indexes in the shared catalog")
            files: dict[str, str] = json.loads(row[0])
            folder.parent.mkdir(parents=True, exist_ok=True)
            try:
                atomic_write_dir(folder, lambda tmp: unpack(tmp, doc_id, content_hash, files))
            except OSError:  # another process (a worker of the same service) unpacked it at the same moment
                if not (marker.is_file() and marker.read_text(encoding="utf-8").strip() == content_hash):
                    raise
