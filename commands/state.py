"""The ``state`` commands of the command line: moving a workspace's catalog somewhere else, whole."""

from __future__ import annotations

from pathlib import Path

import click

from agentic_router.commands.shell import emit_json, json_mode


@click.group()
def state() -> None:
    """A workspace's state (catalog rows, vectors, document indexes, model versions) as a whole."""


@state.command("copy")
@click.option("--to", "target", required=True, help="A new (or empty) workspace folder.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@json_mode("as_json")
def copy(ctx: click.Context, target: str, as_json: bool) -> None:
    """Copy this workspace to another folder, all or nothing; open it with --workspace."""
    from agentic_router.indexes.config import RouterConfig
    from agentic_router.indexes.errors import InputError
    from agentic_router.indexes.storage.copy import copy_workspace

    if "://" in target:
        raise InputError(f"--to takes a folder; {target.split('://')[0]}:// state is not supported")
    obj = ctx.find_root().obj
    config = RouterConfig.load(obj["workspace"], **obj["overrides"])
    report = copy_workspace(config, Path(target))
    if as_json:
        emit_json(report)
        return
    rows = sum(report["collections"].values())
    click.echo(f"copied {report['tools']} tools, {report['documents']} documents and {rows:,} vectors "
               f"(catalog version {report['version']}) to {report['target']}")


COMMANDS = (state,)
