"""What questions are made from: one ``Source`` per chunk, document overview, document terms or external tool.

``plan_sources`` reads the catalog (chunks from Chroma, document leads, tool cards) and takes sources in
rounds, one per document/tool per round in a seeded order, so ``max_questions`` spreads questions over as
many documents and tools as possible. ``source_prompts`` are the LLM prompts of a source and
``pseudo_queries`` its no-LLM questions (Inverse Cloze Task sentences, templates, key phrases).

A raw question is ``{"query", "origin"}`` ("llm" or "ict"), plus for an ICT sentence ``"chunk"`` (the key of
its positive) and ``"positive"`` (the chunk without that sentence).
"""

from __future__ import annotations

import math
import random
import zlib
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentic_router.indexes.sources.describe import distinctive_terms, key_term
from agentic_router.training.prompts import (
    QUESTION_STARTS,
    REQUEST_STARTS,
    SUMMARY_STARTS,
    clean_passage,
    keyword_templates,
    question_prompt,
    request_prompt,
    short_title,
    summary_prompt,
    summary_templates,
    tool_key_phrases,
)
from agentic_router.training.quality import ict_pairs

if TYPE_CHECKING:
    from agentic_router.router.workspace import RouterView

SUMMARY_PER_DOC = 2
KEYWORD_PER_DOC = 2
MIN_PASSAGE_CHARS = 200


@dataclass
class Source:
    key: str
    kind: str  # vector / summary / keyword / external
    tool: str
    n: int
    doc_id: str | None = None
    chunk_id: str | None = None
    text: str = ""  # passage, lead or tool card: what the question is made from
    full: str = ""  # whole cleaned chunk (ICT)
    title: str = ""
    terms: tuple[str, ...] = ()
    term: str | None = None  # key term a chunk question must be about
    chunk_text: str = ""  # the chunk as stored in Chroma (positive of LLM questions)
    spec: Any = None  # ToolSpec of an external tool


def chunk_rows(router: "RouterView", doc_ids: set[str]) -> dict[str, list[tuple[int, str, str, str]]]:
    """``doc_id -> [(chunk index, chunk id, raw text, title)]`` read from the chunks collection in pages."""
    rows: dict[str, list[tuple[int, str, str, str]]] = defaultdict(list)
    for row in router.catalog.iter_chunks():
        meta, text = row["metadata"], row["document"]
        doc_id = str(meta.get("doc_id", ""))
        if doc_id in doc_ids and text:
            rows[doc_id].append((int(meta.get("chunk", 0) or 0), row["id"], text, str(meta.get("title", ""))))
    return rows


def plan_sources(router: "RouterView", tools: list, per_chunk: int, per_tool: int, max_questions: int | None,
          seed: int) -> tuple[list[Source], int]:
    rng = random.Random(seed)
    docs: dict[str, dict[str, Any]] = defaultdict(dict)
    for t in tools:
        if t.kind != "external" and t.doc_id:
            docs[t.doc_id][t.kind] = t
    chunks = chunk_rows(router, set(docs)) if docs else {}
    leads = {d: (title, lead) for d, title, lead in router.catalog.document_leads()} if docs else {}
    texts = {d: " ".join(clean_passage(r[2], r[3], None) for r in sorted(chunks.get(d, []))[:60])
             or " ".join(str(s.title or "") + " " + s.description for s in kinds.values()) for d, kinds in docs.items()}
    terms, idf = distinctive_terms(texts)
    queues: dict[str, list[Source]] = {}
    skipped = 0
    for doc_id in sorted(docs):
        kinds = docs[doc_id]
        any_spec = next(iter(kinds.values()))
        title = leads.get(doc_id, (any_spec.title or doc_id, ""))[0] or any_spec.title or doc_id
        chunk_srcs = []
        if "vector" in kinds and per_chunk > 0:
            for index, cid, text, ctitle in sorted(chunks.get(doc_id, [])):
                passage = clean_passage(text, ctitle or title)
                chunk_srcs.append(Source(f"chunk:{cid}", "vector", kinds["vector"].name, per_chunk, doc_id, cid,
                                         passage, clean_passage(text, ctitle or title, None), title,
                                         chunk_text=text, term=key_term(passage, idf)))
            usable = [c for c in chunk_srcs if len(c.text) >= MIN_PASSAGE_CHARS]
            # menus, reference lists, front matter are skipped; a short document keeps its best chunk
            best = max(chunk_srcs, key=lambda c: len(c.text), default=None)
            skipped += len(chunk_srcs) - len(usable)
            chunk_srcs = usable or ([best] if best is not None and len(best.text.split()) >= 8 else [])
            rng.shuffle(chunk_srcs)
        doc_terms = tuple(terms.get(doc_id, []))
        extra = []
        if "summary" in kinds:
            lead = clean_passage(leads.get(doc_id, ("", ""))[1], title, 400) or kinds["summary"].description
            extra.append(Source(f"summary:{doc_id}", "summary", kinds["summary"].name, SUMMARY_PER_DOC, doc_id,
                                text=lead, title=title, terms=doc_terms))
        if "keyword" in kinds and doc_terms:
            extra.append(Source(f"keyword:{doc_id}", "keyword", kinds["keyword"].name, KEYWORD_PER_DOC, doc_id,
                                title=title, terms=doc_terms))
        queues[f"doc:{doc_id}"] = chunk_srcs[:1] + extra + chunk_srcs[1:]
    if per_tool > 0:
        for t in sorted((t for t in tools if t.kind == "external"), key=lambda t: t.name):
            queues[f"tool:{t.name}"] = [Source(f"tool:{t.name}", "external", t.name, per_tool, text=t.card(), spec=t)]
    owners = sorted(queues)
    rng.shuffle(owners)
    budget = math.inf if max_questions is None else max_questions
    plan: list[Source] = []
    for r in range(max((len(q) for q in queues.values()), default=0)):
        for owner in owners:
            if r < len(queues[owner]) and budget > 0:
                src = queues[owner][r]
                src.n = int(min(src.n, budget))
                budget -= src.n
                plan.append(src)
    return plan, skipped


def _rotation(key: str) -> int:
    return zlib.crc32(key.encode("utf-8"))


def source_prompts(src: Source) -> list[tuple[str, str, int]]:
    """``(prompt, start words, max new tokens)`` per question of an LLM source; [] for templated sources."""
    h = _rotation(src.key)
    if src.kind == "vector":
        starts = [QUESTION_STARTS[(h + i) % len(QUESTION_STARTS)] for i in range(src.n)]
        return [(question_prompt(src.text, src.term, s), s, 32) for s in starts]
    if src.kind == "summary":
        starts = [SUMMARY_STARTS[(h + i) % len(SUMMARY_STARTS)] for i in range(src.n)]
        return [(summary_prompt(src.title, src.text, s), s, 32) for s in starts]
    if src.kind == "external" and src.spec is not None:
        starts = [REQUEST_STARTS[(h + i) % len(REQUEST_STARTS)] for i in range(src.n)]
        return [(request_prompt(src.spec, s), s, 40) for s in starts]
    return []


def pseudo_queries(src: Source, seed: int, n: int | None = None) -> list[dict[str, str]]:
    """No-LLM questions for a source (ICT sentence, templates, key phrases); seeded per source."""
    n = src.n if n is None else n
    rng = random.Random(f"{seed}|{src.key}")
    if src.kind == "vector":
        pairs = ict_pairs(src.full or src.text, rng, n)
        if not pairs:  # a one-sentence chunk: ask about its key term instead
            return [{"query": f'What does "{short_title(src.title)}" say about {src.term or "this"}?', "origin": "ict"}]
        return [{"query": sent, "origin": "ict", "chunk": f"{src.chunk_id}~s{i}", "positive": rest}
                for i, sent, rest in pairs]
    if src.kind == "summary":
        options = summary_templates(src.title, src.terms)
        return [{"query": q, "origin": "ict"} for q in rng.sample(options, min(n, len(options)))]
    if src.kind == "keyword":
        return [{"query": q, "origin": "ict"} for q in keyword_templates(src.terms[:n])]
    return [{"query": q, "origin": "ict"} for q in tool_key_phrases(src.spec, rng, n)] if src.spec is not None else []
