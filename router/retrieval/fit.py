""""No tool fits" without labelled requests: a catalog's fit measured against requests no catalog serves.

A request's fit (``scoring.fit``: the cosine of its best tool's card, or of that document's best chunk)
is not comparable across catalogs: a catalog of 4,000 tools on every subject fits small talk better than
one of 30 tools on invoices does. So the threshold is not a constant. The router keeps a background set of
requests written to fit no catalog in particular (``data/background_requests.txt``: small talk, general
knowledge, opinions, chores), routes them over the user's catalog, and says "no tool fits" when a request
fits no better than ``abstain_quantile`` of them do (0.5 by default: no better than a typical one). That needs nothing from the user and follows their
catalog and embedder. ``calibrate``, given labelled requests with ``"gold": []``, sets ``abstain_below``
instead, which takes precedence.

The background's fits are computed at the first route that asks, and again only when the embedder
changes or the catalog's size moves by more than a tenth, so routing pays for them once, not per request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from agentic_router.indexes.encoders.embeddings import embed_queries
from agentic_router.router.retrieval.scoring import fit

if TYPE_CHECKING:
    from agentic_router.router.workspace import RouterView

BACKGROUND_FILE = Path(__file__).with_name("data") / "background_requests.txt"
REFRESH_SHARE = 0.1  # recompute once the catalog's size moved by more than this share


@lru_cache(maxsize=1)
def background_requests() -> tuple[str, ...]:
    lines = BACKGROUND_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@dataclass(frozen=True)
class _Measured:
    size: int
    fits: np.ndarray


def request_fit(hits: list) -> float:
    """What the default rule compares: the best tool's embedding fit, or its fused score when that is higher
    (a request that the usage memory or a rare exact word routes does fit)."""
    return max(fit(hits), hits[0].score) if hits else 0.0


class BackgroundFit:
    """The fits of the background requests over one view's catalog, and the threshold they give."""

    def __init__(self, view: "RouterView") -> None:
        self.view = view
        self._measured: _Measured | None = None
        self._lock = threading.Lock()

    def fits(self) -> np.ndarray:
        """The background requests' fits over the catalog as it is now (recomputed when it grew or shrank)."""
        _, n_tools, n_chunks = self.view.catalog.routing_counts()
        size = n_tools + n_chunks
        with self._lock:
            known = self._measured
            if known is None or abs(size - known.size) > REFRESH_SHARE * max(known.size, 1):
                texts = list(background_requests())
                vectors = np.asarray(embed_queries(self.view.query_embedder, texts), dtype=np.float32)
                hits = self.view.retriever.rank_tools_many(texts, vectors, 1) if size else [[] for _ in texts]
                known = self._measured = _Measured(size, np.array([request_fit(h) for h in hits], dtype=np.float64))
            return known.fits

    def threshold(self, quantile: float) -> float:
        """The fit that ``quantile`` of the background requests reach (0 for an empty catalog or q = 0)."""
        if quantile <= 0:
            return 0.0
        fits = self.fits()
        return float(np.quantile(fits, quantile)) if fits.size and fits.any() else 0.0
