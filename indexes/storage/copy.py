"""Copy a workspace's state to another folder, all or nothing: to move a catalog to another machine, keep a
backup, or try a change on a copy.

What is copied is what cannot be rebuilt: the catalog's rows (SQLite, through its backup API, so the copy
is one consistent snapshot even while readers are open), every Chroma collection (vectors, texts and
metadata, read page by page), and every other file of the workspace (the documents' persisted indexes,
``routing.json``, trained model versions, datasets, ``config.toml``). Derived data is not: the BM25
snapshots are rebuilt by the first route, the de-quantised LLM weights (``models/llm``) by the first
answer, and the service's ``tmp/`` and ``uploads/`` are scratch.

The copy is written under a hidden temporary name beside the target, checked (the same catalog version,
the same number of rows in every collection), and only then renamed into place; any failure removes it.
A catalog that changes while it is copied is refused rather than copied half old, half new.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from agentic_router.indexes.config import RouterConfig
from agentic_router.indexes.errors import CatalogError, InputError
from agentic_router.indexes.storage.catalog_db import SQLiteCatalogDB
from agentic_router.indexes.storage.chroma import chroma_client, forget_client, iter_collection

DERIVED = ("lexical", "tmp", "uploads")  # BM25 snapshots rebuilt by the first route; the service's scratch
MODEL_CACHES = ("llm",)  # under models/: caches of packaged weights, rebuilt on first use
PAGE = 1000


def copy_workspace(config: RouterConfig, target: Path,
                   progress: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Copy ``config``'s workspace to ``target`` (which must not exist, or be an empty folder). Returns what
    was copied: ``{target, version, tools, documents, collections: {name: rows}}``."""
    source = config.workspace
    target = check_target(source, target)
    if config.shared:
        raise InputError("this workspace's catalog is shared (state_url): copy it with copy_shared.copy_from_shared")
    if not config.catalog_path.is_file():
        raise InputError(f"{source} holds no catalog to copy")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".copying", dir=target.parent))
    try:
        version = _copy_rows(config.catalog_path, tmp / config.catalog_path.name)
        counts = _copy_vectors(config, tmp / config.chroma_dir.name, progress)
        _copy_files(config, tmp)
        db = SQLiteCatalogDB(tmp / config.catalog_path.name)
        try:
            report = {"version": db.version(), "tools": db.count_tools(), "documents": db.count_documents()}
        finally:
            db.close()
        if SQLiteCatalogDB(config.catalog_path).version() != version:
            raise CatalogError("the catalog changed while it was copied; copy again when no one is writing to it")
        _check(tmp / config.chroma_dir.name, counts)
        forget_client(tmp / config.chroma_dir.name)
        move_into_place(tmp, target)
    except BaseException:
        forget_client(tmp / config.chroma_dir.name)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"target": str(target), **report, "collections": counts}


def check_target(source: Path, target: Path) -> Path:
    """The target folder, resolved, once it is known to be new (or empty) and outside the source."""
    target = target.expanduser().resolve()
    if target == source.resolve() or source.resolve() in target.parents:
        raise InputError(f"cannot copy {source} into itself ({target})")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(f"{target} exists and is not an empty folder; choose a new one")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def move_into_place(tmp: Path, target: Path) -> None:
    """The checked copy becomes ``target`` in one rename."""
    if target.exists():
        target.rmdir()  # the empty folder the user named
    tmp.chmod(0o755)
    tmp.rename(target)


def _copy_rows(db_path: Path, to: Path) -> int:
    """A consistent snapshot of the SQLite catalog (its backup API), and the version it holds."""
    src = sqlite3.connect(str(db_path))
    dst = sqlite3.connect(str(to))
    try:
        src.backup(dst)
        row = dst.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return int(row[0]) if row else 0
    finally:
        dst.close()
        src.close()


def _copy_vectors(config: RouterConfig, to: Path, progress: Callable[[str, int], None] | None) -> dict[str, int]:
    """Every Chroma collection of the workspace, rows with their vectors, texts and metadata."""
    source = chroma_client(config.chroma_dir)
    return copy_collections(source.list_collections(), chroma_client(to), progress)


def copy_collections(collections: Sequence[Any], dest: Any, progress: Callable[[str, int], None] | None = None
                     ) -> dict[str, int]:
    """Copy ``collections`` (rows with their vectors, texts and metadata) into new ones of the same names
    on the client ``dest``; returns the rows copied per collection."""
    counts: dict[str, int] = {}
    for coll in sorted(collections, key=lambda c: c.name):
        copy = dest.create_collection(coll.name, metadata=coll.metadata or None, embedding_function=None)
        batch: dict[str, list[Any]] = {"ids": [], "embeddings": [], "documents": [], "metadatas": []}
        n = 0
        for row in iter_collection(coll, include=("documents", "metadatas", "embeddings")):
            batch["ids"].append(row["id"])
            batch["embeddings"].append(row["embedding"])
            batch["documents"].append(row["document"])
            batch["metadatas"].append(row["metadata"] or None)
            if len(batch["ids"]) >= PAGE:
                n += _flush(copy, batch)
        n += _flush(copy, batch)
        counts[coll.name] = n
        if progress is not None:
            progress(coll.name, n)
    return counts


def _flush(coll: Any, batch: dict[str, list[Any]]) -> int:
    n = len(batch["ids"])
    if n:
        coll.add(ids=batch["ids"], embeddings=batch["embeddings"], documents=batch["documents"],
                 metadatas=batch["metadatas"])
        for values in batch.values():
            values.clear()
    return n


def _copy_files(config: RouterConfig, to: Path) -> None:
    """Every other file of the workspace (the documents' indexes, routing.json, model versions, datasets,
    config.toml), except what was copied another way and what is rebuilt on use."""
    source = config.workspace
    skip = {config.catalog_path.name, config.chroma_dir.name, *DERIVED}
    skip |= {config.catalog_path.name + suffix for suffix in ("-wal", "-shm", "-journal")}
    for entry in sorted(source.iterdir()):
        if entry.name in skip:
            continue
        if entry.is_dir():
            shutil.copytree(entry, to / entry.name, ignore=lambda folder, names: [
                n for n in names if Path(folder) == source / "models" and n in MODEL_CACHES])
        else:
            shutil.copy2(entry, to / entry.name)


def _check(chroma: Path, counts: dict[str, int]) -> None:
    """The copy holds as many rows in every collection as were read from the source."""
    client = chroma_client(chroma)
    found = {c.name: c.count() for c in client.list_collections()}
    if found != counts:
        raise CatalogError(f"the copied vectors do not match the source ({found} != {counts})")
