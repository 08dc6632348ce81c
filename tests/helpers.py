"""Helpers shared by the tests: the tiny corpus, JSONL writing, where the shared dev data lives, free ports and
waiting for a condition (never for a fixed time)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

CORPUS = {
    "photosynthesis.md": (
        "# Photosynthesis in plants\n\n"
        "Photosynthesis converts light energy into chemical energy stored in glucose. Chlorophyll in the "
        "chloroplasts absorbs mostly red and blue light and reflects green light. The Calvin cycle fixes carbon "
        "dioxide using ATP and NADPH produced by the light-dependent reactions in the thylakoid membranes.\n"
    ),
    "borrow.txt": (
        "The Rust borrow checker\n\n"
        "Rust enforces memory safety without a garbage collector. The borrow checker verifies that references "
        "never outlive the data they point to, and that a mutable reference is exclusive: while it exists no "
        "other reference to the same value may be used.\n"
    ),
    "volcano.html": (
        "<html><head><title>Volcanic eruptions</title><style>p{}</style></head><body>"
        "<p>Volcanoes erupt when magma rises through the crust. Explosive eruptions such as Mount St. Helens in "
        "1980 release pyroclastic flows, while effusive eruptions in Hawaii produce slow lava flows.</p>"
        "<script>var x = 1;</script></body></html>"
    ),
}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def shared_available(*parts: str) -> bool:
    return SHARED_DATA.joinpath(*parts).exists() and not os.environ.get("AGENTIC_ROUTER_SKIP_SHARED")


# Premises about rankings are asserted with a margin: a first tool ahead by less than this is a knife edge
# that another CPU or encoder can flip (the question encoder agrees with torch to ~1e-6 in score).
RANK_MARGIN = 0.05


def lead(hits, name: str) -> float:
    """How far the best tool other than ``name`` is ahead of ``name`` (negative: ``name`` leads)."""
    scores = {h.name: h.score for h in hits}
    assert name in scores, f"{name} not among {list(scores)}"
    return max(s for n, s in scores.items() if n != name) - scores[name]


def assert_not_first(hits, name: str, margin: float = RANK_MARGIN) -> None:
    """The premise "``name`` is not first": another tool leads it by at least ``margin``."""
    gap = lead(hits, name)
    assert gap >= margin, f"premise does not hold with margin {margin}: {name} is behind by {gap:.4f} only " \
                          f"({[(h.name, round(h.score, 4)) for h in hits]})"


def assert_first(hits, name: str, margin: float = RANK_MARGIN) -> None:
    gap = -lead(hits, name)
    assert gap >= margin, f"{name} leads by {gap:.4f}, less than {margin} ({[(h.name, round(h.score, 4)) for h in hits]})"


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], seconds: float, what: str, every: float = 0.02) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``seconds``. A test waits for the state it
    needs, so it neither sleeps longer than needed on a fast machine nor too little on a loaded one."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {what}")
        time.sleep(every)


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not start listening")


@contextmanager
def serve_asgi(app: Any, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread of this process (models already loaded here stay shared);
    yields its base URL and stops it on exit."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(host, port)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
