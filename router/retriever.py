"""The tool retriever: narrows a catalog of any size to the few tools an agent should see.

A tool is scored from two kinds of embedding evidence:
- its *card* (readable name + description + parameters), one vector per tool;
- for document tools, the best-matching *chunk* of its document (the chunks collection the vector
  indexes already keep). A question about a detail deep in a paper rarely resembles the paper's
  description, but it does resemble the passage that answers it.
``dense = w * card + (1 - w) * evidence`` for document tools (``w`` = ``card_weight``), ``card`` alone for
external tools. Both searches are approximate-nearest-neighbour queries in Chroma, so the cost grows with
``k`` and ``chunk_candidates``, not with the catalog size.

A lexical channel (BM25 over chunks and cards, ``router.lexical``) adds the exact rare words a question
shares with its answer: ``score = (1 - l) * dense + l * bm25 / best_bm25`` with ``l`` = ``lexical_weight``
(0 turns it off). Candidates found by either channel are scored by both.

It is a LlamaIndex ``BaseRetriever`` over tool-card nodes; wrapped in an ``ObjectRetriever`` it yields the
tools themselves (see ``router.agent``).
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

import numpy as np
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from agentic_router.indexes.catalog import ToolCatalog
from agentic_router.indexes.lexical import LexicalCache
from agentic_router.indexes.errors import InputError
from agentic_router.indexes.schema import RouteHit, ToolSpec

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection
    from llama_index.core.base.embeddings.base import BaseEmbedding

MAX_QUERY_CHARS = 10_000
_SUMMARY_INTENT = re.compile(
    r"\b(summar\w*|overview|outline|gist|main (?:idea|point|finding|topic|contribution)s?|key (?:points|findings)|"
    r"what is (?:this|the) (?:document|paper|article|text) about|about what|compare|comparison|in general)\b",
    re.I,
)
_QUESTION_WORD = re.compile(r"\b(what|which|who|whom|whose|when|where|why|how|is|are|does|do|did|can|could)\b", re.I)


def kind_intent(query: str) -> str:
    """Which index kind a question calls for: overview questions -> summary, bare terms -> keyword,
    everything else (most questions ask for a fact) -> vector. Decides the order *within* a document."""
    if _SUMMARY_INTENT.search(query):
        return "summary"
    words = query.split()
    if len(words) <= 3 and not _QUESTION_WORD.search(query) and not query.rstrip().endswith("?"):
        return "keyword"
    if re.search(r"\"[^\"]{2,}\"", query):
        return "keyword"
    return "vector"


def check_query(query: str, max_chars: int = MAX_QUERY_CHARS) -> str:
    """Reject what cannot be a question, with a message that says what to change."""
    if not isinstance(query, str) or not query.strip():
        raise InputError("the question is empty")
    if len(query) > max_chars:
        raise InputError(f"the question is {len(query):,} characters long; the limit is {max_chars:,}")
    return query.strip()


class ToolRetriever(BaseRetriever):
    """Ranks catalog tools for a question. ``route`` returns ``RouteHit``s; ``retrieve`` returns card nodes."""

    def __init__(
        self,
        catalog: ToolCatalog,
        embed_model: "BaseEmbedding",
        chunks: "Collection | None",
        top_k: int = 5,
        card_weight: float = 0.15,
        chunk_candidates: int = 64,
        kind_bonus: float = 0.05,
        lexical: "LexicalCache | None" = None,
        lexical_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.catalog = catalog
        self.embed_model = embed_model
        self.chunks = chunks
        self.top_k = top_k
        self.card_weight = card_weight
        self.chunk_candidates = chunk_candidates
        self.kind_bonus = kind_bonus
        self.lexical = lexical
        self.lexical_weight = lexical_weight if lexical is not None else 0.0

    # ---- routing -----------------------------------------------------------------------------------
    def route(self, query: str, k: int | None = None) -> list[RouteHit]:
        query = check_query(query)
        k = k or self.top_k
        exact = self.catalog.get_tool(query) if len(query) <= 64 else None
        qvec = np.asarray(self.embed_model.get_query_embedding(query), dtype=np.float32)
        hits = self._score(qvec, k, kind_intent(query), query)
        if exact is not None:  # an agent re-fetches a tool by its exact name; it must come back first
            hits = [h for h in hits if h.name != exact.name]
            hits.insert(0, _hit(exact, 1.0, None, None))
        return hits[:k]

    def route_vector(self, query: str, qvec: np.ndarray, k: int) -> list[RouteHit]:
        """Route from a precomputed query vector (evaluation embeds all queries in one batch)."""
        return self._score(np.asarray(qvec, dtype=np.float32), k, kind_intent(query), query)[:k]

    def _lexical(self, query: str, n_cards: int) -> tuple[dict[str, float], dict[str, float]]:
        """Normalised BM25 scores: per tool (cards) and per document (best chunk)."""
        if self.lexical is None or self.lexical_weight <= 0 or not query:
            return {}, {}
        version = self.catalog.version()
        cards = self.lexical.get(self.catalog.cards, version, "cards").search(query, n_cards)
        docs = {}
        if self.chunks is not None and self.chunks.count():
            docs = self.lexical.get(self.chunks, version, "chunks").search(query, self.chunk_candidates)
        return cards, docs

    def _score(self, qvec: np.ndarray, k: int, intent: str = "vector", query: str = "") -> list[RouteHit]:
        n_tools = self.catalog.cards.count()
        if n_tools == 0:
            return []
        n_cards = min(n_tools, max(4 * k, 32))
        card_sim = self._card_search(qvec, n_cards)
        evidence, passages = self._chunk_search(qvec)
        lex_cards, lex_docs = self._lexical(query, n_cards)
        names = set(card_sim) | set(lex_cards)
        specs = self.catalog.get_tools(sorted(names))
        doc_ids = sorted(set(evidence) | set(lex_docs))
        if doc_ids:
            for doc_tools in self.catalog.tools_for_documents(doc_ids).values():
                for spec in doc_tools:
                    specs[spec.name] = spec
        missing = [n for n in specs if n not in card_sim]
        card_sim.update(self._card_similarity(qvec, missing))
        floor = min(evidence.values()) if evidence else 0.0
        lam = self.lexical_weight
        hits = []
        for name, spec in specs.items():
            card = card_sim.get(name, 0.0)
            if spec.kind == "external" or self.chunks is None:
                score = (1 - lam) * card + lam * lex_cards.get(name, 0.0)
                hits.append(_hit(spec, score, card, None))
            else:
                ev = evidence.get(spec.doc_id or "", floor)
                dense = self.card_weight * card + (1 - self.card_weight) * ev
                score = (1 - lam) * dense + lam * lex_docs.get(spec.doc_id or "", 0.0)
                score += self.kind_bonus if spec.kind == intent else 0.0
                hits.append(_hit(spec, score, card, ev, passages.get(spec.doc_id or "")))
        hits.sort(key=lambda h: (-h.score, h.name))
        return hits

    def _card_search(self, qvec: np.ndarray, n: int) -> dict[str, float]:
        res = self.catalog.cards.query(query_embeddings=[qvec.tolist()], n_results=n, include=["distances"])
        return {name: 1.0 - float(d) for name, d in zip(res["ids"][0], res["distances"][0])}

    def _card_similarity(self, qvec: np.ndarray, names: list[str]) -> dict[str, float]:
        if not names:
            return {}
        got = self.catalog.cards.get(ids=names, include=["embeddings"])
        if got["embeddings"] is None or len(got["ids"]) == 0:
            return {}
        mat = np.asarray(got["embeddings"], dtype=np.float32)
        return dict(zip(got["ids"], (mat @ qvec).tolist()))

    def _chunk_search(self, qvec: np.ndarray) -> tuple[dict[str, float], dict[str, str]]:
        """Best chunk similarity per document among the nearest chunks, and that chunk's text."""
        if self.chunks is None:
            return {}, {}
        n = min(self.chunk_candidates, self.chunks.count())
        if n == 0:
            return {}, {}
        res = self.chunks.query(
            query_embeddings=[qvec.tolist()], n_results=n, include=["metadatas", "distances", "documents"]
        )
        best: dict[str, float] = {}
        text: dict[str, str] = {}
        for meta, dist, doc in zip(res["metadatas"][0], res["distances"][0], res["documents"][0]):
            doc_id = str((meta or {}).get("doc_id", ""))
            sim = 1.0 - float(dist)
            if doc_id and sim > best.get(doc_id, -1.0):
                best[doc_id] = sim
                text[doc_id] = doc or ""
        return best, text

    # ---- LlamaIndex retriever interface ------------------------------------------------------------
    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [NodeWithScore(node=hit_node(h), score=h.score) for h in self.route(query_bundle.query_str)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # Embedding and Chroma calls block; run them off the event loop the agent lives on.
        return await asyncio.to_thread(self._retrieve, query_bundle)


def hit_node(hit: RouteHit) -> TextNode:
    return TextNode(
        id_=hit.tool_id,
        text=f"{hit.name}: {hit.description}",
        metadata={"name": hit.name, "kind": hit.kind, "doc_id": hit.doc_id or ""},
    )


def _hit(spec: ToolSpec, score: float, card: float | None, ev: float | None, passage: str | None = None) -> RouteHit:
    return RouteHit(
        name=spec.name, score=round(float(score), 6), kind=spec.kind, doc_id=spec.doc_id, tool_id=spec.tool_id,
        description=spec.description, card_score=None if card is None else round(card, 6),
        evidence_score=None if ev is None else round(ev, 6), evidence=passage,
    )


