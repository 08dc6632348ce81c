"""Loading documents: files (txt, md, pdf, html), folders, and JSONL rows of ``{"doc_id","title","text"}``.

Every input is validated before anything is indexed, so a bad file stops the run with a one-line error
that names the file (and the line, for JSONL) instead of leaving part of a batch registered.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from agentic_router.indexes.errors import InputError

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
JSONL_SUFFIXES = {".jsonl"}
SUPPORTED = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES | JSONL_SUFFIXES
MAX_DOC_ID = 200


@dataclass(frozen=True)
class SourceDocument:
    """A document ready for indexing. ``doc_id`` is stable: given, or derived from file name + content."""

    doc_id: str
    title: str
    text: str
    source: str

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(f"{self.title}\x00{self.text}".encode("utf-8")).hexdigest()


def slugify(text: str, max_len: int = 48) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return slug[:max_len].rstrip("_")


def load_paths(paths: Iterable[str | Path]) -> list[SourceDocument]:
    """Expand folders, read every file, validate, and refuse two different contents under one doc_id."""
    docs: list[SourceDocument] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputError(f"no such file or directory: {raw}")
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED) if path.is_dir() else [path]
        if path.is_dir() and not files:
            raise InputError(f"{raw}: folder holds no supported file ({', '.join(sorted(SUPPORTED))})")
        for file in files:
            docs.extend(load_file(file))
    by_id: dict[str, SourceDocument] = {}
    for doc in docs:
        prev = by_id.get(doc.doc_id)
        if prev is not None and prev.content_hash != doc.content_hash:
            raise InputError(f"doc_id {doc.doc_id!r} is given twice with different content ({prev.source}, {doc.source})")
        by_id[doc.doc_id] = doc
    return list(by_id.values())


def load_file(path: Path) -> list[SourceDocument]:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise InputError(f"{path}: unsupported file type {suffix or '(none)'}; use one of {', '.join(sorted(SUPPORTED))}")
    if suffix in JSONL_SUFFIXES:
        return list(iter_jsonl_documents(path))
    if suffix in PDF_SUFFIXES:
        text = _read_pdf(path)
    else:
        text = read_text(path)
        if suffix in HTML_SUFFIXES:
            text = _html_to_text(text)
    text = text.strip()
    if not text:
        raise InputError(f"{path}: file is empty (no text to index)")
    title = _guess_title(text, path)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    return [SourceDocument(doc_id=f"{slugify(path.stem, 40) or 'doc'}-{digest}", title=title, text=text, source=str(path))]


def read_text(path: Path) -> str:
    """Read UTF-8 text, refusing binary content with a clear message."""
    data = path.read_bytes()
    if not data.strip():
        raise InputError(f"{path}: file is empty (no text to index)")
    if b"\x00" in data[:8192]:
        raise InputError(f"{path}: binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); binary file?") from exc


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, row)``; a malformed line raises an error naming it."""
    text = read_text(path)
    seen_any = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} line {lineno}: invalid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise InputError(f"{path} line {lineno}: expected a JSON object, got {type(row).__name__}")
        seen_any = True
        yield lineno, row
    if not seen_any:
        raise InputError(f"{path}: file is empty (no JSON rows)")


def iter_jsonl_documents(path: Path) -> Iterator[SourceDocument]:
    for lineno, row in iter_jsonl(path):
        yield document_from_row(row, where=f"{path} line {lineno}", source=f"{path}:{lineno}")


def document_from_row(row: dict[str, Any], where: str, source: str) -> SourceDocument:
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: missing or empty 'text'")
    title = row.get("title") or _guess_title(text, None)
    if not isinstance(title, str):
        raise InputError(f"{where}: 'title' must be a string")
    doc_id = row.get("doc_id")
    if doc_id is None:
        doc_id = f"{slugify(title, 40) or 'doc'}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:10]}"
    doc_id = str(doc_id).strip()
    if not doc_id or len(doc_id) > MAX_DOC_ID:
        raise InputError(f"{where}: 'doc_id' must be 1..{MAX_DOC_ID} characters")
    return SourceDocument(doc_id=doc_id, title=title.strip()[:300], text=text.strip(), source=source)


def _guess_title(text: str, path: Path | None) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:200]
    return path.stem if path else "untitled"


def _html_to_text(html: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else ""
    body = soup.get_text("\n", strip=True)
    return f"{title}\n\n{body}" if title and not body.startswith(title) else body


def _read_pdf(path: Path) -> str:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as exc:  # pragma: no cover - pypdf is a dependency
        raise InputError(f"{path}: PDF support needs pypdf (pip install pypdf)") from exc
    try:
        reader = PdfReader(str(path))
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, ValueError, OSError) as exc:
        raise InputError(f"{path}: unreadable PDF ({exc})".splitlines()[0]) from exc
