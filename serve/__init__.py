"""The network shells over the Python API: the HTTP service (with its keys, limits, errors and metrics) and
the MCP server. Thin: no routing logic here. May import ``indexes`` and ``router``."""
