"""Card vectors searched in process: the same neighbours and similarities as Chroma, kept current by the
change log (no whole-collection read for a small change), Chroma again above the size limit, and SQLite
reads from many threads while a writer commits."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from agentic_router.indexes.schema import ToolSpec
from agentic_router.indexes.storage.card_matrix import CardMatrix, CardMatrixCache

NOUNS = "invoice flight hotel stock recipe email calendar meeting parcel currency".split()
QUESTIONS = ["book a hotel room for the meeting", "convert this currency", "where is my parcel",
             "stock price of an account", "a recipe with eggs", "count the quokkas"]


def tools(n: int, start: int = 0) -> list[ToolSpec]:
    return [ToolSpec(name=f"tool_{i}", kind="external",
                     description=f"Look up the {NOUNS[i % 10]} record number {i} of a {NOUNS[(i * 7) % 10]} account.")
            for i in range(start, start + n)]


def chroma_nearest(catalog, qvec: np.ndarray, n: int) -> dict[str, float]:
    res = catalog.cards.query(query_embeddings=[qvec.tolist()], n_results=n, include=["distances"])
    return {name: 1.0 - float(d) for name, d in zip(res["ids"][0], res["distances"][0])}


def stored_similarity(catalog, qvec: np.ndarray) -> dict[str, float]:
    """Cosine of ``qvec`` to every card vector Chroma stores: the exact answer."""
    got = catalog.cards.get(include=["embeddings"])
    vectors = np.asarray(got["embeddings"], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return dict(zip(got["ids"], (vectors @ (qvec / np.linalg.norm(qvec))).tolist()))


def assert_same_as_chroma(router) -> None:
    """The matrix gives the exact neighbours of Chroma's stored vectors, with the similarities Chroma's
    distances give (its HNSW query is approximate: with updates and deletions it can miss a card when asked
    for all of them, so it is compared on the cards it returns)."""
    catalog = router.catalog
    n = catalog.count_tools()
    for question in QUESTIONS:
        qvec = router.view.retriever.embed(question)
        exact, truth = catalog.nearest_cards(qvec, n), stored_similarity(catalog, qvec)
        assert exact.keys() == truth.keys()
        assert max(abs(exact[k] - truth[k]) for k in exact) < 1e-4
        chroma = chroma_nearest(catalog, qvec, n)
        assert len(chroma.keys() & exact.keys()) >= n - 2
        assert all(abs(exact[k] - chroma[k]) < 1e-4 for k in chroma.keys() & exact.keys())
        top = list(catalog.nearest_cards(qvec, 5))
        assert top == sorted(exact, key=lambda k: -exact[k])[:5]
        some = sorted(truth, key=lambda k: truth[k])[:3] + ["no_such_tool"]
        sims = catalog.card_similarity(qvec, some)
        assert sims.keys() == set(some[:-1]) and all(abs(sims[k] - truth[k]) < 1e-4 for k in sims)


def test_the_matrix_answers_as_chroma_and_follows_changes_in_place(make_router) -> None:
    router = make_router()
    router.add_tools(tools(40))
    router.route("warm up", k=3)
    catalog = router.catalog
    cache = catalog._card_matrix
    assert cache.full_reads == 1
    assert_same_as_chroma(router)

    router.add_tools([ToolSpec(name="quokka_census", kind="external", description="Count quokkas on Rottnest island")])
    assert router.route("count the quokkas on Rottnest", k=1)[0].name == "quokka_census"
    router.add_tools([ToolSpec(name="tool_5", kind="external", description="Book a table at a restaurant")],
                     replace=True)
    router.delete_tools(["tool_7"])
    assert_same_as_chroma(router)
    matrix = catalog.card_matrix()
    assert cache.full_reads == 1  # three changes, each read from the log, not from the whole collection
    assert "tool_7" not in matrix.rows and len(matrix) == 40 and "quokka_census" in matrix.rows
    assert router.route("reserve a restaurant table", k=1)[0].name == "tool_5"


def test_above_the_limit_chroma_answers(make_router) -> None:
    router = make_router()
    router.add_tools(tools(12))
    catalog = router.catalog
    catalog._card_matrix = CardMatrixCache(max_cards=10)
    assert catalog.card_matrix() is None
    qvec = router.view.retriever.embed("where is my parcel")
    assert catalog.nearest_cards(qvec, 12).keys() == chroma_nearest(catalog, qvec, 12).keys()
    router.delete_tools(["tool_0", "tool_1", "tool_2"])
    assert catalog.card_matrix() is not None and len(catalog.card_matrix()) == 9


def test_matrix_copies_are_independent() -> None:
    base = CardMatrix(["a", "b"], np.array([[1.0, 0.0], [0.0, 2.0]]))
    changed = base.updated({"a": None, "c": [3.0, 4.0]})
    assert base.names == ["a", "b"] and changed.names == ["b", "c"]
    assert np.allclose(np.linalg.norm(changed.vectors, axis=1), 1.0)
    nearest = changed.nearest(np.array([0.6, 0.8]), 5)
    assert list(nearest) == ["c", "b"] and nearest == pytest.approx({"c": 1.0, "b": 0.8})
    assert changed.similarity(np.array([1.0, 0.0]), ["a", "c"]) == pytest.approx({"c": 0.6})


def test_routes_on_many_threads_while_a_writer_commits(make_router) -> None:
    router = make_router()
    router.add_tools(tools(30))
    router.route("warm up", k=1)
    errors: list[BaseException] = []
    seen: list[str] = []

    def reader(question: str) -> None:
        try:
            for _ in range(15):
                seen.append(router.route(question, k=1)[0].name)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(q,)) for q in QUESTIONS]
    for t in threads:
        t.start()
    for i in range(5):
        router.add_tools(tools(1, start=100 + i))
    for t in threads:
        t.join()
    assert not errors and len(seen) == 15 * len(QUESTIONS)
    assert router.catalog.count_tools() == 35
    assert_same_as_chroma(router)
    assert len(router.catalog.db._readers) >= 2  # the reading threads had connections of their own
