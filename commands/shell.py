"""What the command-line shells share: the router a command works on, opened once per invocation from the
root options, and JSON output. Kept apart from ``cli.py`` so the command groups in this folder can use it
without importing the command line that registers them."""

from __future__ import annotations

import functools
import io
import json
import os
import sys
from contextlib import contextmanager, redirect_stdout
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable, Iterator, TextIO

import click

if TYPE_CHECKING:
    from agentic_router.router.app import AgenticRouter

_JSON_OUT: ContextVar[TextIO | None] = ContextVar("json_out", default=None)


def open_router(ctx: click.Context) -> "AgenticRouter":
    """The invocation's router (workspace and overrides from the root command), opened on first use."""
    from agentic_router.router.app import AgenticRouter

    obj = ctx.find_root().obj
    if "router" not in obj:
        obj["router"] = AgenticRouter.open(obj["workspace"], **obj["overrides"])
    return obj["router"]


def emit_json(data: Any) -> None:
    """The one JSON document a ``--json`` command prints on stdout."""
    out = _JSON_OUT.get() or sys.stdout
    out.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    out.flush()


@contextmanager
def stdout_for_json_only() -> Iterator[None]:
    """While a ``--json`` command runs, whatever else reaches stdout goes to stderr: Python prints of the
    libraries underneath (the trainer's loss dictionaries) and, in a real process, C code writing to file
    descriptor 1. ``emit_json`` alone writes to the real stdout."""
    real = sys.stdout
    try:
        is_fd1 = real.fileno() == 1
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):  # CliRunner, captured streams
        is_fd1 = False
    saved_fd, out = None, real
    if is_fd1:
        real.flush()
        saved_fd = os.dup(1)
        os.dup2(2, 1)  # fd 1 now reaches stderr; the JSON goes to a copy of the original
        out = os.fdopen(os.dup(saved_fd), "w", encoding="utf-8", closefd=True)
    token = _JSON_OUT.set(out)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        _JSON_OUT.reset(token)
        if saved_fd is not None:
            out.close()
            sys.stdout.flush()
            os.dup2(saved_fd, 1)
            os.close(saved_fd)


def json_mode(*params: str, when: Callable[[dict[str, Any]], bool] | None = None) -> Callable:
    """Decorate a command whose flag ``params`` (or predicate ``when`` on its arguments) asks for JSON: its
    body then runs under ``stdout_for_json_only``. Goes right above ``def``, below ``click.pass_context``."""

    def wrap(command: Callable) -> Callable:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            wanted = any(kwargs.get(p) for p in params) or (when is not None and when(kwargs))
            if not wanted:
                return command(*args, **kwargs)
            with stdout_for_json_only():
                return command(*args, **kwargs)

        return run

    return wrap
