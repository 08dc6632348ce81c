"""The ``state`` commands of the command line: moving a workspace's catalog somewhere else, whole."""

from __future__ import annotations

from pathlib import Path

import click

from agentic_router.commands.shell import emit_json, json_mode


@click.group()
def state() -> None:
    """A workspace's state (catalog rows, vectors, document indexes, model versions) as a whole."""


@state.command("copy")
@click.option("--to", "target", required=True, metavar="FOLDER|postgresql://...",
              help="A new (or empty) workspace folder, or an empty PostgreSQL database (with --to-chroma).")
@click.option("--to-chroma", "to_chroma", default=None, metavar="URL",
              help="With --to postgresql://...: the Chroma server that receives the vectors.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@json_mode("as_json")
def copy(ctx: click.Context, target: str, to_chroma: str | None, as_json: bool) -> None:
    """Copy this workspace's catalog, all or nothing: to a folder (open it with --workspace), or into shared
    state that replicas serve (serve --state-url ... --chroma-url ...). A shared workspace (state_url set)
    copies back into a folder."""
    from agentic_router.indexes.config import RouterConfig
    from agentic_router.indexes.errors import InputError
    from agentic_router.indexes.storage.copy import copy_workspace

    obj = ctx.find_root().obj
    config = RouterConfig.load(obj["workspace"], **obj["overrides"])
    if target.startswith(("postgresql://", "postgres://")):
        if not to_chroma or not to_chroma.startswith(("http://", "https://")):
            raise InputError("--to postgresql://... needs --to-chroma http://host:port: the vectors go to a Chroma server")
        from agentic_router.indexes.storage.copy_shared import copy_to_shared

        report = copy_to_shared(config, target, to_chroma)
    elif "://" in target:
        raise InputError(f"--to takes a folder or a postgresql:// URL, not {target.split('://')[0]}://")
    elif to_chroma:
        raise InputError("--to-chroma goes with --to postgresql://...; a folder holds its own vectors")
    elif config.shared:
        from agentic_router.indexes.storage.copy_shared import copy_from_shared

        report = copy_from_shared(config, Path(target))
    else:
        report = copy_workspace(config, Path(target))
    if as_json:
        emit_json(report)
        return
    rows = sum(report["collections"].values())
    click.echo(f"copied {report['tools']} tools, {report['documents']} documents and {rows:,} vectors "
               f"(catalog version {report['version']}) to {report['target']}")


COMMANDS = (state,)
