"""Every bad input gets a clear one-line error, and nothing is half-registered."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentic_router.indexes.errors import InputError
from agentic_router.indexes.sources.documents import load_paths


def _assert_nothing_registered(router) -> None:
    assert router.catalog.count_tools() == 0
    assert router.catalog.count_documents() == 0
    assert router.catalog.chunks.count() == 0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.txt", b"", "file is empty"),
        ("blank.md", b"  \n\n  ", "file is empty"),
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary file"),
        ("latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"), "not UTF-8"),
        ("empty.jsonl", b"\n\n", "file is empty"),
        ("notes.docx", b"PK\x03\x04", "unsupported file type"),
    ],
)
def test_bad_files_are_refused_before_anything_is_written(make_router, corpus_dir: Path, name, content, message) -> None:
    bad = corpus_dir / name
    bad.write_bytes(content)
    router = make_router()
    with pytest.raises(InputError, match=message) as info:
        router.ingest([corpus_dir / "borrow.txt", bad])
    assert "\n" not in str(info.value) and name in str(info.value)
    _assert_nothing_registered(router)


def test_malformed_jsonl_names_the_line(make_router, tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"doc_id": "a", "title": "A", "text": "fine"}\n{"doc_id": "b", "title": \n', encoding="utf-8")
    router = make_router()
    with pytest.raises(InputError, match=r"docs.jsonl line 2: invalid JSON"):
        router.ingest([path])
    _assert_nothing_registered(router)


def test_jsonl_row_without_text_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"doc_id": "a", "title": "A", "text": "fine"}\n\n{"doc_id": "b", "title": "B"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"line 3: missing or empty 'text'"):
        load_paths([path])


def test_unknown_path(make_router, tmp_path: Path) -> None:
    router = make_router()
    with pytest.raises(InputError, match="no such file or directory"):
        router.ingest([tmp_path / "missing.md"])
    _assert_nothing_registered(router)


def test_huge_query_is_refused_with_one_line(router) -> None:
    with pytest.raises(InputError, match=r"100,000 characters long; the limit is 10,000") as info:
        router.route("x" * 100_000)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="empty"):
        router.route("   ")


def test_cjk_query_routes(router) -> None:
    hits = router.route("光合作用是什么？", k=3)
    assert len(hits) == 3 and all(h.score == h.score for h in hits)  # real numbers, no NaN


def test_bad_tool_catalog_rows(make_router, tmp_path: Path) -> None:
    router = make_router()
    cases = {
        "no_desc.jsonl": ('{"name": "ok_tool", "description": "Does things"}\n{"name": "bad"}\n', "line 2: tool 'bad' has no description"),
        "bad_name.jsonl": ('{"name": "tab\\there", "description": "x"}\n', "line 1: tool name 'tab\\\\there'"),
        "long_name.jsonl": ('{"name": "%s", "description": "x"}\n' % ("n" * 65), r"does not match \^\[A-Za-z0-9_-\]\{1,64\}\$"),
        "path_name.jsonl": ('{"name": "ok_tool", "description": "x"}\n{"name": "../../etc/passwd", "description": "x"}\n',
                            r"line 2: tool name '../../etc/passwd' does not match .*at most 64"),
        "sql_name.jsonl": ('{"type": "function", "function": {"name": "a b; DROP TABLE tools;--", "description": "x"}}\n',
                           "line 1: tool name 'a b; DROP TABLE tools;--' does not match"),
        "dup.jsonl": ('{"name": "t", "description": "a"}\n{"name": "t", "description": "b"}\n', "line 2: tool 't' already defined at .*dup.jsonl line 1"),
        "garbage.jsonl": ('{"name": "t", "description": "a"}\nnot json\n', "line 2: invalid JSON"),
    }
    for fname, (text, message) in cases.items():
        path = tmp_path / fname
        path.write_text(text, encoding="utf-8")
        with pytest.raises(InputError, match=message):
            router.add_tools(path)
    assert router.catalog.count_tools() == 0
