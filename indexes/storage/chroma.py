"""Chroma access shared by the catalog, the lexical indexes and the model registry.

Chroma's default embedding function downloads a model, so every collection is created with
``embedding_function=None`` and the project always passes vectors. Collections are read page by page
(a catalog may hold a million tools) and written in the client's maximum batch size.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

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


def forget_client(path: Path | str) -> None:
    """Drop the cached client of ``path`` (a folder about to be renamed: a later client opens the new name)."""
    with _CLIENTS_LOCK:
        _CLIENTS.pop(str(path), None)


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
