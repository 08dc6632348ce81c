"""Helpers shared by the tests: the tiny corpus, JSONL writing, and where the shared dev data lives."""

from __future__ import annotations

import json
import os
from pathlib import Path

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
