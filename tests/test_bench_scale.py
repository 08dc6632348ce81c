"""Checks on ``scripts/bench_scale.py``: the synthetic catalog it generates, and one end-to-end run.

The end-to-end run is the script as a user runs it (a subprocess: real embedder, real Chroma, a real
``serve`` process answering HTTP), on a catalog small enough to embed in seconds, with the LLM selector
skipped. Its hit@1 must clear a floor: a generator whose questions no longer point at their tool, or a
workspace built from vectors that are not the cards' own, fails it.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bench_scale.py"
# Measured 0.95 (300 tools, 60 questions, seed 0); a margin for another embedder build or thread count.
HIT_AT_1_FLOOR = 0.8


def _script() -> ModuleType:
    sys.path.insert(0, str(SCRIPT.parent))  # the script imports its neighbour bench_http
    spec = importlib.util.spec_from_file_location("bench_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_catalog_is_deterministic_distinct_and_nested() -> None:
    """Smaller catalogs are prefixes of larger ones (their cached vectors are reused), names are distinct
    and valid, and a question does not simply repeat its tool's description."""
    bench = _script()
    one, two = bench.SyntheticCatalog(0), bench.SyntheticCatalog(0)
    specs = [one.tool(i) for i in range(20_000)]
    assert [s.card() for s in specs[:500]] == [two.tool(i).card() for i in range(500)]
    assert len({s.name for s in specs}) == len(specs)
    assert all(len(s.name) <= 64 and s.parameters for s in specs)
    assert bench.TOTAL >= 1_000_000
    assert bench.SyntheticCatalog(1).tool(0).name != specs[0].name
    for i in range(200):
        (_, place), _, (qualifier, said), _ = one.parts(i)
        question = one.question(i, i)
        assert said in question and place in question.lower()  # the user's words, not the card's
        assert qualifier not in question.lower().split()
    assert not [q for q, _ in one.labelled(20_000, 500, salt=3) if " a overdue" in q or " a unpaid" in q]
    assert {gold for _, gold in one.labelled(300, 60, salt=300)} <= {s.name for s in specs[:300]}


def test_end_to_end_tiny_catalog(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    cmd = [sys.executable, str(SCRIPT), "--sizes", "300", "--questions", "60", "--requests", "40", "--clients", "4",
           "--adds", "2", "--no-selector", "--cache", str(tmp_path / "cache"), "--json", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["settings"]["args"]["sizes"] == "300"
    assert "embed_model" in result["settings"]["router_config"] and result["settings"]["embedder_tag"]
    assert result["selector"] is None
    (size,) = result["sizes"]
    assert size["tools"] == 300 and size["questions"] == 60
    for key in ("route_p50_ms", "route_p99_ms", "rss_mb", "add_p50_ms", "http_rps", "http_p50_ms", "http_p99_ms",
                "server_rss_mb"):
        assert size[key] > 0, key
    assert size["route_p50_ms"] <= size["route_p99_ms"]
    assert size["http_requests"] == 40 and size["http_errors"] == 0
    assert size["adds"] == 2 and size["added_found_in_top5"] == 2
    assert size["hit_at_1"] >= HIT_AT_1_FLOOR, size
    assert size["hit_at_5"] >= size["hit_at_1"]
    assert "| 300 |" in done.stdout  # the printed table


def test_a_larger_vector_cache_starts_from_a_smaller_one(tmp_path: Path) -> None:
    """Embedding 1M cards takes hours: the rows a finished smaller cache holds are copied, not embedded again."""
    import numpy as np

    from agentic_router import AgenticRouter

    bench = _script()
    cat, cache = bench.SyntheticCatalog(0), tmp_path / "cache"
    cache.mkdir()
    probe = AgenticRouter.open(tmp_path / "probe", llm_provider="none")
    key = bench.vector_key(cat.seed, probe.view.tag)
    marker = np.full((40, 384), 0.5, dtype=np.float32)  # not what the embedder would give: proves the copy
    np.save(cache / f"{key}-n40.npy", marker)
    vectors, _ = bench.cached_vectors(cat, 60, probe, cache)
    assert vectors.shape == (60, 384)
    assert np.array_equal(vectors[:40], marker)
    assert np.allclose(np.linalg.norm(vectors[40:], axis=1), 1.0, atol=1e-4)  # the rest embedded for real
    assert sorted(p.name for p in cache.iterdir()) == sorted([f"{key}-n40.npy", f"{key}-n60.npy"])
    probe.close()
