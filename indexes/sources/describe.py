"""Tool names and descriptions written from a document: title, a short summary, salient keywords, and what
each index kind answers best. The description is what both the router (embedding) and the agent (prompt)
read, so it has to say what the tool *knows* and what it is *good for*.

The text helpers here (sentences, author-list lines, the three salient-term scorers) are also what training
data generation reads documents with, so ingestion and generation see a document the same way.
"""

from __future__ import annotations

import heapq
import logging
import math
import re
from collections import Counter, defaultdict
from operator import itemgetter
from typing import TYPE_CHECKING, Callable, Collection, Mapping, Sequence

from agentic_router.indexes.lexical.cache import FUNCTION_WORDS
from agentic_router.indexes.schema import MAX_TOOL_NAME, ToolSpec, stable_hash
from agentic_router.indexes.sources.documents import SourceDocument, slugify

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
# a sentence ends at . ! or ? followed by a space and a capital, digit, quote or bracket ("e.g. the" stays)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
_METADATA_LINE = re.compile(r"^(https?://|doi:|license:|keywords?:|\d{4}-\d{2}-\d{2}$)", re.I)
# a keyword: three or more letters, digits and hyphens from a letter on (so "H1", "IU" never count)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-]{2,}")
# a term: from a letter, with digits and inner hyphens ("SARS-CoV-2", "IL-6"), never ending in a hyphen
_TERM = re.compile(r"[A-Za-z][A-Za-z0-9\-]*[A-Za-z0-9]")
# never a passage's key term: section headings and abbreviations every paper uses
_NOT_KEY_TERMS = {"CONCLUSIONS", "CONCLUSION", "RESULTS", "METHODS", "BACKGROUND", "INTRODUCTION", "DISCUSSION",
                  "OBJECTIVE", "OBJECTIVES", "ABSTRACT", "FIGURE", "TABLE", "US", "UK", "USA", "CI", "OR", "RR"}


def extractive_summary(text: str, title: str, sentences: int = 3, max_chars: int = 420) -> str:
    """Lead sentences of the body, skipping title, links, author lists and other front matter."""
    picked: list[str] = []
    for para in re.split(r"\n\s*\n|\n", text):
        para = para.strip()
        if not para or para == title or _METADATA_LINE.match(para) or looks_like_names(para):
            continue
        para = re.sub(r"^(abstract|summary|background)\s*[:.]\s*", "", para, flags=re.I)
        for sent in split_sentences(para):
            if len(sent.split()) >= 6:
                picked.append(sent)
            if len(picked) >= sentences:
                break
        if len(picked) >= sentences:
            break
    summary = " ".join(picked) or " ".join(text.split())[:max_chars]
    return summary if len(summary) <= max_chars else summary[: max_chars - 1].rsplit(" ", 1)[0] + "…"


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, whitespace collapsed, empty ones dropped."""
    return [s.strip() for s in _SENTENCE_BREAK.split(" ".join(text.split())) if s.strip()]


def looks_like_names(line: str) -> bool:
    """Author lists ("Smith, John; Doe, Jane; ...") carry no topic: summaries and passages skip them."""
    return line.count(";") >= 2 and len(line.split()) < 80 and not line.endswith(".")


# ---- salient terms ----------------------------------------------------------------------------------------
# Three scorers for three jobs, sharing what is the same idea (the short-word filter, the term pattern, the
# capitals test) and differing where the job does: ``salient_keywords`` reads one document at ingest, before
# any other exists, so it can only count; ``distinctive_terms`` sees the whole catalog and ranks by tf-idf;
# ``key_term`` picks one word of one short passage for a question prompt, where position and shape matter
# more than counts. Each keeps its own scanner and spelling rule because the outputs are data: the keywords
# are written into every document tool's description (so into every embedding), the terms and key terms
# decide which questions get generated. Counting the keywords with the term scanner changed them for 86 of
# the 98 COVID-QA papers (22 beyond spelling, mostly two-letter tokens such as "H1", "IU", "BP" pushing real
# subjects out).
def _minor(word: str, stopwords: Collection[str]) -> bool:
    """A stopword, or a word under four letters that is not an acronym ("HIV" stays, "fig" goes)."""
    key = word.lower()
    return key in stopwords or len(key) < 4 and not word.isupper()


def _capitals(word: str) -> int:
    return sum(ch.isupper() for ch in word)


def salient_keywords(text: str, limit: int, stopwords: Collection[str]) -> list[str]:
    """Frequent content words of one document, each occurrence weighted by its case (ALL CAPS 2, Capitalised
    1.3) because acronyms and proper names tend to name the subject; shown in upper case when it ever is."""
    counts: dict[str, float] = defaultdict(float)
    display: dict[str, str] = {}
    for match in _WORD.finditer(text):
        word = match.group(0)
        key = word.lower()
        if _minor(word, stopwords):
            continue
        weight = 2.0 if word.isupper() and len(word) > 1 else 1.3 if word[0].isupper() else 1.0
        counts[key] += weight
        if key not in display or word.isupper():
            display[key] = word
    return [display[k] for k, _ in heapq.nlargest(limit, counts.items(), key=itemgetter(1))]  # as most_common


def distinctive_terms(texts_by_doc: Mapping[str, str], limit: int = 8, stopwords: Collection[str] = FUNCTION_WORDS,
                      ) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Per document, the terms frequent in it and rare in the others (log tf x idf, x1.5 when the term is
    written with two or more capitals): what an exact-term (keyword) question would name. Also returns the
    idf of every term (lower case), so ``key_term`` can prefer specific words."""
    counts: dict[str, Counter[str]] = {}
    display: dict[str, str] = {}  # the most capitalised spelling seen anywhere
    df: Counter[str] = Counter()
    for doc_id, text in texts_by_doc.items():
        c: Counter[str] = Counter()
        for m in _TERM.finditer(text):
            word = m.group(0)
            key = word.lower()
            if _minor(word, stopwords) or len(key) > 30:
                continue
            c[key] += 1
            if key not in display or _capitals(word) > _capitals(display[key]):
                display[key] = word
        counts[doc_id] = c
        df.update(c.keys())
    idf = {k: math.log((1 + len(texts_by_doc)) / n) for k, n in df.items()}

    def score(key: str, tf: int) -> float:
        return math.log1p(tf) * idf[key] * (1.5 if _capitals(display[key]) >= 2 else 1.0)

    out = {}
    for doc_id, c in counts.items():
        ranked = sorted(c, key=lambda k: (-score(k, c[k]), k))
        out[doc_id] = [display[k] for k in ranked[:limit]]
    return out, idf


def key_term(passage: str, idf: Mapping[str, float] | None = None,
             stopwords: Collection[str] = FUNCTION_WORDS) -> str | None:
    """The passage's most specific term: acronyms and letter/digit names first, then capitalised words not
    starting a sentence, then long words; each weighted by its idf over the catalog when given (so "China"
    in a COVID corpus loses). Spellings are scored apart: the one to quote back must appear as written."""
    scores: dict[str, float] = {}
    top = max(idf.values(), default=1.0) if idf else 1.0
    for match in _TERM.finditer(passage):
        word = match.group(0)
        if word in _NOT_KEY_TERMS or word.lower() in stopwords or len(word) < 3:
            continue
        score = 0.5 + len(word) / 10
        if _capitals(word) >= 2 or any(ch.isdigit() for ch in word):
            score += 3
        elif word[0].isupper() and match.start() > 1 and passage[match.start() - 2] != ".":
            score += 1
        scores[word] = scores.get(word, 0.0) + score * (idf.get(word.lower(), top) if idf else 1.0)
    return max(scores, key=lambda w: (scores[w], w)) if scores else None


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
