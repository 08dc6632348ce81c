"""What the command-line shells share: the router a command works on, opened once per invocation from the
root options, and JSON output. Kept apart from ``cli.py`` so the command groups in this folder can use it
without importing the command line that registers them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from agentic_router.router.app import AgenticRouter


def open_router(ctx: click.Context) -> "AgenticRouter":
    """The invocation's router (workspace and overrides from the root command), opened on first use."""
    from agentic_router.router.app import AgenticRouter

    obj = ctx.find_root().obj
    if "router" not in obj:
        obj["router"] = AgenticRouter.open(obj["workspace"], **obj["overrides"])
    return obj["router"]


def emit_json(data: Any) -> None:
    """The one JSON document a ``--json`` command prints on stdout."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))
