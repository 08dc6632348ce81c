"""Documents -> three indexes -> three tools, persisted and atomic."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import write_jsonl

from agentic_router.indexes.errors import CatalogError, InputError


def test_three_tools_per_document_with_valid_unique_names(router) -> None:
    specs = router.list_tools()
    assert len(specs) == 9
    names = [s.name for s in specs]
    assert len(set(names)) == 9
    for s in specs:
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s.name) and len(s.name) <= 64
        assert s.kind in {"vector", "summary", "keyword"}
        assert s.doc_id and len(s.tool_id) == 16
    by_doc: dict[str, set[str]] = {}
    for s in specs:
        by_doc.setdefault(s.doc_id, set()).add(s.kind)
    assert all(kinds == {"vector", "summary", "keyword"} for kinds in by_doc.values())


def test_descriptions_are_written_from_the_document(router) -> None:
    vec = next(s for s in router.list_tools("vector") if "photosynthesis" in s.name)
    assert "Photosynthesis in plants" in vec.description
    assert "specific facts" in vec.description  # what this kind answers best
    assert "Chlorophyll" in vec.description or "chlorophyll" in vec.description  # summary / keywords
    summary = next(s for s in router.list_tools("summary") if s.doc_id == vec.doc_id)
    assert "overviews" in summary.description
    html = next(s for s in router.list_tools("keyword") if "volcan" in s.name)
    assert "var x" not in html.description and "exact names" in html.description


def test_indexes_are_persisted_in_the_workspace(router) -> None:
    doc_dirs = [p for p in router.config.docs_dir.iterdir() if p.is_dir()]
    assert len(doc_dirs) == 3
    for d in doc_dirs:
        assert (d / "docstore.json").is_file() and (d / "index_store.json").is_file()
    assert router.catalog.chunks.count() >= 3
    metas = router.catalog.chunks.get(include=["metadatas"])["metadatas"]
    assert {m["doc_id"] for m in metas} == {s.doc_id for s in router.list_tools()}


def test_tool_ids_are_stable_across_workspaces(make_router, corpus_dir: Path) -> None:
    a, b = make_router("a"), make_router("b")
    a.ingest([corpus_dir])
    b.ingest([corpus_dir])
    assert {s.name: s.tool_id for s in a.list_tools()} == {s.name: s.tool_id for s in b.list_tools()}


def test_reingesting_unchanged_content_embeds_nothing(router, corpus_dir: Path, monkeypatch) -> None:
    from agentic_router.indexes import build

    calls: list[int] = []
    real = build.embed_texts
    monkeypatch.setattr(build, "embed_texts", lambda *a, **k: calls.append(1) or real(*a, **k))
    report = router.ingest([corpus_dir])
    assert len(report.unchanged) == 3 and not report.added and calls == []


def test_failed_ingest_leaves_nothing_half_registered(make_router, corpus_dir: Path, monkeypatch) -> None:
    router = make_router()
    router.ingest([corpus_dir / "borrow.txt"])
    before = (router.catalog.count_tools(), router.catalog.chunks.count(), router.catalog.cards.count())

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    from agentic_router.indexes.storage.catalog_db import Change

    monkeypatch.setattr(Change, "put_tools", boom)  # fails inside the SQLite transaction
    with pytest.raises(RuntimeError, match="disk full"):
        router.ingest([corpus_dir / "photosynthesis.md"])
    assert (router.catalog.count_tools(), router.catalog.chunks.count(), router.catalog.cards.count()) == before
    assert not [p for p in router.config.docs_dir.iterdir() if p.name.endswith((".tmp", ".old"))]
    assert len([p for p in router.config.docs_dir.iterdir()]) == 1


def test_duplicate_doc_id_with_other_content_is_refused(make_router, tmp_path: Path) -> None:
    router = make_router()
    first = write_jsonl(tmp_path / "a.jsonl", [{"doc_id": "d1", "title": "Cats", "text": "Cats purr when content."}])
    second = write_jsonl(tmp_path / "b.jsonl", [{"doc_id": "d1", "title": "Dogs", "text": "Dogs bark at strangers."}])
    router.ingest([first])
    with pytest.raises(CatalogError, match="d1.*different content"):
        router.ingest([second])
    assert [s.title for s in router.list_tools()] == ["Cats"] * 3
    report = router.ingest([second], replace=True)
    assert report.replaced == ["d1"]
    assert {s.title for s in router.list_tools()} == {"Dogs"}
    texts = router.catalog.chunks.get(include=["documents"])["documents"]
    assert all("Dogs" in t for t in texts) and len(texts) == 1


def test_same_doc_id_twice_in_one_batch_is_refused(make_router, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "dup.jsonl", [
        {"doc_id": "x", "title": "A", "text": "alpha text here"}, {"doc_id": "x", "title": "B", "text": "beta"},
    ])
    with pytest.raises(InputError, match="'x' is given twice"):
        make_router().ingest([path])


def test_cjk_documents_are_indexed_and_routed(make_router, tmp_path: Path) -> None:
    router = make_router()
    path = write_jsonl(tmp_path / "cjk.jsonl", [
        {"doc_id": "tea", "title": "日本の茶道", "text": "茶道は日本の伝統的な文化です。抹茶を点てて客をもてなします。"},
        {"doc_id": "rail", "title": "高速鉄道", "text": "中国的高速铁路网络是世界上最大的。列车时速可达三百五十公里。"},
    ])
    router.ingest([path])
    assert len(router.list_tools()) == 6
    assert all(re.fullmatch(r"[a-z_0-9]+", s.name) for s in router.list_tools())
    hits = router.route("抹茶", k=3)
    assert hits and hits[0].doc_id in {"tea", "rail"}


def test_repair_keeps_the_chunks_of_a_document_whose_indexes_cannot_be_read(router) -> None:
    import shutil

    before = router.catalog.chunks.count()
    doc = router.list_documents()[0]
    shutil.rmtree(router.config.docs_dir / doc["storage"])  # its stored chunks are gone; its vectors are not
    done = router.repair()
    assert done["chunks_removed"] == 0 and router.catalog.chunks.count() == before
