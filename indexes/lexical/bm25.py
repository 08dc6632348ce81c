"""BM25 that follows additions and removals in place and scores exactly as bm25s does.

Why not bm25s itself: it stores every (document, word) score precomputed with the corpus-wide idf and
average length, so one new document changes every stored score, and it has no way to add or remove one
(its maintainer says so in xhluca/bm25s#5; #19, #98 and #129 ask for it). Why not tantivy (the one
maintained engine on PyPI with in-place updates and BM25): it stores document lengths quantised to one
byte and keeps counting deleted documents in N and in document frequencies until a segment merge, so its
scores differ from the ones the routing weights were calibrated on. retriv re-indexes everything and has
not been released since 2023. So this module keeps what the scores are made of and scores at query time.

What it keeps: per document (a *slot*) its key, length and words with their counts (a forward index, so
a removal knows which document frequencies to lower); per word its postings (slot, count), in a main
segment (CSR arrays) plus a small delta segment of recent additions (Python lists), merged into the main
one when it grows; the document frequency of each word over live documents; N and the total length.
A removal is a tombstone (the slot is marked dead, N, df and the total length drop at once); dead slots
are dropped and the rest renumbered when they pile up, at a merge.

Scores: bm25s's default, ``BM25(k1=1.5, b=0.75, method="lucene")``, reproduced operation by operation
(bm25s 0.3): idf = ln(1 + (N - df + 0.5) / (df + 0.5)) rounded to float32; a word's score in a document
is idf * tf / (k1 * (1 - b + b * len / avglen) + tf) in float64, stored as float32; a question's score is
the float32 sum over its known words in question order (a repeated word counts twice; unknown words are
skipped). So a document scores bit for bit what a fresh bm25s index of the same texts gives it. Only
the postings of the question's words are read: a question costs its words' postings, whatever the size
of the catalog. Ties are broken by slot (older entries first), where bm25s leaves them unspecified.
"""

from __future__ import annotations

import gc
import math
from collections import Counter
from contextlib import contextmanager
from typing import Iterator, Sequence

import numpy as np

K1 = 1.5  # bm25s.BM25() defaults: the scores the routing weights were calibrated on
B = 0.75
EMPTY_TOKEN = "_"  # what an empty text is indexed as, as before (bm25s cannot index an empty document)
MERGE_MIN = 20_000  # delta postings before a merge into the main segment...
MERGE_SHARE = 0.05  # ...or this share of the main segment's postings, whichever is larger


class BM25Index:
    """Keys with token lists in, top-k (key, score) out; ``add``/``remove`` change it in place.

    Not thread-safe by itself: the owner serialises calls (``indexes.lexical.cache.LexicalIndex`` holds a lock)."""

    ARRAYS = ("lengths", "fwd_ptr", "fwd_term", "fwd_tf", "post_ptr", "post_slot", "post_tf")  # ``to_arrays``

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.terms: list[str] = []
        self.df = np.zeros(16, np.int64)  # live documents holding each word (capacity grows)
        self.keys: list[str] = []  # per slot
        self.lengths = np.zeros(16, np.int64)  # per slot
        self.alive = np.zeros(16, bool)  # per slot
        # A key's live slots (chunks of one document share a key) as a chain: its newest slot, then per slot the
        # previous one of the same key (-1 ends it). Plain ints, no list per key: 100k small lists kept the
        # cyclic garbage collector busy for seconds during a build.
        self.newest: dict[str, int] = {}
        self.chain = np.zeros(16, np.int64)
        self.n_docs = 0
        self.total_len = 0
        self.dead = 0
        # main segment, slots [0, n_main): forward (by slot) and postings (by word), CSR
        self.n_main = 0
        self.fwd_ptr = np.zeros(1, np.int64)
        self.fwd_term = np.zeros(0, np.int32)
        self.fwd_tf = np.zeros(0, np.float32)
        self.post_ptr = np.zeros(1, np.int64)
        self.post_slot = np.zeros(0, np.int32)
        self.post_tf = np.zeros(0, np.float32)
        # delta segment, slots >= n_main
        self.delta_docs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.delta_post: dict[int, tuple[list[int], list[int]]] = {}
        self.delta_size = 0
        self._norm: np.ndarray | None = None  # length normalisation per slot, dropped by every change
        self._acc = np.zeros(16, np.float32)

    # ---- building ------------------------------------------------------------------------------------
    @classmethod
    def build(cls, keys: Sequence[str], token_lists: Sequence[Sequence[str]]) -> "BM25Index":
        """One index over all entries at once (the main segment only)."""
        with paused_gc():
            return cls._build(keys, token_lists)

    @classmethod
    def _build(cls, keys: Sequence[str], token_lists: Sequence[Sequence[str]]) -> "BM25Index":
        index = cls()
        terms, tfs, ptr = [], [], [0]
        lengths = np.zeros(len(keys), np.int64)
        for slot, tokens in enumerate(token_lists):
            tokens = tokens or [EMPTY_TOKEN]
            lengths[slot] = len(tokens)
            for word, count in Counter(tokens).items():
                tid = index.vocab.get(word)
                if tid is None:
                    tid = index.vocab[word] = len(index.terms)
                    index.terms.append(word)
                terms.append(tid)
                tfs.append(count)
            ptr.append(len(terms))
        index._set_main(list(keys), lengths, np.asarray(ptr, np.int64), np.asarray(terms, np.int32),
                        np.asarray(tfs, np.float32))
        return index

    def _set_main(self, keys: list[str], lengths: np.ndarray, fwd_ptr: np.ndarray, fwd_term: np.ndarray,
                  fwd_tf: np.ndarray, post: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
        """Make these live entries the whole index (no delta, no dead slot); derive postings and df."""
        n, n_terms = len(keys), len(self.terms)
        self.keys, self.n_main, self.n_docs, self.dead = keys, n, n, 0
        self.lengths = lengths.astype(np.int64)
        self.alive = np.ones(n, bool)
        self.total_len = int(self.lengths.sum())
        self.fwd_ptr, self.fwd_term, self.fwd_tf = fwd_ptr, fwd_term, fwd_tf
        if post is None:
            slot_of = np.repeat(np.arange(n, dtype=np.int32), np.diff(fwd_ptr))
            order = np.argsort(fwd_term, kind="stable")  # stable: slots stay ascending within a word
            counts = np.bincount(fwd_term, minlength=n_terms)
            post = (np.concatenate(([0], np.cumsum(counts))).astype(np.int64), slot_of[order], fwd_tf[order])
        self.post_ptr, self.post_slot, self.post_tf = post
        self.df = np.diff(self.post_ptr).astype(np.int64)
        self.newest, self.chain = {}, np.full(n, -1, np.int64)
        newest, chain = self.newest, self.chain
        for slot, key in enumerate(keys):
            previous = newest.get(key)
            if previous is not None:
                chain[slot] = previous
            newest[key] = slot
        self.delta_docs, self.delta_post, self.delta_size = {}, {}, 0
        self._norm = None

    # ---- changing ------------------------------------------------------------------------------------
    def add(self, key: str, tokens: Sequence[str]) -> None:
        """One more entry under ``key`` (a key may hold several, like a document's chunks)."""
        tokens = list(tokens) or [EMPTY_TOKEN]
        slot = len(self.keys)
        self.keys.append(key)
        self.lengths = _fit(self.lengths, slot + 1)
        self.alive = _fit(self.alive, slot + 1)
        self.chain = _fit(self.chain, slot + 1)
        self.chain[slot] = self.newest.get(key, -1)
        self.newest[key] = slot
        self.lengths[slot], self.alive[slot] = len(tokens), True
        counts = Counter(tokens)
        tids = np.empty(len(counts), np.int32)
        for i, (word, count) in enumerate(counts.items()):
            tid = self.vocab.get(word)
            if tid is None:
                tid = self.vocab[word] = len(self.terms)
                self.terms.append(word)
                self.df = _fit(self.df, tid + 1)
            tids[i] = tid
            slots, tfs = self.delta_post.setdefault(tid, ([], []))
            slots.append(slot)
            tfs.append(count)
        self.df[tids] += 1
        self.delta_docs[slot] = (tids, np.fromiter(counts.values(), np.float32, len(counts)))
        self.delta_size += len(counts)
        self.n_docs += 1
        self.total_len += len(tokens)
        self._norm = None
        if self.delta_size > max(MERGE_MIN, MERGE_SHARE * len(self.post_slot)):
            self.compact()

    def remove(self, key: str) -> int:
        """Drop every entry of ``key`` (tombstones: N, df and the total length drop now); how many."""
        slots = []
        slot = self.newest.pop(key, -1)
        while slot >= 0:
            slots.append(slot)
            slot = int(self.chain[slot])
        for slot in slots:
            self.alive[slot] = False
            self.df[self._words_of(slot)[0]] -= 1
            self.n_docs -= 1
            self.total_len -= int(self.lengths[slot])
            self.dead += 1
            self._norm = None
        if self.dead > max(1000, len(self.keys) // 4):
            self.compact()
        return len(slots)

    def _words_of(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        if slot >= self.n_main:
            return self.delta_docs[slot]
        lo, hi = self.fwd_ptr[slot], self.fwd_ptr[slot + 1]
        return self.fwd_term[lo:hi], self.fwd_tf[lo:hi]

    def compact(self) -> None:
        """Merge the delta segment into the main one and drop dead slots (live ones are renumbered in
        order). Costs a sort of all postings: it runs only when the delta or the dead have grown."""
        if not self.delta_docs and not self.dead:
            return
        with paused_gc():
            self._compact()

    def _compact(self) -> None:
        alive = self.alive[:len(self.keys)]
        per_slot = np.diff(self.fwd_ptr)
        main_alive = alive[:self.n_main]
        keep = np.repeat(main_alive, per_slot)  # the main segment's live rows, vectorised
        terms, tfs, sizes = [self.fwd_term[keep]], [self.fwd_tf[keep]], [per_slot[main_alive]]
        for slot in range(self.n_main, len(self.keys)):  # then the delta's live documents, in slot order
            if alive[slot]:
                slot_terms, slot_tfs = self.delta_docs[slot]
                terms.append(slot_terms)
                tfs.append(slot_tfs)
                sizes.append(np.array([len(slot_terms)], np.int64))
        live = np.flatnonzero(alive)
        fwd_ptr = np.concatenate(([0], np.cumsum(np.concatenate(sizes)))).astype(np.int64)
        self._set_main([self.keys[s] for s in live.tolist()], self.lengths[live], fwd_ptr,
                       np.concatenate(terms).astype(np.int32), np.concatenate(tfs).astype(np.float32))

    # ---- reading -------------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Live entries."""
        return self.n_docs

    def live_keys(self) -> list[str]:
        return [self.keys[s] for s in np.flatnonzero(self.alive[:len(self.keys)]).tolist()]

    def doc_freq(self, word: str) -> int:
        """Live entries holding ``word`` (0 for a word no live entry holds)."""
        tid = self.vocab.get(word)
        return int(self.df[tid]) if tid is not None else 0

    def idf(self, df: int) -> float:
        return math.log(1.0 + (self.n_docs - df + 0.5) / (df + 0.5))

    def _postings(self, tid: int) -> tuple[np.ndarray, np.ndarray]:
        if tid + 1 < len(self.post_ptr):
            lo, hi = self.post_ptr[tid], self.post_ptr[tid + 1]
            slots, tfs = self.post_slot[lo:hi], self.post_tf[lo:hi]
        else:
            slots, tfs = self.post_slot[:0], self.post_tf[:0]
        extra = self.delta_post.get(tid)
        if extra:
            slots = np.concatenate((slots, np.asarray(extra[0], np.int32)))
            tfs = np.concatenate((tfs, np.asarray(extra[1], np.float32)))
        if self.dead:
            keep = self.alive[slots]
            slots, tfs = slots[keep], tfs[keep]
        return slots, tfs

    def top(self, tokens: Sequence[str], k: int) -> list[tuple[str, float]]:
        """The ``k`` best (key, score) entries with a positive score, best first (keys may repeat)."""
        tids = [self.vocab[t] for t in tokens if t in self.vocab and self.df[self.vocab[t]] > 0]
        if not tids or not self.n_docs or k <= 0:
            return []
        if self._norm is None:  # k1 * (1 - b + b * len / avglen) per slot, as bm25s computes it, until a change
            avg_len = self.total_len / self.n_docs  # what np.mean of the lengths gives: an exact sum, one division
            self._norm = K1 * ((1 - B) + B * self.lengths[:len(self.keys)] / avg_len)
        # One float32 accumulator per slot, kept between questions and cleared where it was written: a fresh
        # one is a page-faulting allocation (0.6 ms at 100k entries).
        self._acc = acc = _fit(self._acc, len(self.keys))
        for tid in tids:
            slots, tfs = self._postings(tid)
            idf = np.float32(self.idf(int(self.df[tid])))
            tf = tfs.astype(np.float64)
            acc[slots] += (np.float64(idf) * (tf / (self._norm[slots] + tf))).astype(np.float32)
        hits = np.flatnonzero(acc[:len(self.keys)] > 0)
        scores = acc[hits]
        acc[hits] = 0.0
        if len(hits) > k:
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            keep = scores >= kth
            hits, scores = hits[keep], scores[keep]
        order = np.lexsort((hits, -scores))[:k]
        return [(self.keys[int(hits[i])], float(scores[i])) for i in order]

    # ---- persistence ---------------------------------------------------------------------------------
    def to_arrays(self) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
        """(arrays, keys, words) of the compacted index, for saving."""
        self.compact()
        arrays: dict[str, np.ndarray] = {"lengths": self.lengths[:self.n_main], "fwd_ptr": self.fwd_ptr, "fwd_term": self.fwd_term,
                  "fwd_tf": self.fwd_tf, "post_ptr": self.post_ptr, "post_slot": self.post_slot,
                  "post_tf": self.post_tf}
        return arrays, list(self.keys), list(self.terms)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], keys: list[str], terms: list[str]) -> "BM25Index":
        with paused_gc():
            return cls._from_arrays(arrays, keys, terms)

    @classmethod
    def _from_arrays(cls, arrays: dict[str, np.ndarray], keys: list[str], terms: list[str]) -> "BM25Index":
        index = cls()
        index.terms = terms
        index.vocab = {word: i for i, word in enumerate(terms)}
        if (len(arrays["fwd_ptr"]) != len(keys) + 1 or len(arrays["lengths"]) != len(keys)
                or len(arrays["post_ptr"]) != len(terms) + 1):
            raise ValueError("BM25 arrays do not match their keys or words")
        index._set_main(keys, arrays["lengths"], arrays["fwd_ptr"], arrays["fwd_term"], arrays["fwd_tf"],
                        (arrays["post_ptr"], arrays["post_slot"], arrays["post_tf"]))
        return index


@contextmanager
def paused_gc() -> Iterator[None]:
    """Bulk work (a build, a load, a merge) makes millions of small objects that stay alive; the cyclic
    garbage collector would walk the whole growing heap again and again meanwhile (it doubled a 100k build)
    and would free nothing, since none of them forms a cycle. It runs again afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _fit(arr: np.ndarray, n: int) -> np.ndarray:
    """``arr`` with room for ``n`` items (capacity doubles, so appends cost O(1) amortised)."""
    if len(arr) >= n:
        return arr
    out = np.zeros(max(n, 2 * len(arr)), arr.dtype)
    out[:len(arr)] = arr
    return out
