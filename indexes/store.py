"""Chroma access: one persistent client per workspace, collections that never embed by themselves.

Chroma's default embedding function downloads a model, so every collection is created with
``embedding_function=None`` and the project always passes vectors. Writes are split by the client's
maximum batch size.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

_CLIENTS: dict[str, "ClientAPI"] = {}


def chroma_client(path: Path | str) -> "ClientAPI":
    """A persistent (embedded) client, or an HTTP client when ``path`` is ``http://host:port``."""
    key = str(path)
    if key not in _CLIENTS:
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False, allow_reset=False)
        if key.startswith(("http://", "https://")):
            from urllib.parse import urlparse

            url = urlparse(key)
            _CLIENTS[key] = chromadb.HttpClient(
                host=url.hostname or "127.0.0.1", port=url.port or 8000, ssl=url.scheme == "https", settings=settings
            )
        else:
            Path(path).mkdir(parents=True, exist_ok=True)
            _CLIENTS[key] = chromadb.PersistentClient(path=key, settings=settings)
    return _CLIENTS[key]


def release_client(path: Path | str) -> None:
    """Forget a cached client (tests use this between workspaces)."""
    _CLIENTS.pop(str(path), None)


def collection(client: "ClientAPI", name: str) -> "Collection":
    return client.get_or_create_collection(name, embedding_function=None, metadata={"hnsw:space": "cosine"})


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]


def upsert(
    coll: "Collection",
    ids: list[str],
    embeddings: list[list[float]],
    metadatas: list[dict[str, Any]],
    documents: list[str],
    max_batch: int,
) -> None:
    for start in range(0, len(ids), max_batch):
        end = start + max_batch
        coll.upsert(
            ids=ids[start:end],
            embeddings=embeddings[start:end],
            metadatas=metadatas[start:end],
            documents=documents[start:end],
        )


def delete_where(coll: "Collection", where: dict[str, Any]) -> None:
    coll.delete(where=where)
