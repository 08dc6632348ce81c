"""The service commands of the command line: ``serve`` (HTTP) and ``mcp``. Thin: each parses its options,
prepares the process (threads, temporary files, metrics folder) and hands the router to its shell."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from agentic_router.commands.shell import open_router


@click.command()
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="http: address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True, help="http: port.")
@click.pass_context
def mcp(ctx: click.Context, transport: str, host: str, port: int) -> None:
    """Serve the router as an MCP server: search_tools, describe_tool, call_tool."""
    from agentic_router.serve.mcp import serve as serve_mcp

    serve_mcp(open_router(ctx), transport=transport, host=host, port=port)


def _keep_temporary_files_in_workspace(ctx: click.Context) -> None:
    """The service writes nothing outside its workspace, libraries' temporary files included (ONNX Runtime
    writes a session file to TMPDIR when it loads), so TMPDIR points inside the workspace before any loads."""
    import os
    import tempfile

    from agentic_router.indexes.config import RouterConfig

    obj = ctx.find_root().obj
    folder = RouterConfig.load(obj["workspace"], **obj["overrides"]).workspace / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(folder.resolve())
    tempfile.tempdir = None  # recomputed from TMPDIR on next use


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs an API key.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--chroma-url", default=None,
              help="A Chroma server holding the vectors replicas share (with --state-url); default: embedded Chroma.")
@click.option("--state-url", default=None, metavar="postgresql://...",
              help="PostgreSQL holding the catalog rows replicas share (with --chroma-url); default: the workspace's "
                   "SQLite file. Env AGENTIC_ROUTER_STATE_URL.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Service processes.")
@click.option("--batch-ms", type=click.FloatRange(0, 1000), default=2.0, show_default=True,
              help="Window in which concurrent questions are embedded together (0 = no batching).")
@click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True,
              help="torch and BLAS threads per process; concurrent requests use the cores.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, chroma_url: str | None, state_url: str | None, workers: int,
          batch_ms: float, threads: int) -> None:
    """Serve the router over HTTP (OpenAPI docs at /docs). Keys: env AGENTIC_ROUTER_READ_KEY / _ADMIN_KEY."""
    from agentic_router.indexes.errors import ConfigError
    from agentic_router.serve.auth import ApiKeys, check_bind

    overrides = ctx.find_root().obj["overrides"]
    overrides.update({k: v for k, v in (("chroma_url", chroma_url), ("state_url", state_url)) if v is not None})
    if workers > 1 and not (overrides.get("state_url") or os.environ.get("AGENTIC_ROUTER_STATE_URL")):
        raise ConfigError("--workers above 1 needs --state-url and --chroma-url: processes share the catalog "
                          "through PostgreSQL and a Chroma server (an embedded Chroma folder must not be opened "
                          "by several processes)")
    keys = ApiKeys.from_env()
    check_bind(host, keys)
    ctx.find_root().obj["overrides"]["query_batch_ms"] = batch_ms
    _keep_temporary_files_in_workspace(ctx)
    from agentic_router.serve.http import limit_cpu_threads

    limit_cpu_threads(threads)
    router = open_router(ctx)

    import uvicorn

    from agentic_router.serve.http import create_app

    verbose = (ctx.find_root().params or {}).get("verbose")
    click.echo(f"serving {router.config.workspace} on http://{host}:{port} (docs at /docs; "
               f"{'API keys required' if keys.configured else 'no API key: loopback only'})", err=True)
    # Keep-alive longer than uvicorn's 5 s: a client reusing a connection the server is just closing gets a
    # reset, and clients under load (or behind a pool) reuse connections that idled a few seconds.
    options: dict[str, Any] = dict(host=host, port=port, log_level="info" if verbose else "warning", access_log=bool(verbose),
                   timeout_graceful_shutdown=10, timeout_keep_alive=30)
    if workers == 1:
        uvicorn.run(create_app(router, keys=keys), **options)
        return
    import shutil

    from agentic_router.serve.http import SERVE_ENV
    from agentic_router.serve.metrics import MULTIPROC_ENV

    overrides = {k: v for k, v in ctx.find_root().obj["overrides"].items() if v is not None}
    os.environ[SERVE_ENV] = json.dumps({"workspace": str(router.config.workspace), "overrides": overrides,
                                        "threads": threads}, default=str)
    # /metrics sums the workers: each writes its values to files here (prometheus multiprocess mode)
    metrics_dir = Path(os.environ["TMPDIR"]) / f"metrics-{os.getpid()}"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(metrics_dir)
    router.close()  # each worker opens its own connections to the shared state
    try:
        uvicorn.run("agentic_router.serve.http:app_from_env", factory=True, workers=workers, **options)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


COMMANDS = (serve, mcp)
