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
import re
import shutil
import sys
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


class LexicalIndex:
    """BM25 over one Chroma collection's texts; ``search`` returns ``{key: score / best score}``."""

    def __init__(self, keys: list[str], texts: list[str], stopwords: frozenset[str]) -> None:
        bm25s = import_bm25s()
        self.keys = keys
        self.stopwords = stopwords
        self.model = bm25s.BM25()
        if texts:
            self.model.index([tokenize(t, stopwords) or ["_"] for t in texts], show_progress=False)

    def search(self, query: str, k: int) -> dict[str, float]:
        """Best normalised score per key among the top ``k`` entries (keys repeat for chunks of one document)."""
        tokens = tokenize(query, self.stopwords)
        if not tokens or not self.keys:
            return {}
        ids, scores = self.model.retrieve([tokens], k=min(k, len(self.keys)), show_progress=False)
        top = float(scores[0][0]) if len(scores[0]) else 0.0
        if top <= 0:
            return {}
        out: dict[str, float] = {}
        for i, s in zip(ids[0].tolist(), scores[0].tolist()):
            key = self.keys[i]
            if s > 0 and key not in out:
                out[key] = float(s) / top
        return out

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

    def get(self, coll: "Collection", version: int, kind: str) -> LexicalIndex:
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


