"""generate → train → models → eval through the CLI, on a tiny real catalog with real models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentic_router.cli import main
from helpers import write_jsonl


@pytest.fixture
def cli(router):
    runner = CliRunner()
    ws = ["--workspace", str(router.config.workspace), "--llm", "none"]

    def invoke(*args: str):
        return runner.invoke(main, [*ws, *args], catch_exceptions=False)

    return invoke


def _real_queries(router, tmp_path: Path) -> Path:
    docs = {t.doc_id.split("-")[0]: t.doc_id for t in router.list_tools()}
    return write_jsonl(tmp_path / "real.jsonl", [
        {"qid": "r1", "query": "What does the borrow checker verify?", "gold": [docs["borrow"]]},
        {"qid": "r2", "query": "Which light does chlorophyll absorb?", "gold": [docs["photosynthesis"]]},
        {"qid": "r3", "query": "What happened at Mount St. Helens?", "gold": [docs["volcano"]]},
    ])


def test_generate_train_activate_evaluate(cli, router, tmp_path: Path) -> None:
    dataset = tmp_path / "ds.json"
    out = cli("generate", "--llm", "none", "--out", str(dataset), "--seed", "1")
    assert out.exit_code == 0, out.output
    data = json.loads(dataset.read_text())
    assert data["queries"] and data["mode"] == "text"

    real = _real_queries(router, tmp_path)
    trained = cli("train", "--method", "adapter", "--dataset", str(dataset), "--name", "ad1", "--epochs", "2",
                  "--activate", "--check-queries", str(real))
    assert trained.exit_code == 0, trained.output
    assert "trained ad1 (adapter)" in trained.stdout
    listed = json.loads(cli("models", "list", "--json").stdout)
    version = next(v for v in listed["versions"] if v["name"] == "ad1")
    assert version["method"] == "adapter" and version["dataset_hash"]
    # The three real questions are easy: base and ad1 both route them all right, so the guard (refuse only
    # when real questions got worse) must let ad1 through. A refusal here is a regression, not an option.
    assert "activated ad1" in trained.stdout.splitlines(), trained.stdout
    assert listed["active"]["embedder"] == "ad1"
    # Training did something: 16 pairs fit one batch (default 64), so both steps see the same rows and
    # loss_first/loss_last are the full-batch loss before and after the one update in between. An adapter
    # that never updated would log the same loss twice.
    figures = version["figures"]
    assert figures["steps"] == 2 and figures["train_pairs"] == 16
    assert figures["details"]["loss_last"] < figures["details"]["loss_first"]

    ce = cli("train", "--method", "cross-encoder", "--dataset", str(dataset), "--name", "ce1", "--epochs", "1")
    assert ce.exit_code == 0, ce.output
    assert "fusion weight" in ce.stdout
    fusion = json.loads(cli("models", "calibrate", "ce1", "--queries", str(real), "--json").stdout)
    assert fusion["calibrated"] and fusion["n"] == 3
    assert set(fusion["grid"]) == {"0.0", "0.03", "0.1", "0.3", "1.0", "3.0", "alone"}  # every weight was tried
    stored = next(v for v in json.loads(cli("models", "list", "--json").stdout)["versions"] if v["name"] == "ce1")
    assert stored["figures"]["fusion"] == fusion
    further = cli("train", "--method", "cross-encoder", "--dataset", str(dataset), "--name", "ce2", "--max-steps", "1",
                  "--init", str(router.config.workspace / "models" / "ce1"))  # train ce1 further
    assert further.exit_code == 0, further.output
    ce2 = next(v for v in json.loads(cli("models", "list", "--json").stdout)["versions"] if v["name"] == "ce2")
    assert ce2["figures"]["base"].endswith("ce1")
    init_adapter = cli("train", "--method", "adapter", "--dataset", str(dataset), "--init", str(tmp_path))
    assert init_adapter.exit_code == 2 and "--init applies to --method cross-encoder" in init_adapter.stderr
    missing = cli("train", "--method", "cross-encoder", "--dataset", str(dataset), "--init", str(tmp_path / "nope"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    wrong = cli("models", "calibrate", "ad1", "--queries", str(real))
    assert wrong.exit_code == 1 and "only a cross-encoder" in wrong.stderr
    assert cli("models", "activate", "ce1").exit_code == 0
    routed = json.loads(cli("route", "What does the borrow checker verify?", "--rerank", "6", "-k", "3", "--json").stdout)
    assert len(routed["tools"]) == 3

    metrics = tmp_path / "m.json"
    evaluated = cli("eval", "--queries", str(real), "--compare", "base,active,ad1,bm25", "--rerank", "6",
                    "--json", str(metrics))
    assert evaluated.exit_code == 0, evaluated.output
    # --rerank adds a reranked row for every router system (bm25 is not a router)
    assert set(json.loads(metrics.read_text())) == {"base", "active", "ad1", "bm25", "base+rerank", "active+rerank",
                                                    "ad1+rerank"}


def test_train_bad_dataset_is_one_line(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    for path in (bad, tmp_path / "missing.json"):
        result = cli("train", "--method", "adapter", "--dataset", str(path))
        assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
