"""agentic-router: an embedding-based tool router and ReAct agent over per-document LlamaIndex indexes.

The public surface is small and imported lazily, so ``import agentic_router`` loads no model and no
LlamaIndex: ``AgenticRouter`` (the Python API), ``RouterConfig`` (every setting) and the error types.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentic_router.indexes.config import RouterConfig
    from agentic_router.indexes.errors import CatalogError, ConfigError, InputError, ModelError, RouterError
    from agentic_router.router.app import AgenticRouter

__all__ = ["AgenticRouter", "RouterConfig", "RouterError", "ConfigError", "InputError", "CatalogError", "ModelError"]
try:  # pyproject.toml holds the one version; an installed copy knows it
    __version__ = version("agentic-router")
except PackageNotFoundError:  # imported from a tree that was never installed
    __version__ = "0+unknown"

_WHERE = {
    "AgenticRouter": "agentic_router.router.app",
    "RouterConfig": "agentic_router.indexes.config",
    **{name: "agentic_router.indexes.errors" for name in __all__ if name.endswith("Error")},
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'agentic_router' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_WHERE[name]), name)
