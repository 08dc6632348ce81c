"""A small error hierarchy: the CLI turns any ``RouterError`` into a one-line message and exit code 1."""


class RouterError(Exception):
    """Base class for every error the product reports to a user."""


class ConfigError(RouterError):
    """A setting is missing or invalid."""


class InputError(RouterError):
    """An input file, row or query cannot be used (empty, binary, malformed, too long...)."""


class CatalogError(RouterError):
    """The tool catalog rejects a change (duplicate id with other content, unknown tool...)."""


class ModelError(RouterError):
    """A model (embedder, LLM, checkpoint) cannot be loaded or used."""


class RemoteError(RouterError):
    """An MCP server cannot be started or reached, answered garbage, or failed in the middle of a call."""


class StateError(RouterError):
    """The shared catalog state (PostgreSQL) cannot be reached; the change was not made."""
