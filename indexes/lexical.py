"""Lexical evidence for routing: BM25 (bm25s) over the chunks and the tool cards.

Embeddings capture meaning; BM25 captures the exact rare words a question shares with the text that
answers it (gene names, drug names, tool identifiers). On the dev benchmarks the two are complementary
(see the README), so the retriever mixes a max-normalised BM25 score into each tool's score.

The indexes are derived data: they are rebuilt from the texts Chroma already holds whenever the catalog's
version counter moves, and cached in the workspace under that version, so a process that only routes
loads them instead of rebuilding.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from agentic_router.indexes.store import atomic_write_dir, iter_collection

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

logger = logging.getLogger(__name__)
_TOKEN = re.compile(r"[a-z0-9]+|[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def default_stopwords() -> frozenset[str]:
    """Words that carry no evidence about *which document or tool* a text is about: NLTK's English list
    (LlamaIndex ships it offline) plus words frequent in any paper or tool card ("study", "results", "data",
    "figure", "doi"). For BM25 and for the keywords written into tool descriptions, where a word every
    document uses only adds noise. ``FUNCTION_WORDS`` is the list for judging questions."""
    from llama_index.core.utils import globals_helper

    extra = {
        "also", "however", "using", "used", "based", "including", "among", "within", "show", "shown", "may",
        "could", "would", "well", "one", "two", "three", "figure", "table", "fig", "et", "al", "study",
        "studies", "results", "result", "data", "analysis", "method", "methods", "use", "new", "high", "low",
        "http", "https", "www", "doi", "org", "license", "cc-by", "non", "per", "different", "found",
        "reported", "associated", "respectively", "significant", "significantly", "compared", "total",
    }
    return frozenset(set(globals_helper.stopwords) | extra)


FUNCTION_WORDS = frozenset(
    "a an the and or but if of at by for with about against between into through during before after above below to "
    "from up down in out on off over under again further then once here there when where why how all any both each "
    "few more most other some such no nor not only own same so than too very can will just should now is are was "
    "were be been being have has had having do does did doing i me my we our you your he him his she her it its they "
    "them their what which who whom this that these those am would could also may might must shall".split()
)
"""Grammar words only: for judging generated questions (chatter has fewer than two other words), a
passage's key term, a document's distinctive terms and a tool's key phrases. Unlike ``default_stopwords`` it
keeps "study", "data", "results", "new": in a question they are content ("Which data were collected?" is a
question, not chatter), and the distinctive terms are tf-idf ranked, so idf already sinks words every
document uses. Merging the two lists changed the chatter verdict on 13 of 4,615 COVID-QA sentences and the
key term of 20 of 1,588 passages, so generated data would change: two lists, each for its own job."""


def import_bm25s():  # noqa: ANN202 - the module
    """Import bm25s without changing logging for the rest of the process.

    bm25s sets its "bm25s" logger to DEBUG on first import, so its debug lines reach any handler the
    application installed (``basicConfig(level=INFO)`` prints them). Undo exactly that: the logger gets back
    the level it had before the import (normally NOTSET, i.e. it follows the application's settings). An
    import done by someone else earlier is left as that code chose."""
    if "bm25s" in sys.modules:
        return sys.modules["bm25s"]
    bm25s_logger = logging.getLogger("bm25s")
    before = bm25s_logger.level
    import bm25s

    bm25s_logger.setLevel(before)
    return bm25s


def tokenize(text: str, stopwords: frozenset[str] = frozenset()) -> list[str]:
    """Lower-cased words (camelCase split), single CJK characters; stopwords dropped."""
    return [t for t in _TOKEN.findall(_CAMEL.sub(" ", text).lower()) if t not in stopwords]


@dataclass(frozen=True)
class LexicalMatch:
    """BM25 scores of one question: raw score per key (best among a key's entries), the best score, and
    the question's ceiling: what a text holding each of its words once would score (the sum of their idf).
    ``score / best`` says how a key compares with the others; ``score / ceiling`` how much of the question
    it matches, so a weak best match stays weak."""

    scores: dict[str, float]
    best: float
    ceiling: float
    ceiling_all: float = 0.0  # the same, counting words no text of the index holds at the rarest idf

    def normalised(self, by: str) -> dict[str, float]:
        """``by="best"`` (relative to the best key), ``"ceiling"`` (share of the question's known words
        matched, at most 1) or ``"ceiling_all"`` (share of all its words)."""
        scale = {"best": self.best, "ceiling": self.ceiling, "ceiling_all": self.ceiling_all}[by]
        if scale <= 0:
            return {}
        return {key: min(1.0, value / scale) for key, value in self.scores.items()}


NO_MATCH = LexicalMatch({}, 0.0, 0.0)


class LexicalIndex:
    """BM25 over one Chroma collection's texts, searched with ``match``."""

    def __init__(self, keys: list[str], texts: list[str], stopwords: frozenset[str]) -> None:
        bm25s = import_bm25s()
        self.keys = keys
        self.stopwords = stopwords
        self.model = bm25s.BM25()
        if texts:
            self.model.index([tokenize(t, stopwords) or ["_"] for t in texts], show_progress=False)

    def search(self, query: str, k: int) -> dict[str, float]:
        """Best score per key among the top ``k`` entries, divided by the best one."""
        return self.match(query, k).normalised("best")

    def match(self, query: str, k: int) -> LexicalMatch:
        """Raw BM25 per key among the top ``k`` entries (keys repeat for chunks of one document)."""
        tokens = tokenize(query, self.stopwords)
        if not tokens or not self.keys:
            return NO_MATCH
        ids, scores = self.model.retrieve([tokens], k=min(k, len(self.keys)), show_progress=False)
        best = float(scores[0][0]) if len(scores[0]) else 0.0
        if best <= 0:
            return NO_MATCH
        out: dict[str, float] = {}
        for i, value in zip(ids[0].tolist(), scores[0].tolist()):
            key = self.keys[i]
            if value > 0 and key not in out:
                out[key] = float(value)
        return LexicalMatch(out, best, self.ceiling(tokens), self.ceiling(tokens, unknown=True))

    def ceiling(self, tokens: list[str], unknown: bool = False) -> float:
        """What a text of average length holding each known word of the question once would score: the sum
        of their idf over (1 + k1), as bm25s' default (Lucene) formula gives (repeats count, as in BM25)."""
        vocab = self.model.vocab_dict
        indptr = self.model.scores["indptr"]
        n = float(self.model.scores["num_docs"])
        total = 0.0
        for token in tokens:
            tid = vocab.get(token)
            if tid is not None or unknown:
                df = float(indptr[tid + 1] - indptr[tid]) if tid is not None else 0.0
                total += math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        return total / (1.0 + float(self.model.k1))

    # ---- persistence -------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        def fill(tmp: Path) -> None:
            if self.keys:
                self.model.save(str(tmp))
            (tmp / "keys.json").write_text(json.dumps(self.keys), encoding="utf-8")

        atomic_write_dir(folder, fill)

    @classmethod
    def load(cls, folder: Path, stopwords: frozenset[str]) -> "LexicalIndex":
        bm25s = import_bm25s()
        index = cls.__new__(cls)
        index.keys = json.loads((folder / "keys.json").read_text(encoding="utf-8"))
        index.stopwords = stopwords
        index.model = bm25s.BM25.load(str(folder)) if index.keys else bm25s.BM25()
        return index


def read_collection(coll: "Collection", text_of: Callable[[str, dict], str], key_of: Callable[[str, dict], str],
                    ) -> tuple[list[str], list[str]]:
    """All (key, text) pairs of a collection."""
    keys: list[str] = []
    texts: list[str] = []
    for row in iter_collection(coll):
        keys.append(key_of(row["id"], row["metadata"]))
        texts.append(text_of(row["document"] or "", row["metadata"]))
    return keys, texts


class LexicalCache:
    """Keeps the BM25 indexes of one workspace in step with the catalog version."""

    def __init__(self, folder: Path, stopwords: frozenset[str]) -> None:
        self.folder = folder
        self.stopwords = stopwords
        self._loaded: dict[str, tuple[int, LexicalIndex]] = {}
        # Threads of a service route at once: after a catalog change only one of them may rebuild (two
        # rebuilds would also race on the cache folder), the others wait for its index.
        self._lock = threading.Lock()

    def get(self, coll: "Collection", version: int, kind: str) -> LexicalIndex:
        cached = self._loaded.get(coll.name)
        if cached and cached[0] == version:
            return cached[1]
        with self._lock:
            return self._get(coll, version, kind)

    def _get(self, coll: "Collection", version: int, kind: str) -> LexicalIndex:
        name = f"{coll.name}"
        cached = self._loaded.get(name)
        if cached and cached[0] == version:
            return cached[1]
        path = self.folder / f"{name}-v{version}"
        index = None
        if (path / "keys.json").is_file():
            try:
                index = LexicalIndex.load(path, self.stopwords)
            except (OSError, ValueError, json.JSONDecodeError) as exc:
                logger.warning("lexical index %s unreadable (%s); rebuilding", path, exc)
        if index is None:
            if kind == "chunks":
                keys, texts = read_collection(coll, lambda d, m: f"{m.get('title', '')} {d}", lambda i, m: str(m.get("doc_id", "")))
            else:
                keys, texts = read_collection(coll, lambda d, m: d, lambda i, m: i)
            index = LexicalIndex(keys, texts, self.stopwords)
            for old in self.folder.glob(f"{name}-v*"):
                shutil.rmtree(old, ignore_errors=True)
            index.save(path)
        self._loaded[name] = (version, index)
        return index


