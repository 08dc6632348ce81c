"""From a question to the tools that serve it, and the Python API on top.

Lowest first: ``retrieval`` (scoring, the retriever, batching, reranking, the "no tool fits" rule) and
``versions`` (trained models and the registry of them) <- ``workspace`` (one workspace's catalog, models and
views) <- ``answering`` (the LLMs, the agent, tool execution) <- ``activation``, ``payloads``, ``app`` (the
``AgenticRouter`` facade). May import ``indexes``; never ``training`` or the shells.
"""
