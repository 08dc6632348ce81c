"""Cleaning a small model's answer before it is shown, and an extractive answer when it cannot be saved.

The bundled SmolLM2-135M decodes greedily with a fixed token budget, and its answers fail in a few
recurring ways: it repeats a sentence until the budget runs out, so the last sentence stops mid-word;
it opens with chatter ("Based on the context information, ..."); and it sometimes writes about something
the passages never mention. Each failure has a small rule here, all pure functions of text, so they are
tested without a model:

- ``strip_chatter``: drop answer labels, preambles, sign-offs and copied Markdown headings.
- ``cut_repetition``: a sentence, or a clause inside a sentence, that comes back is kept only once.
- ``cut_unfinished``: the text ends at its last complete sentence.
- ``rejection``: why the text must not be shown at all (it loops, nothing is left, or it is not grounded).
- ``extractive_answer``: the one or two passage sentences that best match the question, the fallback.

``finish_answer`` puts them together for a caller holding the question, the generated text and the
retrieved passages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

GENERATED = "generated"
EXTRACTIVE = "extractive"
NO_ANSWER = "No retrieved passage answers this question."

# Below half distinct word trigrams, the text is mostly copies of itself: a sentence said twice still has
# just over half distinct (cut_repetition mends it), three times or more has well under half (a loop).
LOOP_DISTINCT_TRIGRAMS = 0.5
LOOP_MIN_TRIGRAMS = 12  # shorter texts have too few trigrams for the ratio to mean anything
GROUNDED_SHARE = 0.5  # of the words an answer adds to the question, at least this share is in the passages
MAX_SENTENCE_WORDS = 60  # a longer "sentence" from a passage is lines glued together (heading, code, table)

# grammar words and question words: they say nothing about what an answer is about
_STOPWORDS = frozenset({
    "a", "an", "the", "and", "or", "but", "if", "of", "at", "by", "for", "with", "about", "into", "through",
    "during", "before", "after", "above", "below", "to", "from", "up", "down", "in", "out", "on", "off", "over",
    "under", "then", "once", "here", "there", "when", "where", "why", "how", "all", "any", "both", "each", "few",
    "more", "most", "other", "some", "such", "no", "nor", "not", "only", "own", "same", "so", "than", "too", "very",
    "can", "will", "just", "should", "now", "is", "are", "was", "were", "be", "been", "being", "have", "has", "had",
    "having", "do", "does", "did", "doing", "i", "me", "my", "we", "our", "you", "your", "he", "him", "his", "she",
    "her", "it", "its", "they", "them", "their", "what", "which", "who", "whom", "whose", "this", "that", "these",
    "those", "am", "would", "could", "also", "may", "might", "must", "shall", "yes", "one", "get", "gets", "got",
    "use", "used", "uses", "using",
})
_WORD = re.compile(r"[a-z][a-z0-9]+")
# a sentence ends at . ! or ? (maybe closed by a quote, bracket or backtick) before a space and a capital,
# digit, quote, bracket or backtick; "e.g." and "i.e." never end one
_BREAK = re.compile(r"(?<=[.!?])(?<!\be\.g\.)(?<!\bi\.e\.)\s+(?=[A-Z0-9\"'(\[`*])"
                    r"|(?<=[.!?][\"')\]`])\s+(?=[A-Z0-9\"'(\[`*])")
_CLAUSE_BREAK = re.compile(r"(?<=[,;])\s+")
_COMPLETE_END = re.compile(r"[.!?][\"')\]`*]*$")
_STARTS_LIKE_SENTENCE = re.compile(r"[A-Z0-9\"'(\[`*]")
_PREAMBLE = re.compile(
    r"^(?:\*\*)?(?:final answer|answer|response|a)\s*:\s*(?:\*\*)?\s*"
    r"|^(?:sure|certainly|of course|okay|ok|great question)\s*[,!.]\s*"
    r"|^here(?: is|'s) (?:the|an|my) answer\s*[:.]?\s*"
    r"|^(?:based on|according to|given|from|in) (?:the )?(?:provided |given |above )?"
    r"(?:context information|context|information|passages?|sources?|documents?|text)"
    r"(?: (?:provided|given|above))?\s*,\s*",
    re.IGNORECASE,
)
_SIGN_OFF = re.compile(r"^(?:i hope (?:this|that) helps|let me know|feel free|thank you|thanks"
                       r"|if you have any (?:other |more |further )?questions)\b", re.IGNORECASE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")
_LIST_MARK = re.compile(r"^(?:[-*+]|\d+[.)])\s+")
# a heading marker or a table bar, also inside a passage whose line breaks were collapsed
_MARKUP_BREAK = re.compile(r"(?:^|\s)#{1,6}\s|\|")


class Finished(NamedTuple):
    """What a caller shows: the answer, where it came from (``GENERATED`` or ``EXTRACTIVE``), and why the
    generated text was set aside (None when it was kept)."""

    text: str
    how: str
    reason: str | None


# ---- words and sentences ----------------------------------------------------------------------------------
def _stem(word: str) -> str:
    """A crude stem, enough for "score", "scores", "scored" and "scoring" to share one, and "verifies" to
    meet "verify"; a wrong merge now and then costs little in a share of shared words."""
    for suffix, replacement in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""),
                                ("e", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + replacement
    return word


def content_words(text: str) -> set[str]:
    """Stems of the words that carry meaning (no grammar words, nothing under three letters)."""
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


def _normal(text: str) -> str:
    """Lower-case words only, so that case, punctuation and spacing never hide a repeat."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``; a blank line also ends one, since a paragraph without a full stop (a
    heading, a list intro) must not run into the next."""
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        flat = " ".join(paragraph.split())
        out.extend(s.strip() for s in _BREAK.split(flat) if s.strip())
    return out


def is_complete(sentence: str) -> bool:
    """Starts like a sentence, ends with . ! or ?, and closes every backtick and bracket it opens.

    The balance test catches a passage cut inside a code name: "... see `router/scoring." ends with a full
    stop, but the stop belongs to the file name.
    """
    s = sentence.strip()
    return (bool(s) and bool(_STARTS_LIKE_SENTENCE.match(s)) and bool(_COMPLETE_END.search(s))
            and s.count("`") % 2 == 0 and s.count("(") == s.count(")") and s.count("[") == s.count("]"))


# ---- cleaning a generated answer --------------------------------------------------------------------------
def _chatter_free(text: str) -> list[str]:
    """The sentences left once headings, preambles and sign-offs are gone (see ``strip_chatter``)."""
    lines = [line for line in text.strip().splitlines() if not _HEADING.match(line)]
    text = "\n".join(lines).strip()
    while True:
        cut = _PREAMBLE.sub("", text, count=1).lstrip()
        if cut == text:
            break
        text = cut
    if text[:1].islower():  # "Based on the context, the tool ..." -> "The tool ..."
        text = text[0].upper() + text[1:]
    sentences = split_sentences(text)
    while sentences and _SIGN_OFF.match(sentences[-1]):
        sentences.pop()
    return sentences


def strip_chatter(text: str) -> str:
    """Remove what is about the answer rather than the answer: "Answer:", "Sure!", "Based on the context,
    ...", closing pleasantries, and Markdown headings copied from a passage."""
    return " ".join(_chatter_free(text))


def _dedupe_clauses(sentence: str) -> str:
    """Keep each comma- or semicolon-separated clause of one sentence once; end with the sentence's stop."""
    clauses = _CLAUSE_BREAK.split(sentence)
    seen: set[str] = set()
    kept: list[str] = []
    for clause in clauses:
        key = _normal(clause)
        if key and key in seen:
            continue
        seen.add(key)
        kept.append(clause)
    if len(kept) == len(clauses):
        return sentence
    text = " ".join(kept).rstrip(" ,;")
    end = _COMPLETE_END.search(sentence)
    return text + end.group(0) if end and not _COMPLETE_END.search(text) else text


def _first_occurrences(sentences: list[str]) -> list[str]:
    seen: set[str] = set()
    kept: list[str] = []
    for sentence in sentences:
        sentence = _dedupe_clauses(sentence)
        key = _normal(sentence)
        if key not in seen:
            seen.add(key)
            kept.append(sentence)
    return kept


def cut_repetition(text: str) -> str:
    """Keep the first occurrence of every sentence, and of every clause within a sentence.

    Greedy decoding has no memory of what it already said, so a small model restates a sentence word for
    word; the later copies add nothing.
    """
    return " ".join(_first_occurrences(split_sentences(text)))


def _up_to_last_complete(sentences: list[str]) -> list[str]:
    end = len(sentences)
    while end and not is_complete(sentences[end - 1]):
        end -= 1
    return sentences[:end]


def cut_unfinished(text: str) -> str:
    """End at the last complete sentence; "" when there is none.

    A generated answer that stops without a full stop was cut by the token budget, and a half sentence
    ("The tool retriever scores a tool") reads as an error. A one-phrase answer without a stop cannot be
    told from a cut one, so it goes too; the extractive fallback then answers in full sentences.
    """
    return " ".join(_up_to_last_complete(split_sentences(text)))


def clean_answer(generated: str) -> str:
    """All the cleaning rules in order: chatter, repetition, then the unfinished tail (which a repetition
    cut can expose, and which is often a truncated copy of an earlier sentence). Sentences travel as a list
    so that a paragraph break seen first still separates them at the end."""
    return " ".join(_up_to_last_complete(_first_occurrences(_chatter_free(generated))))


# ---- deciding whether to show it --------------------------------------------------------------------------
def loops(text: str) -> bool:
    """Whether the text is mostly copies of itself: under half of its word trigrams are distinct.

    One repeat is a slip that ``cut_repetition`` mends. A decoder that said the same thing three times or
    more is in a cycle, has stopped reading the passages, and what it said before cycling is usually the
    seed of the cycle (often the question restated), so none of it is trusted.
    """
    words = _normal(text).split()
    trigrams = list(zip(words, words[1:], words[2:]))
    return len(trigrams) >= LOOP_MIN_TRIGRAMS and len(set(trigrams)) / len(trigrams) < LOOP_DISTINCT_TRIGRAMS


def grounding_problem(question: str, answer: str, passages: Sequence[str]) -> str | None:
    """Why ``answer`` is not grounded in ``passages`` (None when it is).

    The rule looks only at the words the answer adds to the question, because restating the question is
    free: an answer must add at least one content word, and at least half of the words it adds must occur
    in the passages. A model that read the passages reuses their words; one that drifted brings its own.
    Half, not all, leaves room for a paraphrase ("kept" for "holds"), and stems let "scored" match "score".
    """
    added = content_words(answer) - content_words(question)
    if not added:
        return "it only restates the question"
    found = added & content_words(" ".join(passages))
    if len(found) < GROUNDED_SHARE * len(added):
        return f"it is not grounded in the sources ({len(found)} of the {len(added)} words it adds occur there)"
    return None


def rejection(question: str, generated: str, passages: Sequence[str]) -> str | None:
    """Why the generated text cannot be shown, or None when its cleaned form can."""
    if loops(strip_chatter(generated)):
        return "it repeats itself"
    cleaned = clean_answer(generated)
    if not cleaned:
        return "no complete sentence is left after cleaning"
    return grounding_problem(question, cleaned, passages)


def usable_answer(question: str, generated: str, passages: Sequence[str]) -> str | None:
    """The cleaned answer, or None when it must be replaced (see ``rejection``)."""
    return None if rejection(question, generated, passages) else clean_answer(generated)


# ---- the extractive fallback ------------------------------------------------------------------------------
def _prose(passage: str) -> list[str]:
    """The prose blocks of a Markdown passage: code and rules dropped; headings, table cells and list items
    each a block of their own, so they never run into a sentence (they seldom end with a full stop, so
    ``passage_sentences`` then drops most of them)."""
    blocks: list[str] = []
    current: list[str] = []
    fenced = False

    def flush() -> None:
        if current:
            blocks.append(" ".join(current))
            current.clear()

    for line in passage.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fenced = not fenced
            flush()
            continue
        if fenced or not stripped or line.startswith(("    ", "\t")) or re.fullmatch(r"[-*_=|: ]{3,}", stripped):
            flush()
            continue
        if _MARKUP_BREAK.search(stripped):  # headings and table cells are blocks of their own
            flush()
            blocks.extend(piece.strip() for piece in _MARKUP_BREAK.split(stripped) if piece.strip())
            continue
        mark = _LIST_MARK.match(stripped)
        if mark:
            flush()
            stripped = stripped[mark.end():]
        current.append(stripped)
    flush()
    return blocks


def passage_sentences(passage: str) -> list[str]:
    """Complete prose sentences of a passage: the only text the fallback may quote.

    A chunk starts and ends wherever the splitter cut it, so its first and last pieces are often half
    sentences; anything over ``MAX_SENTENCE_WORDS`` words is lines that lost their breaks (a heading glued
    to a command listing), not prose.
    """
    return [s for block in _prose(passage) for s in split_sentences(block)
            if is_complete(s) and len(s.split()) <= MAX_SENTENCE_WORDS]


def extractive_answer(question: str, passages: Sequence[str], max_sentences: int = 2) -> str:
    """The passage sentence sharing the most content words with the question, plus a second one only
    when it covers a question word the first missed (so it adds something).

    Ties go to the earlier passage (the retriever ranked it higher), then the earlier sentence. When no
    sentence shares a word, the first sentence of the best passage is still the best evidence there is.
    Two sentences from one passage keep their reading order.
    """
    wanted = content_words(question)
    scored: list[tuple[int, int, int, str, set[str]]] = []
    seen: set[str] = set()
    for p, passage in enumerate(passages):
        for i, sentence in enumerate(passage_sentences(passage)):
            key = _normal(sentence)
            if key in seen:
                continue
            seen.add(key)
            shared = wanted & content_words(sentence)
            scored.append((-len(shared), p, i, sentence, shared))
    if not scored:
        return NO_ANSWER
    scored.sort(key=lambda row: row[:3])
    picked = [scored[0]]
    covered = set(scored[0][4])
    for row in scored[1:]:
        if len(picked) >= max_sentences:
            break
        if row[4] - covered:
            picked.append(row)
            covered |= row[4]
    if len({row[1] for row in picked}) == 1:
        picked.sort(key=lambda row: row[2])
    return " ".join(row[3] for row in picked)


def finish_answer(question: str, generated: str, passages: Sequence[str]) -> Finished:
    """The generated answer, cleaned, when it passes ``rejection``; else the extractive answer."""
    reason = rejection(question, generated, passages)
    if reason is None:
        return Finished(clean_answer(generated), GENERATED, None)
    return Finished(extractive_answer(question, passages), EXTRACTIVE, reason)
