"""Ranking the catalog for a question: evidence from cards, passages, BM25 and usage memory fused into one
score, batched for the service, optionally reranked, and the fit that says when no tool fits. May import
``indexes`` (the workspace only for type hints)."""
