"""Network shells over the Python API: the HTTP service and the MCP server (thin; no routing logic here)."""
