"""Shells over the Python API: the HTTP service, the MCP server, and the command groups ``cli.py`` registers
(thin; no routing logic here)."""
