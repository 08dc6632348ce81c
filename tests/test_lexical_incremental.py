"""BM25 that follows the catalog in place: same scores as a full build (and as bm25s), no full build for a
small change, a later process catching up from its snapshot and the catalog's change log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import CORPUS

from agentic_router.indexes.lexical.cache import (
    NO_MATCH,
    LexicalCache,
    LexicalIndex,
    LexicalMatch,
    build_index,
    default_stopwords,
    import_bm25s,
    tokenize,
)
from agentic_router.indexes.schema import ToolSpec

STOP = default_stopwords()
QUERIES = [
    "How does the retriever score a tool card?", "chunks embedder tokens per document", "BM25 over cards and chunks",
    "light energy chlorophyll glucose", "borrow checker mutable reference", "volcano lava eruption magma",
    "workspace catalog version SQLite", "the the the", "zzzunknownword", "catalog catalog catalog tools",
]


def real_texts() -> list[str]:
    """Paragraphs of real English prose: the tests' corpus and this repository's architecture notes."""
    here = Path(__file__).resolve().parents[1]
    paragraphs = [p for text in CORPUS.values() for p in re.split(r"\n\s*\n", text) if p.strip()]
    notes = (here / "docs" / "architecture.md").read_text(encoding="utf-8")
    paragraphs += [p for p in re.split(r"\n\s*\n", notes) if len(p.split()) > 3]
    return paragraphs + [""]  # an empty text is indexed too (as "_"), as before


def bm25s_match(keys: list[str], texts: list[str], query: str, k: int) -> LexicalMatch:
    """The previous implementation: a bm25s index rebuilt over all texts, read as ``LexicalIndex.match`` did."""
    import math

    bm25s = import_bm25s()
    model = bm25s.BM25()
    model.index([tokenize(t, STOP) or ["_"] for t in texts], show_progress=False)
    tokens = tokenize(query, STOP)
    if not tokens:
        return NO_MATCH
    ids, scores = model.retrieve([tokens], k=min(k, len(keys)), show_progress=False)
    if not len(scores[0]) or scores[0][0] <= 0:
        return NO_MATCH
    out: dict[str, float] = {}
    for i, value in zip(ids[0].tolist(), scores[0].tolist()):
        if value > 0:
            out.setdefault(keys[i], float(value))
    n, indptr = float(model.scores["num_docs"]), model.scores["indptr"]

    def ceiling(unknown: bool) -> float:
        total = 0.0
        for token in tokens:
            tid = model.vocab_dict.get(token)
            if tid is not None or unknown:
                df = float(indptr[tid + 1] - indptr[tid]) if tid is not None else 0.0
                total += math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        return total / (1.0 + model.k1)

    return LexicalMatch(out, float(scores[0][0]), ceiling(False), ceiling(True))


def assert_same(got: LexicalMatch, want: LexicalMatch) -> None:
    assert set(got.scores) == set(want.scores)
    for key, value in want.scores.items():
        assert got.scores[key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
    for field in ("best", "ceiling", "ceiling_all"):
        assert getattr(got, field) == pytest.approx(getattr(want, field), rel=1e-6, abs=1e-6), field


def test_scores_equal_bm25s_on_real_text() -> None:
    texts = real_texts()
    keys = [f"doc{i // 3}" for i in range(len(texts))]  # three entries per key, like a document's chunks
    index = LexicalIndex(keys, texts, STOP)
    matched = 0
    for query in QUERIES:
        for k in (3, len(texts)):  # top-3 has no tie at its edge for these questions; len(texts) is all of them
            got, want = index.match(query, k), bm25s_match(keys, texts, query, k)
            assert_same(got, want)
            matched += bool(want.scores)
    assert matched >= 12  # most questions match something, so the comparison is not vacuous


def test_add_remove_replace_in_place_equal_a_full_build() -> None:
    texts = real_texts()
    entries = {f"t{i}": [t] for i, t in enumerate(texts)}
    entries["multi"] = texts[:4]
    index = LexicalIndex([k for k, v in entries.items() for _ in v], [t for v in entries.values() for t in v], STOP)
    changes = {
        "t1": [],  # removed
        "t5": ["Register a card for the zebrafish genome browser"],  # replaced
        "multi": texts[6:8],  # a key with several entries, replaced by fewer
        "brand_new": ["zebrafish genome lookup tool", ""],  # added, with an empty entry
        "never_there": [],  # removing an unknown key changes nothing
    }
    index.apply(changes)
    entries.update(changes)
    fresh = LexicalIndex([k for k, v in entries.items() for _ in v], [t for v in entries.values() for t in v], STOP)
    assert index.size == fresh.size and sorted(index.keys) == sorted(fresh.keys)
    for query in QUERIES + ["zebrafish genome", "genome browser card"]:
        assert_same(index.match(query, 10_000), fresh.match(query, 10_000))
    assert index.match("zebrafish", 5).scores.keys() == {"t5", "brand_new"}
    index.bm25.compact()  # merged and renumbered: still the same scores
    assert_same(index.match("zebrafish genome", 10_000), fresh.match("zebrafish genome", 10_000))


def tools(n: int, start: int = 0) -> list[ToolSpec]:
    nouns = "invoice flight hotel stock recipe email calendar meeting parcel currency".split()
    return [ToolSpec(name=f"tool_{i}", kind="external",
                     description=f"Look up the {nouns[i % 10]} record number {i} of a {nouns[(i * 7) % 10]} account.")
            for i in range(start, start + n)]


def same_as_full_build(cache_index: LexicalIndex, router, query: str) -> None:
    fresh = build_index(router.catalog.cards, "cards", STOP)
    assert_same(cache_index.match(query, 10_000), fresh.match(query, 10_000))


def test_adding_a_tool_updates_bm25_in_place(make_router) -> None:
    router = make_router()
    router.add_tools(tools(30))
    router.route("invoice record of a hotel account", k=3)
    cache = router.workspace.lexical
    builds = cache.full_builds
    router.add_tools([ToolSpec(name="quokka_census", kind="external", description="Count quokkas on Rottnest island")])
    hits = router.route("quokka census on Rottnest", k=3)
    assert hits[0].name == "quokka_census"  # found by its words at once
    assert cache.full_builds == builds and cache.updates >= 1  # without a full rebuild
    catalog = router.catalog
    index = cache.get(catalog.cards, catalog.version(), "cards", catalog.db.changes_since)
    assert index.match("quokka", 5).scores.keys() == {"quokka_census"}
    same_as_full_build(index, router, "quokka census invoice record hotel")  # every other score moved with N

    router.delete_tools(["quokka_census", "tool_3"])
    index = cache.get(catalog.cards, catalog.version(), "cards", catalog.db.changes_since)
    assert index.match("quokka Rottnest", 5) == NO_MATCH  # a deleted tool leaves BM25
    assert "tool_3" not in index.keys and cache.full_builds == builds
    same_as_full_build(index, router, "invoice record number 3 stock")


def test_a_later_process_loads_its_snapshot_and_replays_the_log(make_router, tmp_path: Path) -> None:
    router = make_router()
    router.add_tools(tools(40))
    catalog = router.catalog

    def current(cache: LexicalCache) -> LexicalIndex:
        return cache.get(catalog.cards, catalog.version(), "cards", catalog.db.changes_since)

    folder = tmp_path / "lexical"
    first = LexicalCache(folder, STOP, save_share=100.0)  # saves after full builds only: the snapshot lags behind
    current(first)
    snapshot_version = catalog.version()
    router.add_tools(tools(3, start=100))
    router.add_tools([ToolSpec(name="tool_5", kind="external", description="Track a wombat burrow")], replace=True)
    router.delete_tools(["tool_7"])
    current(first)
    assert first.full_builds == 1 and first.updates == 1
    assert [p.name for p in folder.iterdir()] == [f"{catalog.cards.name}-v{snapshot_version}"]

    later = LexicalCache(folder, STOP)  # a process started now: snapshot + the log since its version
    index = current(later)
    assert later.full_builds == 0 and later.updates == 1
    for query in ("wombat burrow", "look up the invoice record number 7", "record number 101 flight"):
        assert_same(index.match(query, 10_000), current(first).match(query, 10_000))
        same_as_full_build(index, router, query)
    assert "tool_7" not in index.keys and index.match("wombat", 3).scores.keys() == {"tool_5"}
    # it saved what it caught up to (1% of 42 keys changed is more than enough), and dropped the old snapshot
    assert [p.name for p in folder.iterdir()] == [f"{catalog.cards.name}-v{catalog.version()}"]

    blind = LexicalCache(tmp_path / "blind", STOP)  # no change log to read: a version step is a full build
    blind.get(catalog.cards, catalog.version(), "cards")
    router.add_tools(tools(1, start=200))
    blind.get(catalog.cards, catalog.version(), "cards")
    assert blind.full_builds == 2 and blind.updates == 0


def test_documents_follow_in_place_too(make_router, corpus_dir: Path) -> None:
    router = make_router()
    router.ingest([corpus_dir])
    router.route("What does the borrow checker verify?", k=1)
    cache, catalog = router.workspace.lexical, router.catalog
    builds = cache.full_builds
    doc_id = next(d["doc_id"] for d in router.list_documents() if d["doc_id"].startswith("borrow"))
    router.delete_document(doc_id)
    chunks = cache.get(catalog.chunks, catalog.version(), "chunks", catalog.db.changes_since)
    cards = cache.get(catalog.cards, catalog.version(), "cards", catalog.db.changes_since)
    assert cache.full_builds == builds
    assert doc_id not in chunks.keys and chunks.match("borrow checker references", 10) == NO_MATCH
    fresh = build_index(catalog.chunks, "chunks", STOP)
    for query in ("chlorophyll light glucose", "magma eruption lava", "borrow checker"):
        assert_same(chunks.match(query, 100), fresh.match(query, 100))
        same_as_full_build(cards, router, query)
    (corpus_dir / "borrow.txt").write_text("The Rust borrow checker\n\nLifetimes tie each reference to its owner.\n",
                                           encoding="utf-8")
    router.ingest([corpus_dir])
    chunks = cache.get(catalog.chunks, catalog.version(), "chunks", catalog.db.changes_since)
    assert chunks.match("lifetimes owner", 5).scores and cache.full_builds == builds
    assert_same(chunks.match("lifetimes reference owner", 100),
                build_index(catalog.chunks, "chunks", STOP).match("lifetimes reference owner", 100))


def test_the_change_log_keeps_a_bounded_window(make_router, monkeypatch: pytest.MonkeyPatch) -> None:
    from agentic_router.indexes.storage import catalog_db

    monkeypatch.setattr(catalog_db, "CHANGES_KEPT", 3)
    router = make_router()
    router.add_tools(tools(5))
    catalog, cache = router.catalog, router.workspace.lexical
    router.route("invoice record", k=3)
    behind = catalog.version()
    builds = cache.full_builds
    for i in range(6):  # six versions, one tool each
        router.add_tools([ToolSpec(name=f"extra_{i}", kind="external", description=f"Count the wombats of burrow {i}")])
    now = catalog.version()
    kept = {v for v, _, _ in catalog.db.changes_since(now - 3)}
    assert kept == {now - 2, now - 1, now}  # the last three versions, whole
    assert catalog.db.changes_since(now - 4) is None and catalog.db.changes_since(behind) is None
    count = catalog.db._rows("SELECT COUNT(*) FROM changes")[0][0]
    assert count == 3
    # a reader further behind than the window reads whole, and still agrees with a fresh build
    index = cache.get(catalog.cards, now, "cards", catalog.db.changes_since)
    assert cache.full_builds == builds + 1 and "extra_0" in index.keys
    same_as_full_build(index, router, "wombats of burrow 4")
    router.add_tools([ToolSpec(name="extra_9", kind="external", description="Feed the quokkas")])
    cache.get(catalog.cards, catalog.version(), "cards", catalog.db.changes_since)
    assert cache.full_builds == builds + 1  # inside the window it follows in place again
    assert router.route("feed quokkas", k=1)[0].name == "extra_9"
