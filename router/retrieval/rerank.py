"""Retrieve-then-rerank: the bi-encoder narrows the catalog, a cross-encoder orders the short list.

A cross-encoder reads the question and a candidate together, which is slower but sharper than comparing
two independent vectors, so it is only run on the router's top N. A document tool is read through the
passage that made it a candidate (its best-matching chunk); an external tool through its card.

The two opinions are fused rather than the cross-encoder's replacing the router's: ``router score +
weight x reranker probability``. The router already weighs three kinds of evidence (card, passage, BM25)
and a reranker trained on a few hundred questions knows less than that; letting it override the router
outright cost 0.6 hit@1 on COVID-QA. The weight is chosen per trained reranker on held-out questions
(``training.fusion``) and stored with the version; the weight ``ALONE`` means the reranker's order alone.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, Sequence, Union

from agentic_router.indexes.schema import RouteHit

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

DEFAULT_WEIGHT = 0.3  # for a reranker trained without held-out questions to choose one on
ALONE: Literal["alone"] = "alone"  # a fusion weight meaning: order by the reranker's score alone
FusionWeight = Union[float, Literal["alone"]]
# A reranker reads 128 tokens (question included) but a chunk holds up to 256, so a passage is read in
# overlapping windows of ~110 tokens and scores as its best window (MaxP). Read whole, the cut-off half of
# every chunk was invisible: the answer to most questions was simply not shown to the reranker.
WINDOW_WORDS = 80
WINDOW_STRIDE = 50  # at most; a 256-token chunk (~180 words) becomes 3 windows
_WORD = re.compile(r"[a-z0-9]{3,}")


def rerank_text(hit: RouteHit) -> str:
    if hit.evidence:
        return hit.evidence
    return f"{hit.name}: {hit.description}"


def passage_windows(text: str, words: int = WINDOW_WORDS, stride: int = WINDOW_STRIDE) -> list[str]:
    """Overlapping word windows covering ``text``; a short text is its own single window."""
    tokens = text.split()
    if len(tokens) <= words:
        return [text]
    span = len(tokens) - words
    n = 1 + math.ceil(span / stride)
    starts = [round(i * span / (n - 1)) for i in range(n)]  # evenly spread, the last one ends the text
    return [" ".join(tokens[s:s + words]) for s in starts]


def best_window(query: str, text: str) -> str:
    """The window of ``text`` sharing the most words with ``query`` (first on ties): what a reranker
    trained on windows is shown for a (question, passage) training row."""
    windows = passage_windows(text)
    if len(windows) == 1:
        return windows[0]
    asked = set(_WORD.findall(query.lower()))
    overlap = [len(asked & set(_WORD.findall(w.lower()))) for w in windows]
    return windows[overlap.index(max(overlap))]


def window_scores(model: "CrossEncoder", query: str, texts: Sequence[str]) -> list[float]:
    """Each passage's reranker score: the best of its windows."""
    return best_scores(model, query, [passage_windows(t) for t in texts])


def best_scores(model: "CrossEncoder", query: str, readings: Sequence[Sequence[str]]) -> list[float]:
    """The best score among each list of texts (all texts scored in one batch)."""
    spans: list[tuple[int, int]] = []
    pairs: list[tuple[str, str]] = []
    for texts in readings:
        spans.append((len(pairs), len(pairs) + len(texts)))
        pairs.extend((query, t) for t in texts)
    scores: Any = model.predict(pairs, show_progress_bar=False) if pairs else []
    return [float(max(scores[a:b])) for a, b in spans]


def reranker_scores(model: "CrossEncoder", query: str, hits: Sequence[RouteHit]) -> list[float]:
    """The reranker's probability per hit; a document's three tools share one passage, scored once.

    A document tool is read through its passage, window by window; an external tool through its card,
    whole (a card starts with the tool's name, which a window would cut off). A document tool with no
    passage among the nearest chunks gets 0: the reranker is trained on passages for documents, and its
    card says what the tool does, not whether the document holds the answer."""
    readings: list[tuple[str, ...] | None] = [
        (tuple(passage_windows(h.evidence)) if h.evidence else None) if h.doc_id else (rerank_text(h),)
        for h in hits]
    unique = list(dict.fromkeys(r for r in readings if r is not None))
    by_reading = dict(zip(unique, best_scores(model, query, unique)))
    return [by_reading[r] if r is not None else 0.0 for r in readings]


def fuse(hits: Sequence[RouteHit], scores: Sequence[float], weight: FusionWeight) -> list[RouteHit]:
    """Reorder by ``router score + weight x reranker score`` (the reranker's score alone for ``ALONE``).
    Ties keep the router's order, which already puts the index kind the question calls for first."""
    fused = [s if weight == ALONE else h.score + float(weight) * s for h, s in zip(hits, scores)]
    order = sorted(range(len(hits)), key=lambda i: (-fused[i], i))
    return [replace(hits[i], score=round(fused[i], 6)) for i in order]


def rerank_hits(model: "CrossEncoder", query: str, hits: Sequence[RouteHit],
                weight: FusionWeight = ALONE) -> list[RouteHit]:
    if not hits:
        return []
    return fuse(hits, reranker_scores(model, query, hits), weight)
