"""Tool names and descriptions written from a document: title, a short summary, salient keywords, and what
each index kind answers best. The description is what both the router (embedding) and the agent (prompt)
read, so it has to say what the tool *knows* and what it is *good for*.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import TYPE_CHECKING, Callable, Sequence

from agentic_router.indexes.documents import SourceDocument, slugify
from agentic_router.indexes.schema import MAX_TOOL_NAME, ToolSpec, stable_hash

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

logger = logging.getLogger(__name__)

KIND_PURPOSE = {
    "vector": "Semantic search over the passages of {title}. Best for specific facts, numbers, methods and "
    "details stated in this document.",
    "summary": "Reads the whole of {title} to answer broad questions. Best for overviews, main findings, "
    "comparisons and what the document is about.",
    "keyword": "Keyword lookup in {title}. Best for exact names, terms, acronyms and identifiers that appear "
    "in the document.",
}
DOC_KINDS = ("vector", "summary", "keyword")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
_METADATA_LINE = re.compile(r"^(https?://|doi:|license:|keywords?:|\d{4}-\d{2}-\d{2}$)", re.I)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-]{2,}")


def extractive_summary(text: str, title: str, sentences: int = 3, max_chars: int = 420) -> str:
    """Lead sentences of the body, skipping title, links, author lists and other front matter."""
    picked: list[str] = []
    for para in re.split(r"\n\s*\n|\n", text):
        para = para.strip()
        if not para or para == title or _METADATA_LINE.match(para) or _looks_like_names(para):
            continue
        para = re.sub(r"^(abstract|summary|background)\s*[:.]\s*", "", para, flags=re.I)
        for sent in _SENTENCE.split(para):
            sent = " ".join(sent.split())
            if len(sent.split()) >= 6:
                picked.append(sent)
            if len(picked) >= sentences:
                break
        if len(picked) >= sentences:
            break
    summary = " ".join(picked) or " ".join(text.split())[:max_chars]
    return summary if len(summary) <= max_chars else summary[: max_chars - 1].rsplit(" ", 1)[0] + "…"


def _looks_like_names(line: str) -> bool:
    """Author lists ("Smith, John; Doe, Jane") carry no topic; skip them."""
    return line.count(";") >= 2 and len(line.split()) < 80 and not line.endswith(".")


def salient_keywords(text: str, limit: int, stopwords: set[str]) -> list[str]:
    """Frequent content words, boosting acronyms and capitalised terms that name the document's subject."""
    counts: Counter[str] = Counter()
    display: dict[str, str] = {}
    for match in _WORD.finditer(text):
        word = match.group(0)
        key = word.lower()
        if key in stopwords or len(key) < 4 and not word.isupper():
            continue
        weight = 2.0 if word.isupper() and len(word) > 1 else 1.3 if word[0].isupper() else 1.0
        counts[key] += weight
        if key not in display or word.isupper():
            display[key] = word
    return [display[k] for k, _ in counts.most_common(limit)]


def llm_summary(llm: "LLM", doc: SourceDocument, max_chars: int = 4000) -> str | None:
    """Two-sentence summary from a capable LLM; None (so the caller falls back) when the call fails."""
    prompt = (
        "Summarise what the following document is about in two sentences, naming its subject and main "
        f"findings.\n\nTitle: {doc.title}\n\n{doc.text[:max_chars]}\n\nSummary:"
    )
    try:
        text = str(llm.complete(prompt)).strip()
    except Exception as exc:  # noqa: BLE001 - a failed summary must not fail the ingest
        logger.warning("LLM summary failed for %s (%s); using an extractive one", doc.doc_id, exc)
        return None
    return " ".join(text.split())[:600] or None


def tool_names(doc: SourceDocument, is_taken: Callable[[str], bool]) -> dict[str, str]:
    """``vector_<slug>`` etc.: valid identifiers of at most 64 characters, unique across the catalog."""
    slug = slugify(doc.title, 40) or slugify(doc.doc_id, 40) or "doc"
    names = {kind: f"{kind}_{slug}" for kind in DOC_KINDS}
    if any(is_taken(n) for n in names.values()):
        suffix = stable_hash(doc.doc_id, length=8)
        names = {kind: f"{kind}_{slug[: MAX_TOOL_NAME - len(kind) - 10]}_{suffix}" for kind in DOC_KINDS}
    return {k: v[:MAX_TOOL_NAME] for k, v in names.items()}


def describe_document(
    doc: SourceDocument,
    names: dict[str, str],
    summary: str,
    keywords: Sequence[str],
) -> list[ToolSpec]:
    """The three tool specs of one document."""
    title = f'"{doc.title}"'
    tail = f" About: {summary}"
    if keywords:
        tail += f" Key terms: {', '.join(keywords)}."
    return [
        ToolSpec(
            name=names[kind], kind=kind, doc_id=doc.doc_id, title=doc.title,
            description=KIND_PURPOSE[kind].format(title=title) + tail,
        )
        for kind in DOC_KINDS
    ]
