"""Checks on the shared dev benchmarks; skipped cleanly when ``../shared/data`` is absent.

They run on seeded subsets so the suite stays fast; the full-set figures are in the README.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from helpers import SHARED_DATA, shared_available, write_jsonl
from agentic_router.training.baselines import LeadEmbeddingBaseline
from agentic_router.training.evaluate import evaluate, load_queries
from agentic_router.training.report import RouterSystem


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.skipif(not shared_available("covid_qa"), reason="shared COVID-QA data not present")
def test_covid_qa_router_beats_title_plus_lead(make_router, tmp_path: Path) -> None:
    docs = _rows(SHARED_DATA / "covid_qa" / "normalized" / "docs.jsonl")
    picked = random.Random(7).sample(docs, 12)
    ids = {d["doc_id"] for d in picked}
    router = make_router()
    router.ingest([write_jsonl(tmp_path / "docs.jsonl", picked)])
    queries = [q for q in load_queries(SHARED_DATA / "covid_qa" / "normalized" / "queries.jsonl") if set(q.gold) <= ids]
    assert len(queries) >= 50
    ours = evaluate(RouterSystem(router, "active"), queries, level="document")
    lead = evaluate(LeadEmbeddingBaseline(router.view.embedder, router.catalog.document_leads()), queries, level="document")
    assert ours["hit@1"] >= lead["hit@1"], (ours, lead)
    assert ours["hit@1"] > 0.5


@pytest.mark.skipif(not shared_available("seal_tools"), reason="shared Seal-Tools data not present")
def test_seal_tools_catalog_routes_single_call_questions(make_router, tmp_path: Path) -> None:
    base = SHARED_DATA / "seal_tools" / "normalized"
    tools = {t["doc_id"]: t for t in _rows(base / "docs.jsonl")}
    queries = [q for q in load_queries(base / "dev.queries.jsonl") if len(q.gold) == 1][:60]
    needed = {g for q in queries for g in q.gold}
    others = random.Random(3).sample(sorted(set(tools) - needed), 400)
    catalog = write_jsonl(tmp_path / "tools.jsonl", [tools[n] for n in sorted(needed | set(others))])
    router = make_router()
    report = router.add_tools(catalog)
    assert len(report.added) == len(needed | set(others))
    metrics = evaluate(RouterSystem(router, "active"), queries, level="tool")
    assert metrics["hit@5"] > 0.6, metrics
