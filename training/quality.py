"""Quality controls for generated questions, and the Inverse Cloze Task (ICT) pseudo-queries.

Each filter is a plain function so it can be tested alone; ``Funnel`` counts what survives each stage.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Iterable, Sequence, TypeVar

import numpy as np

from agentic_router.indexes.encoders.embeddings import embed_queries
from agentic_router.indexes.lexical.cache import FUNCTION_WORDS
from agentic_router.indexes.sources.describe import split_sentences

if TYPE_CHECKING:
    from agentic_router.router.workspace import RouterView

_WORD = re.compile(r"[a-z0-9]+(?:['\-][a-z0-9]+)*")
_CHATTER = re.compile(
    r"^(hi|hello|hey|sure|certainly|of course|okay|ok|great|thanks|thank you|here is|here are|here's|as an ai|"
    r"i'm sorry|i am sorry|sorry|i cannot|i can't|i'm not|i am not|what a|absolutely|yes|no,)\b|"
    r"\b(as an ai|language model|i'm sorry|i am sorry|great question|the passage|this passage|the key term|"
    r"which of the following|the following question|answer to the question)\b",
    re.I,
)
_PREFIX = re.compile(r"^\s*(?:(?:question|request|q)\s*\d*\s*[:.)-]|\d+\s*[.)]|[-*•])\s*", re.I)
_ASKING = re.compile(r"^(what|which|who|whom|whose|when|where|why|how|is|are|was|were|does|do|did|can|could|"
                     r"should|would|will|has|have|had)\b", re.I)
_DANGLING = frozenset("a an the and or but between than".split())
MIN_WORDS, MAX_WORDS = 4, 40
COPY_SPAN = 8
NEAR_DUP = 0.9


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def normalize(text: str) -> str:
    return " ".join(words(text))


def clean_generation(text: str, *, question: bool = True) -> str:
    """Strip list markers / "Question:" labels and quotes; end questions with "?" (the stop string is cut off)."""
    text = " ".join(text.split())
    text = _PREFIX.sub("", text).strip().strip('"“”').strip()
    first = re.match(r"^(.{9,}?[a-z0-9]{3}[.!?])\s+[A-Z]", text)  # "I need X. Please do X." -> "I need X."
    text = first.group(1) if first else text
    if question and text and not text.endswith("?") and _ASKING.match(text):
        text = text.rstrip(".:;,") + "?"
    return text


def is_chatter(text: str) -> bool:
    """Greetings, apologies, assistant talk, exam phrasing, or no question content at all."""
    content = [w for w in words(text) if w not in FUNCTION_WORDS]
    return bool(_CHATTER.search(text)) or len(content) < 2


def length_ok(text: str, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS) -> bool:
    return min_words <= len(text.split()) <= max_words


def copies_span(text: str, source: str, span: int = COPY_SPAN) -> bool:
    """True when ``text`` repeats a run of ``span`` consecutive words of ``source``."""
    t, s = words(text), words(source)
    if len(t) < span or len(s) < span:
        return False
    grams = {tuple(s[i : i + span]) for i in range(len(s) - span + 1)}
    return any(tuple(t[i : i + span]) in grams for i in range(len(t) - span + 1))


def degenerate(text: str) -> bool:
    """Loops ("the most recent record of the most recent record of ...") and text cut off by the token budget
    (ending in a comma, an open bracket or a function word)."""
    tail = words(text)[-1:] or [""]
    if re.search(r"[,;:(\-]\??$", text) or tail[0] in _DANGLING:
        return True
    if re.search(r"(\S{2,4}?)\1{3,}|(\S)\2{7,}", text) or any(len(tok) > 40 for tok in text.split()):
        return True  # "c-d-d-d-d-d-d", run-on tokens
    w = words(text)
    if len(w) < 8:
        return False
    trigrams = Counter(zip(w, w[1:], w[2:]))
    return trigrams.most_common(1)[0][1] >= 3


class NearDuplicates:
    """Exact (normalised) and near duplicates: token-set Jaccard >= ``threshold``, found with a prefix filter
    (two sets that similar must share one of their first few tokens in a fixed order), so no all-pairs pass."""

    def __init__(self, threshold: float = NEAR_DUP) -> None:
        self.threshold = threshold
        self.exact: set[str] = set()
        self.sets: list[frozenset[str]] = []
        self.index: dict[str, list[int]] = defaultdict(list)

    def add(self, text: str) -> bool:
        """Remember ``text``; False when it duplicates one seen before."""
        norm = normalize(text)
        if not norm or norm in self.exact:
            return False
        tokens = frozenset(norm.split())
        order = sorted(tokens)
        prefix = order[: len(order) - math.ceil(self.threshold * len(order)) + 1]
        candidates = {i for tok in prefix for i in self.index.get(tok, ())}
        for i in candidates:
            other = self.sets[i]
            if len(tokens & other) / len(tokens | other) >= self.threshold:
                return False
        self.exact.add(norm)
        self.sets.append(tokens)
        for tok in prefix:
            self.index[tok].append(len(self.sets) - 1)
        return True


class Funnel:
    """How many candidates reached each stage, per origin ("llm"/"ict") and per origin and kind."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)

    def count(self, origin: str, stage: str, kind: str | None = None) -> None:
        """Count under the origin and, when given, under "<origin>:<kind>" too."""
        self.counts[origin][stage] += 1
        if kind:
            self.counts[f"{origin}:{kind}"][stage] += 1

    def to_dict(self) -> dict[str, dict[str, object]]:
        out: dict[str, dict[str, object]] = {}
        for origin, c in self.counts.items():
            first = c.get("generated", 0) or 1
            out[origin] = {**dict(c), "kept_share": round(c.get("kept", 0) / first, 3)}
        return out


# ---- round trip ---------------------------------------------------------------------------------------
def round_trip(router: "RouterView", queries: Sequence[str], targets: Sequence[tuple[str, str | None]],
               k: int, progress: bool = False) -> list[bool]:
    """Does the current router put each query's source in its top ``k``? A target is ``(tool, doc_id)``:
    document tools are checked at document level (the doc among the first ``k`` distinct documents, since the
    kind within a document is what training must teach), external tools by name."""
    from tqdm.auto import tqdm

    out: list[bool] = []
    bar = tqdm(total=len(queries), desc="round trip", unit="q", disable=not progress or not queries)
    for start in range(0, len(queries), 256):
        part = list(queries[start : start + 256])
        for query, vec, (tool, doc_id) in zip(part, embed_queries(router.embedder, part), targets[start:]):
            hits = router.retriever.rank_by_evidence(query, np.asarray(vec, dtype=np.float32), 3 * k if doc_id else k)
            if doc_id:
                out.append(doc_id in list(dict.fromkeys(h.doc_id or h.name for h in hits))[:k])
            else:
                out.append(tool in [h.name for h in hits[:k]])
        bar.update(len(part))
    bar.close()
    return out


# ---- Inverse Cloze Task ---------------------------------------------------------------------------------
def ict_pairs(text: str, rng: random.Random, n: int, min_words: int = 6,
              max_words: int = 40) -> list[tuple[int, str, str]]:
    """``(sentence index, sentence, text without it)`` for ``n`` sentences of usable length (seeded)."""
    sents = split_sentences(text)
    usable = [i for i, s in enumerate(sents) if min_words <= len(s.split()) <= max_words and not is_chatter(s)]
    if len(sents) < 2 or not usable:
        return []
    picked = rng.sample(usable, min(n, len(usable)))
    return [(i, sents[i], " ".join(sents[:i] + sents[i + 1 :])) for i in sorted(picked)]


_T = TypeVar("_T")


def sample_kept(queries: Iterable[_T], rng: random.Random, n: int = 10) -> list[_T]:
    items = list(queries)
    return rng.sample(items, min(n, len(items)))
