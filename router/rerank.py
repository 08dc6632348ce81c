"""Retrieve-then-rerank: the bi-encoder narrows the catalog, a cross-encoder orders the short list.

A cross-encoder reads the question and a candidate together, which is slower but sharper than comparing
two independent vectors, so it is only run on the router's top N. A document tool is read through the
passage that made it a candidate (its best-matching chunk); an external tool through its card.

The two opinions are fused rather than the cross-encoder's replacing the router's: ``router score +
weight x reranker probability``. The router already weighs three kinds of evidence (card, passage, BM25)
and a reranker trained on a few hundred questions knows less than that; letting it override the router
outright cost 0.6 hit@1 on COVID-QA. The weight is chosen per trained reranker on held-out questions
(``training.fusion``) and stored with the version; ``weight=None`` means the reranker's order alone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

from router.schema import RouteHit

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

DEFAULT_WEIGHT = 0.3  # for a reranker trained without held-out questions to choose one on


def rerank_text(hit: RouteHit) -> str:
    if hit.evidence:
        return hit.evidence
    return f"{hit.name}: {hit.description}"


def reranker_scores(model: "CrossEncoder", query: str, hits: Sequence[RouteHit]) -> list[float]:
    """The reranker's probability per hit; a document's three tools share one passage, scored once.

    A document tool with no passage among the nearest chunks gets 0: the reranker is trained on passages
    for documents, and its card says what the tool does, not whether the document holds the answer."""
    texts = [None if h.doc_id and not h.evidence else rerank_text(h) for h in hits]
    unique = list(dict.fromkeys(t for t in texts if t is not None))
    scores = model.predict([(query, t) for t in unique], show_progress_bar=False) if unique else []
    by_text = {t: float(s) for t, s in zip(unique, scores)}
    return [by_text[t] if t is not None else 0.0 for t in texts]


def fuse(hits: Sequence[RouteHit], scores: Sequence[float], weight: float | None) -> list[RouteHit]:
    """Reorder by ``router score + weight x reranker score`` (reranker alone when ``weight`` is None).
    Ties keep the router's order, which already puts the index kind the question calls for first."""
    fused = [s if weight is None else h.score + weight * s for h, s in zip(hits, scores)]
    order = sorted(range(len(hits)), key=lambda i: (-fused[i], i))
    return [replace(hits[i], score=round(fused[i], 6)) for i in order]


def rerank_hits(model: "CrossEncoder", query: str, hits: Sequence[RouteHit],
                weight: float | None = None) -> list[RouteHit]:
    if not hits:
        return []
    return fuse(hits, reranker_scores(model, query, hits), weight)
