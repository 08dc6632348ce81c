"""Checks on ``scripts/bfcl_to_jsonl.py``, the BFCL live-categories converter.

Skipped cleanly when bfcl-eval is not installed (``pip install --no-deps bfcl-eval==2026.3.23``): the
package is located with ``find_spec`` exactly as the script does, never imported, so the check stays true
to how the script runs without bfcl-eval's own dependencies.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bfcl_to_jsonl.py"
MAX_NAME = 64

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bfcl_eval") is None, reason="bfcl-eval not installed")


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Run the converter once, as a user would, and keep its folder and reported counts."""
    out = tmp_path_factory.mktemp("bfcl") / "out"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--json"],
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout)


def test_writes_the_four_files_and_nothing_else(converted: tuple[Path, dict[str, Any]]) -> None:
    out, counts = converted
    expected = {"docs.jsonl", "live.queries.jsonl", "live_multi.queries.jsonl", "live_irrelevance.queries.jsonl"}
    assert {p.name for p in out.iterdir()} == expected
    assert set(counts["files"]) == expected


def test_catalog_names_unique_short_and_schema_typed(converted: tuple[Path, dict[str, Any]]) -> None:
    out, counts = converted
    catalog = _rows(out / "docs.jsonl")
    names = [t["name"] for t in catalog]
    assert len(names) == len(set(names)) == counts["functions_pooled"]
    assert 480 <= len(names) <= 560, len(names)  # the quick pooling gave 515
    for tool in catalog:
        assert 0 < len(tool["name"]) <= MAX_NAME and tool["name"].isprintable(), tool["name"]
        assert tool["description"].strip()
        assert tool["parameters"]["type"] == "object"
    # BFCL's Python-flavoured type names are rewritten to JSON Schema ones, however deep they sit.
    text = (out / "docs.jsonl").read_text(encoding="utf-8")
    for bfcl_type in ('"type": "dict"', '"type": "float"', '"type": "tuple"', '"type": "any"'):
        assert bfcl_type not in text
    assert counts["identical_duplicates_merged"] + counts["variant_definitions_dropped"] + len(names) \
        == counts["function_occurrences"]


def test_live_queries_have_gold_in_catalog(converted: tuple[Path, dict[str, Any]]) -> None:
    out, counts = converted
    names = {t["name"] for t in _rows(out / "docs.jsonl")}
    live = _rows(out / "live.queries.jsonl")
    assert 1250 <= len(live) <= 1370, len(live)  # the quick conversion gave 1,311
    assert len(live) == counts["requests"]["live_simple"] + counts["requests"]["live_multiple"]
    assert len({q["qid"] for q in live}) == len(live)
    missing = sum(1 for q in live if not set(q["gold"]) <= names)
    assert missing == counts["gold_missing_from_catalog"]["live_simple"] \
        + counts["gold_missing_from_catalog"]["live_multiple"]
    assert missing == 0  # the catalog is pooled from these very rows
    for q in live:
        assert q["query"].strip() and q["gold"] and all(isinstance(g, str) for g in q["gold"])


def test_multi_and_irrelevance_files(converted: tuple[Path, dict[str, Any]]) -> None:
    out, counts = converted
    names = {t["name"] for t in _rows(out / "docs.jsonl")}
    multi = _rows(out / "live_multi.queries.jsonl")
    assert 20 <= len(multi) <= 80, len(multi)
    assert all(q["n_calls"] >= 2 and 1 <= len(q["gold"]) <= q["n_calls"] for q in multi)
    assert any(len(q["gold"]) >= 2 for q in multi)
    missing = sum(1 for q in multi if not set(q["gold"]) <= names)
    assert missing == sum(v for k, v in counts["gold_missing_from_catalog"].items()
                          if k not in ("live_simple", "live_multiple"))
    irrelevant = _rows(out / "live_irrelevance.queries.jsonl")
    assert 700 <= len(irrelevant) <= 1000, len(irrelevant)
    assert len(irrelevant) == counts["requests"]["live_irrelevance"]
    assert all(q["gold"] == [] and q["query"].strip() for q in irrelevant)


def test_cli_accepts_the_catalog(converted: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, counts = converted
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("AGENTIC_ROUTER_HOME", None)
    env.pop("AGENTIC_ROUTER_CONFIG", None)
    cli = [sys.executable, "-c", "from agentic_router.cli import main; main()"]
    proc = subprocess.run([*cli, "--workspace", str(tmp_path / "ws"), "--llm", "none", "tools", "add",
                           str(out / "docs.jsonl")], capture_output=True, text=True, check=False, timeout=1200, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"added {counts['functions_pooled']}," in proc.stdout, proc.stdout


def test_missing_data_is_one_line_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "out"), "--data-dir",
                           str(tmp_path)], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
