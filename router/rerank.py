"""Retrieve-then-rerank: the bi-encoder narrows the catalog, a cross-encoder orders the short list.

A cross-encoder reads the question and a candidate together, which is slower but sharper than comparing
two independent vectors, so it is only run on the router's top N. A document tool is read through the
passage that made it a candidate (its best-matching chunk); an external tool through its card.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

from router.schema import RouteHit

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder


def rerank_text(hit: RouteHit) -> str:
    if hit.evidence:
        return hit.evidence
    return f"{hit.name}: {hit.description}"


def rerank_hits(model: "CrossEncoder", query: str, hits: Sequence[RouteHit]) -> list[RouteHit]:
    """Reorder ``hits`` by cross-encoder score; ties (a document's three tools share a passage) keep the
    router's order, which already puts the index kind the question calls for first."""
    if not hits:
        return []
    texts = [rerank_text(h) for h in hits]
    unique = sorted(set(texts))
    scores = dict(zip(unique, (float(s) for s in model.predict([(query, t) for t in unique], show_progress_bar=False))))
    order = sorted(range(len(hits)), key=lambda i: (-scores[texts[i]], i))
    return [replace(hits[i], score=round(scores[texts[i]], 6)) for i in order]
