"""Storage primitives every layer shares: Chroma access and writes that never leave half a file behind.

Chroma's default embedding function downloads a model, so every collection is created with
``embedding_function=None`` and the project always passes vectors. Collections are read page by page
(a catalog may hold a million tools) and written in the client's maximum batch size.

Files and folders are written under a temporary name and renamed into place: a crash or a Ctrl-C leaves
either the old content or the new one, never a truncated mix.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

PAGE = 2000
_CLIENTS: dict[str, "ClientAPI"] = {}
_CLIENTS_LOCK = threading.Lock()


def chroma_client(path: Path | str) -> "ClientAPI":
    """A persistent (embedded) client, or an HTTP client when ``path`` is ``http://host:port``.

    One client per location and process: Chroma's embedded client must not be opened twice on one folder."""
    key = str(path)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            import chromadb
            from chromadb.config import Settings

            settings = Settings(anonymized_telemetry=False, allow_reset=False)
            if key.startswith(("http://", "https://")):
                from urllib.parse import urlparse

                url = urlparse(key)
                _CLIENTS[key] = chromadb.HttpClient(
                    host=url.hostname or "127.0.0.1", port=url.port or 8000, ssl=url.scheme == "https",
                    settings=settings,
                )
            else:
                Path(path).mkdir(parents=True, exist_ok=True)
                _CLIENTS[key] = chromadb.PersistentClient(path=key, settings=settings)
        return _CLIENTS[key]


def collection(client: "ClientAPI", name: str) -> "Collection":
    return client.get_or_create_collection(name, embedding_function=None, metadata={"hnsw:space": "cosine"})


def iter_collection(coll: "Collection", include: Sequence[str] = ("documents", "metadatas"),
                    page: int = PAGE) -> Iterator[dict[str, Any]]:
    """Every row of a collection, page by page: ``{"id", "document", "metadata", "embedding"}`` (what was
    not asked for is None; a missing metadata is ``{}``)."""
    include = list(include)
    total = coll.count()
    for offset in range(0, total, page):
        got = coll.get(include=include, limit=page, offset=offset)
        docs = got.get("documents") if "documents" in include else None
        metas = got.get("metadatas") if "metadatas" in include else None
        vecs = got.get("embeddings") if "embeddings" in include else None
        for i, row_id in enumerate(got["ids"]):
            yield {"id": row_id, "document": docs[i] if docs is not None else None,
                   "metadata": (metas[i] if metas is not None else None) or {},
                   "embedding": vecs[i] if vecs is not None else None}


def upsert(coll: "Collection", ids: list[str], embeddings: Sequence[Any], metadatas: list[dict[str, Any]],
           documents: list[str], max_batch: int) -> None:
    for start in range(0, len(ids), max_batch):
        end = start + max_batch
        coll.upsert(ids=ids[start:end], embeddings=list(embeddings[start:end]), metadatas=metadatas[start:end],
                    documents=documents[start:end])


def delete_ids(coll: "Collection", ids: Sequence[str], max_batch: int) -> None:
    for start in range(0, len(ids), max_batch):
        coll.delete(ids=list(ids[start:start + max_batch]))


# ---- files ---------------------------------------------------------------------------------------------
def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary sibling and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(data, indent=indent, ensure_ascii=False))


def atomic_write_dir(target: Path, fill: Callable[[Path], None]) -> None:
    """Build a folder with ``fill(tmp)`` in a temporary sibling, then swap it in for ``target``.

    An existing ``target`` is moved aside first (a rename cannot replace a non-empty folder) and removed
    once the new one is in place; a failure inside ``fill`` leaves ``target`` untouched."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; this is an ordinary workspace folder
        fill(tmp)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
