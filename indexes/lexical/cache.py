"""Lexical evidence for routing: BM25 over the chunks and the tool cards.

Embeddings capture meaning; BM25 captures the exact rare words a question shares with the text that
answers it (gene names, drug names, tool identifiers). On the dev benchmarks the two are complementary
(see the README), so the retriever mixes a max-normalised BM25 score into each tool's score.

The indexes are derived data, made from the texts Chroma already holds. They follow the catalog's
version counter incrementally: the catalog logs which tools and documents each version changed, and
``LexicalCache`` re-reads only those (adding one tool to a 100k-tool catalog touches one card, not
100k). The scores are bm25s' default BM25, computed at question time from kept term counts
(``indexes.lexical.bm25`` says why bm25s itself cannot be updated in place), so they equal a full rebuild's.
Snapshots are cached in the workspace, so a process that only routes loads them instead of rebuilding.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from agentic_router.indexes.atomic import atomic_write_dir
from agentic_router.indexes.lexical.bm25 import K1, B, BM25Index, paused_gc
from agentic_router.indexes.storage.chroma import iter_collection

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

    from agentic_router.indexes.storage.catalog import Catalog

logger = logging.getLogger(__name__)
_TOKEN = re.compile(r"[a-z0-9]+|[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
SNAPSHOT_FORMAT = "agentic-router-bm25/2"
READ_BATCH = 500  # keys per Chroma read when replaying the change log
# A step changing more keys than this share of the index, and more than FULL_REBUILD_MIN, is rebuilt from the
# whole collection instead: reading every row is then about as cheap as reading the changed ones.
FULL_REBUILD_SHARE = 0.25
FULL_REBUILD_MIN = 256
SAVE_SHARE = 0.01  # re-save a snapshot once the keys changed since the last one reach this share
ChangeLog = Callable[[int], "list[tuple[int, str, str | None]] | None"]


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
    """BM25 over one Chroma collection's texts (``indexes.lexical.bm25``), searched with ``match`` and changed in
    place with ``apply``. A lock makes each call see the index before or after a change, never during."""

    def __init__(self, keys: list[str], texts: list[str], stopwords: frozenset[str]) -> None:
        self.stopwords = stopwords
        with paused_gc():
            self.bm25 = BM25Index.build(keys, [tokenize(t, stopwords) for t in texts])
        self._lock = threading.Lock()

    @property
    def keys(self) -> list[str]:
        """The key of every live entry (a document's key once per chunk)."""
        with self._lock:
            return self.bm25.live_keys()

    @property
    def size(self) -> int:
        return self.bm25.size

    def search(self, query: str, k: int) -> dict[str, float]:
        """Best score per key among the top ``k`` entries, divided by the best one."""
        return self.match(query, k).normalised("best")

    def match(self, query: str, k: int) -> LexicalMatch:
        """Raw BM25 per key among the top ``k`` entries (keys repeat for chunks of one document)."""
        tokens = tokenize(query, self.stopwords)
        if not tokens:
            return NO_MATCH
        with self._lock:
            top = self.bm25.top(tokens, min(k, self.bm25.size))
            if not top or top[0][1] <= 0:
                return NO_MATCH
            out: dict[str, float] = {}
            for key, value in top:
                out.setdefault(key, value)
            return LexicalMatch(out, top[0][1], self._ceiling(tokens), self._ceiling(tokens, unknown=True))

    def ceiling(self, tokens: list[str], unknown: bool = False) -> float:
        """What a text of average length holding each known word of the question once would score: the sum
        of their idf over (1 + k1), as bm25s' default (Lucene) formula gives (repeats count, as in BM25)."""
        with self._lock:
            return self._ceiling(tokens, unknown)

    def _ceiling(self, tokens: list[str], unknown: bool = False) -> float:
        total = 0.0
        for token in tokens:
            df = self.bm25.doc_freq(token)
            if df or unknown:
                total += self.bm25.idf(df)
        return total / (1.0 + K1)

    def apply(self, texts_by_key: dict[str, list[str]]) -> None:
        """Make each key hold exactly these texts (an empty list: the key is gone)."""
        tokenized = {key: [tokenize(t, self.stopwords) for t in texts] for key, texts in sorted(texts_by_key.items())}
        with self._lock:
            for key, token_lists in tokenized.items():
                self.bm25.remove(key)
                for tokens in token_lists:
                    self.bm25.add(key, tokens)

    # ---- persistence -------------------------------------------------------------------------------
    def save(self, folder: Path, version: int) -> None:
        """A compacted snapshot: one ``.npy`` per array (no zip, no checksum pass: at 1M entries they are a few
        hundred MB), keys and words as JSON, the catalog version."""
        with self._lock:
            arrays, keys, words = self.bm25.to_arrays()

        def fill(tmp: Path) -> None:
            for name, array in arrays.items():
                np.save(tmp / f"{name}.npy", array)
            (tmp / "keys.json").write_text(json.dumps(keys), encoding="utf-8")
            (tmp / "words.json").write_text(json.dumps(words), encoding="utf-8")
            meta = {"format": SNAPSHOT_FORMAT, "version": version, "k1": K1, "b": B}
            (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")

        atomic_write_dir(folder, fill)

    @classmethod
    def load(cls, folder: Path, stopwords: frozenset[str]) -> tuple["LexicalIndex", int]:
        """A snapshot and the catalog version it holds; ValueError for another format (the bm25s folders
        of earlier releases, other parameters)."""
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != SNAPSHOT_FORMAT or (meta.get("k1"), meta.get("b")) != (K1, B):
            raise ValueError(f"not a {SNAPSHOT_FORMAT} snapshot with k1={K1}, b={B}")
        arrays = {name: np.load(folder / f"{name}.npy") for name in BM25Index.ARRAYS}
        with paused_gc():
            keys = json.loads((folder / "keys.json").read_text(encoding="utf-8"))
            words = json.loads((folder / "words.json").read_text(encoding="utf-8"))
        index = cls.__new__(cls)
        index.stopwords = stopwords
        index.bm25 = BM25Index.from_arrays(arrays, keys, words)
        index._lock = threading.Lock()
        return index, int(meta["version"])


# What BM25 sees of a row, per collection kind: a card's text under the tool name; a chunk's title and text
# under its document's id (so a document scores by its best chunk).
_TEXT_OF: dict[str, Callable[[str, dict], str]] = {"cards": lambda d, m: d, "chunks": lambda d, m: f"{m.get('title', '')} {d}"}
_KEY_OF: dict[str, Callable[[str, dict], str]] = {"cards": lambda i, m: i, "chunks": lambda i, m: str(m.get("doc_id", ""))}


def read_collection(coll: "Collection", text_of: Callable[[str, dict], str], key_of: Callable[[str, dict], str],
                    ) -> tuple[list[str], list[str]]:
    """All (key, text) pairs of a collection."""
    keys: list[str] = []
    texts: list[str] = []
    for row in iter_collection(coll):
        keys.append(key_of(row["id"], row["metadata"]))
        texts.append(text_of(row["document"] or "", row["metadata"]))
    return keys, texts


def build_index(coll: "Collection", kind: str, stopwords: frozenset[str]) -> LexicalIndex:
    """A full build over every row of ``coll`` (``kind``: "cards" or "chunks")."""
    keys, texts = read_collection(coll, _TEXT_OF[kind], _KEY_OF[kind])
    return LexicalIndex(keys, texts, stopwords)


def read_texts(coll: "Collection", kind: str, keys: list[str]) -> dict[str, list[str]]:
    """The current texts of these keys (tool names by id; doc_ids by their chunks' metadata); a key with
    no row gets an empty list, i.e. it was removed."""
    out: dict[str, list[str]] = {key: [] for key in keys}
    for start in range(0, len(keys), READ_BATCH):
        part = keys[start:start + READ_BATCH]
        if kind == "chunks":
            got = coll.get(where={"doc_id": {"$in": part}}, include=["documents", "metadatas"])
        else:
            got = coll.get(ids=part, include=["documents", "metadatas"])
        for row_id, doc, meta in zip(got["ids"], got["documents"], got["metadatas"]):
            meta = meta or {}
            out.setdefault(_KEY_OF[kind](row_id, meta), []).append(_TEXT_OF[kind](doc or "", meta))
    return out


@dataclass
class _Entry:
    version: int  # the catalog version the index reflects
    index: LexicalIndex
    pending: int = 0  # keys changed since the snapshot on disk


class LexicalCache:
    """Keeps the BM25 indexes of one workspace in step with the catalog version.

    ``get`` answers from memory while the version stands still. When it has moved and the catalog's change
    log (``changes``: ``CatalogDB.changes_since``) covers the step, only the logged keys are read back from
    Chroma and replaced in the index; without a log, across a gap in it, or when a change touches more than
    a quarter of the index, the index is built again from the whole collection. The log is read from one
    step *before* the index's version: a document replaced, or a server's tool dropped, loses its old
    vectors just after the commit that logs it, so the index re-reads the keys of its last step once more
    (unless that step was a bulk one, over ``FULL_REBUILD_MIN`` keys: an import of many tools deletes nothing).

    On disk, ``<collection>-v<version>`` is a compacted snapshot, rewritten after a full build and once the
    keys changed since it reach 1% of the index (every change for a small one), not after every addition;
    a process that starts later loads the newest snapshot and replays the log from its version."""

    def __init__(self, folder: Path, stopwords: frozenset[str], save_share: float = SAVE_SHARE) -> None:
        self.folder = folder
        self.stopwords = stopwords
        self.save_share = save_share
        self._loaded: dict[str, _Entry] = {}
        # Threads of a service route at once: after a catalog change only one of them may update or rebuild
        # (two would also race on the cache folder), the others wait for its index.
        self._lock = threading.Lock()
        self.full_builds = 0  # indexes built from a whole collection (tests and benchmarks watch these)
        self.updates = 0  # indexes brought up to date from the change log

    def of_catalog(self, catalog: "Catalog", version: int, kind: str) -> LexicalIndex:
        """The index of the catalog's cards or chunks (``kind``) at ``version``, following its change log."""
        return self.get(catalog.cards if kind == "cards" else catalog.chunks, version, kind, catalog.db.changes_since)

    def get(self, coll: "Collection", version: int, kind: str, changes: ChangeLog | None = None) -> LexicalIndex:
        """The index of ``coll`` (``kind``: "cards" or "chunks") at catalog ``version`` or newer."""
        entry = self._loaded.get(coll.name)
        if entry is not None and entry.version == version:
            return entry.index
        with self._lock:
            return self._get(coll, version, kind, changes)

    def _get(self, coll: "Collection", version: int, kind: str, changes: ChangeLog | None) -> LexicalIndex:
        name = coll.name
        entry = self._loaded.get(name) or self._load_saved(name, version)
        if entry is not None and entry.version >= version:
            pass  # current, or newer than the version this caller read (another thread moved on meanwhile)
        elif entry is not None and changes is not None and self._catch_up(coll, kind, entry, version, changes):
            self.updates += 1
            if entry.pending >= max(1.0, self.save_share * entry.index.size):
                self._save(name, entry)
        else:
            entry = _Entry(version, build_index(coll, kind, self.stopwords))
            self.full_builds += 1
            self._save(name, entry)
        self._loaded[name] = entry
        return entry.index

    def _catch_up(self, coll: "Collection", kind: str, entry: _Entry, version: int, changes: ChangeLog) -> bool:
        """Replay the logged changes of ``kind`` up to ``version`` into ``entry``; False when it cannot."""
        log = changes(entry.version - 1)
        if log is None:
            log = changes(entry.version)
        if log is None:
            return False
        fresh: set[str] = set()
        again: set[str] = set()  # the keys of the index's own last step, read once more (see the class)
        for step, what, key in log:
            if step > version:
                break
            if what != kind or step < entry.version:
                continue
            if key is None and step > entry.version:
                return False  # "anything of this kind may have changed"
            if key is not None:
                (fresh if step > entry.version else again).add(key)
        if len(again) > FULL_REBUILD_MIN:
            again = set()  # a bulk step (an import of many tools): re-reading it would cost a rebuild
        keys = fresh | again
        if len(keys) > max(FULL_REBUILD_MIN, FULL_REBUILD_SHARE * entry.index.size):
            return False
        if keys:
            entry.index.apply(read_texts(coll, kind, sorted(keys)))
        entry.version = version
        entry.pending += len(fresh)
        return True

    def _snapshots(self, name: str) -> list[tuple[int, Path]]:
        pattern = re.compile(re.escape(name) + r"-v(\d+)")
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := pattern.fullmatch(p.name))]
        return sorted(found, reverse=True)

    def _load_saved(self, name: str, version: int) -> _Entry | None:
        """The newest readable snapshot not past ``version`` (one past it was made by another process after
        this caller read the version, or belongs to a catalog since recreated: no log can check it)."""
        for saved, path in self._snapshots(name):
            if saved > version:
                continue
            try:
                index, version = LexicalIndex.load(path, self.stopwords)
                return _Entry(version, index)
            except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
                logger.info("lexical index %s not usable (%s)", path, exc)
        return None

    def _save(self, name: str, entry: _Entry) -> None:
        path = self.folder / f"{name}-v{entry.version}"
        try:
            entry.index.save(path, entry.version)
        except OSError as exc:  # a cache: routing goes on from memory, a later process rebuilds or replays
            logger.warning("lexical index %s not saved (%s)", path, exc)
            return
        entry.pending = 0
        for _, old in self._snapshots(name):
            if old != path:
                shutil.rmtree(old, ignore_errors=True)
