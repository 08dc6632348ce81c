"""Where tools come from: documents (loading, descriptions, keywords), catalog files and OpenAI tool schemas,
MCP servers and OpenAPI documents, each read into ``ToolSpec`` rows. May import ``storage``, ``lexical`` and the
base modules."""
