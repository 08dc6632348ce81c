"""The tool retriever: gathers the evidence for a question, then ranks the catalog with ``router.retrieval.scoring``.

Gathering is the only part that does I/O, in a fixed order: embed the question (or take a given vector),
the nearest tool cards, the nearest chunks, BM25 over cards and chunks, then one catalog read for the
candidates found by any channel and one for the card similarity of those no card search returned.
Ranking is a pure function of that evidence and the weights.

It is a LlamaIndex ``BaseRetriever`` over tool-card nodes; wrapped in an ``ObjectRetriever`` it yields the
tools themselves (see ``router.answering.objects``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Sequence

import numpy as np
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from agentic_router.indexes.errors import InputError
from agentic_router.indexes.lexical.cache import LexicalCache
from agentic_router.indexes.schema import MAX_TOOL_NAME, RouteHit, ToolSpec
from agentic_router.indexes.storage.catalog import Catalog
from agentic_router.router.retrieval.scoring import Evidence, Weights, kind_intent, make_hit, score

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding

MAX_QUERY_CHARS = 10_000
MEMORY_NEIGHBOURS = 16  # recorded requests consulted per question


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
        catalog: Catalog,
        embed_model: "BaseEmbedding",
        weights: Weights = Weights(),
        lexical: LexicalCache | None = None,
        top_k: int = 5,
        chunk_candidates: int = 64,
    ) -> None:
        super().__init__()
        self.catalog = catalog
        self.embed_model = embed_model
        self.weights = weights if lexical is not None else weights.lexical(0.0)  # no BM25 to weigh
        self.lexical = lexical
        self.top_k = top_k
        self.chunk_candidates = chunk_candidates

    # ---- routing -----------------------------------------------------------------------------------
    def rank_tools(self, query: str, k: int | None = None, qvec: np.ndarray | None = None) -> list[RouteHit]:
        """The ``k`` best tools; a question that is exactly a tool's name gets that tool first. ``qvec``:
        the question's vector, when it was encoded in a batch with others."""
        query = check_query(query)
        vec = self.embed(query) if qvec is None else np.asarray(qvec, dtype=np.float32)
        return self.rank_tools_many([query], vec.reshape(1, -1), k)[0]

    def rank_tools_many(self, queries: Sequence[str], qvecs: np.ndarray, k: int | None = None) -> list[list[RouteHit]]:
        """``rank_tools`` for questions already encoded together (a service's batch, an evaluation): the catalog
        version is read once and the nearest cards of all of them come from one matrix product."""
        k = k or self.top_k
        queries = [check_query(q) for q in queries]
        at = self.catalog.routing_counts()
        qvecs = np.asarray(qvecs, dtype=np.float32).reshape(len(queries), -1)
        cards = self.catalog.nearest_cards_many(qvecs, self.card_candidates(at[1], k), at[0])
        out = []
        for query, qvec, card in zip(queries, qvecs, cards):
            hits = score(self.gather(query, qvec, k, at, card), self.weights, k)
            exact = self.lookup(query, at[0])
            if exact is not None:
                hits = [make_hit(exact, 1.0, None, None)] + [h for h in hits if h.name != exact.name]
            out.append(hits[:k])
        return out

    @staticmethod
    def card_candidates(n_tools: int, k: int) -> int:
        return min(n_tools, max(4 * k, 32))

    def lookup(self, name: str, version: int | None = None) -> ToolSpec | None:
        """The tool called exactly ``name``, if any: an agent fetching a tool it was offered needs no ranking."""
        return self.catalog.get_tools([name], version).get(name) if len(name) <= MAX_TOOL_NAME else None

    def embed(self, query: str) -> np.ndarray:
        return np.asarray(self.embed_model.get_query_embedding(query), dtype=np.float32)

    def rank_by_evidence(self, query: str, qvec: np.ndarray, k: int) -> list[RouteHit]:
        """Rank from a question and its vector (evaluation embeds all questions in one batch)."""
        return score(self.gather(query, np.asarray(qvec, dtype=np.float32), k), self.weights, k)

    def gather(self, query: str, qvec: np.ndarray, k: int, at: tuple[int, int, int] | None = None,
               card: dict[str, float] | None = None) -> Evidence:
        """Collect every channel's evidence for the candidates of one question. ``at``: the catalog's
        ``routing_counts`` the caller read; ``card``: the nearest cards, when computed for a batch."""
        catalog = self.catalog
        evidence = Evidence(intent=kind_intent(query))
        version, n_tools, n_chunks = at or catalog.routing_counts()
        if n_tools == 0:
            return evidence
        n_cards = self.card_candidates(n_tools, k)
        evidence.card = dict(card) if card is not None else catalog.nearest_cards(qvec, n_cards, version)
        for doc_id, sim, text in catalog.nearest_chunks(qvec, min(self.chunk_candidates, n_chunks)):
            if doc_id and sim > evidence.chunk.get(doc_id, -1.0):
                evidence.chunk[doc_id], evidence.passages[doc_id] = sim, text
        if self.lexical is not None and self.weights.uses_lexical:
            evidence.lex_cards = self.lexical.of_catalog(catalog, version, "cards").match(query, n_cards)
            if n_chunks:
                evidence.lex_docs = self.lexical.of_catalog(catalog, version, "chunks").match(
                    query, self.chunk_candidates)
        if self.weights.memory_weight > 0:
            evidence.memory = catalog.usage.nearest(qvec, MEMORY_NEIGHBOURS)
        found = set(evidence.card) | set(evidence.lex_cards.scores) | {tool for _, tool, _ in evidence.memory}
        evidence.specs = catalog.get_tools(sorted(found), version)
        doc_ids = sorted(set(evidence.chunk) | set(evidence.lex_docs.scores))
        for doc_tools in catalog.tools_for_documents(doc_ids).values():
            evidence.specs.update((spec.name, spec) for spec in doc_tools)
        missing = [name for name in evidence.specs if name not in evidence.card]
        evidence.card.update(catalog.card_similarity(qvec, missing, version))
        return evidence

    # ---- LlamaIndex retriever interface ------------------------------------------------------------
    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [NodeWithScore(node=hit_node(h), score=h.score) for h in self.rank_tools(query_bundle.query_str)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # Embedding and Chroma calls block; run them off the event loop the agent lives on.
        return await asyncio.to_thread(self._retrieve, query_bundle)


def hit_node(hit: RouteHit) -> TextNode:
    return TextNode(
        id_=hit.tool_id,
        text=f"{hit.name}: {hit.description}",
        metadata={"name": hit.name, "kind": hit.kind, "doc_id": hit.doc_id or ""},
    )

