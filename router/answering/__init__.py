"""Answering through the routed tools: the language models, the ReAct agent and the direct answer, tool
execution (documents, Python tools, MCP servers, REST APIs) and LlamaIndex object retrieval. May import
``indexes`` and ``router.retrieval``."""
