"""Model registry, activation (re-embedding into new collections, atomic switch) and eval reports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_jsonl

from agentic_router.cli import main
from agentic_router.indexes.encoders.embeddings import resolve_model_path
from agentic_router.indexes.errors import CatalogError, InputError, ModelError
from agentic_router.router.activation import activate, sync_collections
from agentic_router.router.app import AgenticRouter
from agentic_router.router.versions.registry import ModelVersion


def _register_copy_of_base(router: AgenticRouter, name: str) -> ModelVersion:
    """A 'full' version whose weights are a copy of the base model: a real model folder, cheap to make."""
    target = router.registry.new_dir(name)
    shutil.copytree(resolve_model_path(router.config.embed_model), target / "model", dirs_exist_ok=True)
    return router.registry.register(ModelVersion(name=name, method="full", base="base", path=f"{name}/model"))


def test_activating_a_full_version_reembeds_into_new_collections(router) -> None:
    before = router.route("What does the borrow checker verify?", k=3)
    _register_copy_of_base(router, "ft1")
    done = activate(router.workspace, "ft1")
    assert done["active"]["embedder"] == "ft1"
    assert done["cards_embedded"] == 9 and done["chunks_embedded"] == router.catalog.chunks.count()
    fresh = AgenticRouter(router.config, llm=None)
    assert fresh.view.embedder_version == "ft1" and fresh.catalog.chunks.name != router.catalog.chunks.name
    assert fresh.catalog.cards.name != router.catalog.cards.name
    after = fresh.route("What does the borrow checker verify?", k=3)
    assert [h.name for h in after] == [h.name for h in before]  # same weights, same ranking
    assert sync_collections(fresh.view) == {"cards_embedded": 0, "cards_removed": 0, "chunks_embedded": 0,
                                          "chunks_removed": 0}
    # the old collections are kept: switching back costs nothing
    assert activate(fresh.workspace, "base")["cards_embedded"] == 0
    assert AgenticRouter(router.config, llm=None).view.embedder_version is None


def test_failed_activation_keeps_the_previous_version(router) -> None:
    target = router.registry.new_dir("broken")
    (target / "model").mkdir()
    (target / "model" / "config.json").write_text("{not json", encoding="utf-8")
    router.registry.register(ModelVersion(name="broken", method="full", base="base", path="broken/model"))
    with pytest.raises(ModelError) as exc:  # a user error, reported in one line naming the broken folder
        activate(router.workspace, "broken")
    message = str(exc.value)
    assert message.startswith("cannot load embedder ") and str(target / "model") in message, message
    assert "\n" not in message
    assert router.registry.active() == {"embedder": None, "reranker": None}
    assert AgenticRouter(router.config, llm=None).view.embedder_version is None


def test_registry_errors(router) -> None:
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        router.registry.get("nope")
    _register_copy_of_base(router, "v1")
    with pytest.raises(CatalogError, match="model 'v1' already exists"):
        router.registry.new_dir("v1")
    with pytest.raises(InputError, match="model name 'base' must be 1-64 letters, digits"):
        router.registry.new_dir("base")
    with pytest.raises(InputError, match="no cross-encoder is active"):
        router.route("anything", k=3, rerank=10)


def test_eval_compare_bm25_with_report(router, corpus_dir: Path, tmp_path: Path) -> None:
    tools = router.list_tools()
    borrow = next(t.doc_id for t in tools if t.doc_id.startswith("borrow"))
    volcano = next(t.doc_id for t in tools if t.doc_id.startswith("volcano"))
    queries = write_jsonl(tmp_path / "q.jsonl", [
        {"qid": "1", "query": "What does the borrow checker verify?", "gold": [borrow], "kind": "vector"},
        {"qid": "2", "query": "eruptions overview", "gold": [volcano], "kind": "summary"},
        {"qid": "3", "query": "Which light is reflected by leaves?", "gold": [borrow]},  # a deliberate miss
    ])
    out, report = tmp_path / "m.json", tmp_path / "report"
    result = CliRunner().invoke(main, [
        "--workspace", str(router.config.workspace), "--llm", "none", "eval", "--queries", str(queries),
        "--compare", "base,active,bm25,lead", "--report", str(report), "--json", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert set(metrics) == {"base", "active", "bm25", "lead"}
    assert metrics["base"]["hit@1"] == metrics["active"]["hit@1"] == pytest.approx(2 / 3)
    assert metrics["active"]["kind_accuracy"] == 1.0
    assert (report / "report.md").is_file() and (report / "hit_at_k.png").stat().st_size > 1000
    assert (report / "per_kind.png").is_file()
    failures = [json.loads(line) for line in (report / "failures-active.jsonl").read_text().splitlines()]
    assert [f["qid"] for f in failures] == ["3"]


def test_models_cli(router) -> None:
    _register_copy_of_base(router, "ft2")
    runner = CliRunner()
    ws = ["--workspace", str(router.config.workspace), "--llm", "none"]
    listed = json.loads(runner.invoke(main, [*ws, "models", "list", "--json"]).stdout)
    assert listed["active"]["embedder"] is None and [v["name"] for v in listed["versions"]] == ["ft2"]
    assert runner.invoke(main, [*ws, "models", "activate", "ft2"]).exit_code == 0
    assert json.loads(runner.invoke(main, [*ws, "models", "list", "--json"]).stdout)["active"]["embedder"] == "ft2"
    bad = runner.invoke(main, [*ws, "models", "activate", "ghost"])
    assert bad.exit_code == 1 and "unknown model 'ghost'" in bad.stderr
    assert runner.invoke(main, [*ws, "models", "activate", "base"]).exit_code == 0
