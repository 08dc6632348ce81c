"""The training data set: LlamaIndex's ``EmbeddingQAFinetuneDataset`` JSON layout, plus what routing needs.

Standard keys (readable by LlamaIndex users as they are):
- ``queries``: ``{qid: question}``
- ``corpus``: ``{tool_name: tool card text}`` — the *router* targets
- ``relevant_docs``: ``{qid: [tool_name, ...]}`` (several allowed)
- ``mode``: ``"text"``
Extra keys (ignored by LlamaIndex's loader):
- ``chunks``: ``{chunk_id: chunk text}`` and ``relevant_chunks``: ``{qid: [chunk_id]}`` — retrieval pairs
  for document catalogs (a question generated from a chunk is answered by that chunk);
- ``kinds``: ``{qid: "vector"|"summary"|"keyword"|"external"}`` — the index kind the question calls for;
- ``origin``: ``{qid: "llm"|"ict"|"log"}`` — how the question was made;
- ``split``: ``{qid: "train"|"val"}``;
- ``meta``: generation settings and statistics (kept share, counts, seed, catalog hash).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentic_router.indexes.atomic import atomic_write_json
from agentic_router.indexes.errors import InputError

SPLITS = ("train", "val")


@dataclass
class RoutingDataset:
    queries: dict[str, str] = field(default_factory=dict)
    corpus: dict[str, str] = field(default_factory=dict)
    relevant_docs: dict[str, list[str]] = field(default_factory=dict)
    chunks: dict[str, str] = field(default_factory=dict)
    relevant_chunks: dict[str, list[str]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)
    split: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    mode: str = "text"
    # "tool:<name>" / "chunk:<id>" -> document id. Texts of a question's own document are never used as its
    # negatives: at document level they answer it too (filled from the catalog at training time).
    groups: dict[str, str] = field(default_factory=dict)

    # ---- views -------------------------------------------------------------------------------------
    def qids(self, split: str | None = None) -> list[str]:
        return [q for q in self.queries if split is None or self.split.get(q, "train") == split]

    def has_real_validation(self) -> bool:
        """True when validation questions come from real logs rather than generated ones."""
        val = self.qids("val")
        return bool(val) and all(self.origin.get(q) == "log" for q in val)

    def assign_split(self, val_fraction: float, seed: int) -> None:
        qids = sorted(self.queries)
        rng = random.Random(seed)
        rng.shuffle(qids)
        n_val = int(round(len(qids) * val_fraction))
        self.split = {q: ("val" if i < n_val else "train") for i, q in enumerate(qids)}

    def content_hash(self) -> str:
        payload = json.dumps([self.queries, self.relevant_docs, self.relevant_chunks, self.split], sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    # ---- persistence -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries, "corpus": self.corpus, "relevant_docs": self.relevant_docs, "mode": self.mode,
            "chunks": self.chunks, "relevant_chunks": self.relevant_chunks, "kinds": self.kinds,
            "origin": self.origin, "split": self.split, "meta": self.meta, "groups": self.groups,
        }

    def save(self, path: str | Path) -> None:
        """Write atomically: a crash never leaves a truncated data set behind."""
        atomic_write_json(Path(path), self.to_dict(), indent=None)

    @classmethod
    def load(cls, path: str | Path) -> "RoutingDataset":
        path = Path(path)
        if not path.is_file():
            raise InputError(f"no such dataset: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not a valid dataset JSON ({exc})".splitlines()[0]) from exc
        if not isinstance(data, dict) or not all(k in data for k in ("queries", "corpus", "relevant_docs")):
            raise InputError(f"{path}: dataset needs 'queries', 'corpus' and 'relevant_docs'")
        known = set(cls.__dataclass_fields__)
        ds = cls(**{k: v for k, v in data.items() if k in known})
        if not ds.queries:
            raise InputError(f"{path}: dataset is empty (no queries)")
        missing = [q for q in ds.queries if not ds.relevant_docs.get(q) and not ds.relevant_chunks.get(q)]
        if missing:
            raise InputError(f"{path}: query {missing[0]!r} has no relevant tool or chunk")
        return ds
