"""The texts a routing data set trains against: every tool card and chunk of the catalog, not only positives.

Negatives mined from positives alone are just the answers to other questions, so a model trained on them
never meets the near-miss passages the router actually confuses. LlamaIndex's ``EmbeddingQAFinetuneDataset``
keeps every node in its corpus for the same reason. A cap keeps a million-chunk catalog from turning the
data set into a gigabyte of JSON (positives are always kept, the rest is a seeded sample).

The vectors Chroma already holds for those texts are handed to the adapter trainer, so a query-side
adapter never re-embeds the catalog (and trains against exactly the vectors the router searches).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from agentic_router.training.dataset import RoutingDataset
from agentic_router.training.trainers.common import CARD_PREFIX, CHUNK_PREFIX

if TYPE_CHECKING:
    from agentic_router.router.workspace import RouterView

MAX_CHUNKS = 20_000
PAGE = 2000


def add_catalog_texts(view: "RouterView", ds: RoutingDataset, max_chunks: int = MAX_CHUNKS,
                      seed: int = 0) -> dict[str, int]:
    """Put every tool card in ``ds.corpus`` and up to ``max_chunks`` chunks in ``ds.chunks`` (in place).

    Texts already in the data set (positives, ICT passages) are left as they are. Returns counts for meta.
    """
    added_cards = 0
    for spec in view.list_tools():
        if spec.name not in ds.corpus:
            ds.corpus[spec.name] = spec.card()
            added_cards += 1
        if spec.doc_id:
            ds.groups[CARD_PREFIX + spec.name] = spec.doc_id
    rows = []
    for r in view.catalog.iter_chunks():
        doc_id = r["metadata"].get("doc_id")
        if doc_id:
            ds.groups[CHUNK_PREFIX + r["id"]] = str(doc_id)
        if r["document"]:
            rows.append((r["id"], r["document"]))
    for cid in ds.chunks:  # ICT passages "<chunk id>~s<i>" belong to their chunk's document
        base = cid.split("~", 1)[0]
        if CHUNK_PREFIX + base in ds.groups:
            ds.groups[CHUNK_PREFIX + cid] = ds.groups[CHUNK_PREFIX + base]
    fresh = [(cid, text) for cid, text in rows if cid not in ds.chunks]
    room = max(0, max_chunks - len(ds.chunks))
    if len(fresh) > room:
        fresh = random.Random(seed).sample(fresh, room)
    ds.chunks.update(fresh)
    return {"corpus_cards": len(ds.corpus), "corpus_chunks": len(ds.chunks), "added_cards": added_cards,
            "added_chunks": len(fresh), "catalog_chunks": len(rows)}


def stored_vectors(view: "RouterView", ds: RoutingDataset) -> dict[str, list[float]]:
    """Base-model vectors Chroma holds for the data set's texts, keyed like ``corpus_texts``.

    ``router`` must be a base-model view (``embedder_version=None``): an adapter sits on the base embedder.
    Texts not stored (ICT passages with a sentence cut out) are simply absent and get embedded by the trainer.
    """
    out = {CARD_PREFIX + name: vec for name, vec in view.catalog.card_vectors(list(ds.corpus)).items()}
    wanted = set(ds.chunks)
    for row in view.catalog.iter_chunks(("embeddings",)):
        if row["id"] in wanted:
            out[CHUNK_PREFIX + row["id"]] = list(map(float, row["embedding"]))
    return out
