"""The floor of the package: from documents and tool definitions to a stored, searchable catalog.

Data flows one way through its parts, lowest first: ``errors``, ``schema``, ``config`` and ``atomic`` (shared
by all) <- ``encoders`` (turning text into vectors) and ``storage`` (the catalog database, Chroma, the card
matrix, usage memory, shared state and copies) <- ``lexical`` (BM25 over the stored texts) <- ``sources`` (documents,
catalog files, MCP servers and OpenAPI documents, read into tool definitions) <- ``build`` (documents into
indexes and tools) and ``tools`` (a catalog entry as a LlamaIndex tool). Nothing here imports ``router``,
``training`` or the shells; ``scripts/import_graph.py`` checks both rules.
"""
