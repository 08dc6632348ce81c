"""Exact-word evidence: an incremental BM25 index (``bm25``) kept over the catalog's stored texts and
cached in the workspace (``cache``). May import ``storage`` and the base modules."""
