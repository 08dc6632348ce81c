"""Baselines that the router must beat, evaluated on the same queries in the same run."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from agentic_router.indexes.encoders.embeddings import embed_texts
from agentic_router.indexes.lexical.cache import default_stopwords, import_bm25s, tokenize
from agentic_router.indexes.schema import RouteHit, ToolSpec


class LeadEmbeddingBaseline:
    """One vector per document: its title + first ``chars`` characters (the plain approach)."""

    def __init__(self, embedder: Any, docs: Sequence[tuple[str, str, str]], chars: int = 2000) -> None:

        self.name = "lead"
        self.embedder = embedder
        self.doc_ids = [d[0] for d in docs]
        self.matrix = np.asarray(embed_texts(embedder, [f"{t}\n{x[:chars]}" for _, t, x in docs]), dtype=np.float32)

    def rank(self, query: str, depth: int) -> list[RouteHit]:
        q = np.asarray(self.embedder.get_query_embedding(query), dtype=np.float32)
        sims = self.matrix @ q
        order = np.argsort(-sims)[:depth]
        return [
            RouteHit(name=self.doc_ids[i], score=float(sims[i]), kind="document", doc_id=self.doc_ids[i],
                     tool_id=self.doc_ids[i], description="")
            for i in order
        ]


class Bm25Baseline:
    """Lexical baseline: BM25 (bm25s) over the same tool cards the router embeds."""

    def __init__(self, specs: Sequence[ToolSpec]) -> None:

        bm25s = import_bm25s()
        self.stopwords = default_stopwords()
        self.name = "bm25"
        self.specs = list(specs)
        self.model = bm25s.BM25()
        self.model.index([tokenize(s.card(), self.stopwords) or ["_"] for s in self.specs], show_progress=False)

    def rank(self, query: str, depth: int) -> list[RouteHit]:
        tokens = tokenize(query, self.stopwords)
        if not tokens or not self.specs:
            return []
        k = min(depth, len(self.specs))
        ids, scores = self.model.retrieve([tokens], k=k, show_progress=False)
        return [
            RouteHit(name=self.specs[i].name, score=float(sc), kind=self.specs[i].kind, doc_id=self.specs[i].doc_id,
                     tool_id=self.specs[i].tool_id, description=self.specs[i].description)
            for i, sc in zip(ids[0].tolist(), scores[0].tolist())
        ]
