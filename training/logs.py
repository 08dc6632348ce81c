"""Labelled query logs (``{"qid","query","gold"}``) turned into a supervised routing data set.

A logged question names the document (or tool) that answered it, never the passage. But the router scores
a document tool mostly by its best-matching chunk, so a model trained only on (question, tool card) pairs
learns the wrong side. Each question is therefore also given the chunk of its gold document it matches
best (base embedding similarity plus word overlap), which becomes its retrieval pair; the card stays its
router pair.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from agentic_router.indexes.encoders.embeddings import embed_queries
from agentic_router.indexes.errors import InputError
from agentic_router.indexes.lexical.cache import default_stopwords, tokenize
from agentic_router.training.dataset import RoutingDataset
from agentic_router.training.evaluate import load_queries

if TYPE_CHECKING:
    from agentic_router.router.workspace import RouterView

OVERLAP_WEIGHT = 0.5  # word overlap finds the passage holding the answer's words; cosine alone drifts to lookalikes


def dataset_from_logs(view: "RouterView", path: Path, val_fraction: float, seed: int) -> RoutingDataset:
    """Gold ids are tool names or doc_ids; a doc_id stands for that document's vector tool (kind "vector")."""

    tools = view.list_tools()
    rows = load_queries(path)
    by_name = {t.name: t for t in tools}
    vector_of = {t.doc_id: t.name for t in tools if t.kind == "vector" and t.doc_id}
    ds, unknown, dropped = RoutingDataset(), Counter[str](), 0
    for row in rows:
        names = []
        for gold in row.gold:
            name = gold if gold in by_name else vector_of.get(gold)
            if name is None:
                unknown[gold] += 1
            elif name not in names:
                names.append(name)
        if not names:
            dropped += 1
            continue
        qid = row.qid if row.qid not in ds.queries else f"{row.qid}#{len(ds.queries)}"
        ds.queries[qid], ds.relevant_docs[qid] = row.query, names
        ds.kinds[qid], ds.origin[qid] = by_name[names[0]].kind, "log"
        for name in names:
            ds.corpus[name] = by_name[name].card()
    if not ds.queries:
        raise InputError(f"{path}: no gold id names a tool or document of this catalog "
                         f"(e.g. {next(iter(unknown), '?')!r})")
    gold_docs = {q: [d for n in names if (d := by_name[n].doc_id)] for q, names in ds.relevant_docs.items()}
    mapped = assign_best_chunks(view, ds, gold_docs)
    ds.assign_split(val_fraction, seed)
    ds.meta = {"generator": "log", "source_file": str(path), "rows": len(rows), "kept": len(ds.queries),
               "unknown_gold_ids": sum(unknown.values()), "unknown_examples": sorted(unknown)[:5],
               "rows_without_known_gold": dropped, "seed": seed, "val_fraction": val_fraction,
               "questions_with_chunk": mapped,
               "gold_mapping": "a doc_id maps to that document's vector tool and to its best-matching chunk"}
    return ds


def assign_best_chunks(view: "RouterView", ds: RoutingDataset, gold_docs: dict[str, list[str]]) -> int:
    """Set ``relevant_chunks[q]`` to the best chunk of each gold document of ``q``; returns how many got one."""

    wanted = {d for docs in gold_docs.values() for d in docs}
    if not wanted:
        return 0
    per_doc: dict[str, list[tuple[str, str, np.ndarray]]] = defaultdict(list)
    for row in view.catalog.iter_chunks(("documents", "metadatas", "embeddings")):
        doc_id = str(row["metadata"].get("doc_id", ""))
        if doc_id in wanted and row["document"]:
            per_doc[doc_id].append((row["id"], row["document"], np.asarray(row["embedding"], dtype=np.float32)))
    qids = [q for q, docs in gold_docs.items() if any(d in per_doc for d in docs)]
    if not qids:
        return 0
    stop = default_stopwords()
    qvecs = np.asarray(embed_queries(view.embedder, [ds.queries[q] for q in qids]), dtype=np.float32)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True) + 1e-12
    words = {cid: set(tokenize(text, stop)) for rows in per_doc.values() for cid, text, _ in rows}
    for q, qvec in zip(qids, qvecs):
        terms = set(tokenize(ds.queries[q], stop))
        chosen = []
        for doc_id in gold_docs[q]:
            rows = per_doc.get(doc_id)
            if not rows:
                continue
            mat = np.stack([v for _, _, v in rows])
            cos = mat @ qvec / (np.linalg.norm(mat, axis=1) + 1e-12)
            overlap = np.array([len(terms & words[cid]) / max(1, len(terms)) for cid, _, _ in rows])
            best = int(np.argmax(cos + OVERLAP_WEIGHT * overlap))
            cid, text, _ = rows[best]
            chosen.append(cid)
            ds.chunks[cid] = text
        if chosen:
            ds.relevant_chunks[q] = chosen
    return sum(1 for q in qids if q in ds.relevant_chunks)


def add_generated(ds: RoutingDataset, generated: RoutingDataset) -> int:
    """Add generated questions to ``ds``'s training split (ids prefixed ``gen:``); returns how many."""
    for q, text in generated.queries.items():
        qid = f"gen:{q}"
        ds.queries[qid], ds.relevant_docs[qid] = text, list(generated.relevant_docs.get(q, []))
        if generated.relevant_chunks.get(q):
            ds.relevant_chunks[qid] = list(generated.relevant_chunks[q])
        ds.kinds[qid] = generated.kinds.get(q, "")
        ds.origin[qid] = generated.origin.get(q, "ict")
        ds.split[qid] = "train"
    for key, text in generated.corpus.items():
        ds.corpus.setdefault(key, text)
    for key, text in generated.chunks.items():
        ds.chunks.setdefault(key, text)
    ds.meta["augmented"] = {"questions": len(generated.queries), "generator": generated.meta.get("generator"),
                            "llm": generated.meta.get("llm"), "kept_by_origin": generated.meta.get("kept_by_origin")}
    return len(generated.queries)
