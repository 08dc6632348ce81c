"""Scoring: from the evidence the retriever gathered to a ranked list of tools. Pure functions, no I/O.

Evidence per candidate tool (see ``Evidence``):
- ``card``: cosine similarity of the question to the tool card (readable name, description, parameters);
- ``chunk``: for a document tool, the similarity of the question to the best chunk of its document among the
  nearest chunks (a question about a detail deep inside a paper resembles the passage that answers it, not
  the paper's description);
- ``lex_cards`` / ``lex_docs``: BM25 over the cards and over the chunks, divided by the best BM25 score of
  the question (or its ceiling), for the rare exact words a question shares with its answer.

    document tools:  dense = card_weight * card + (1 - card_weight) * chunk
                     score = (1 - lexical_weight) * dense + lexical_weight * lex_docs (+ kind_bonus)
    external tools:  score = (1 - tool_lexical_weight) * card + tool_lexical_weight * lex_cards

Two lexical weights because the two are different evidence: a question about a paper shares rare words
with the passage that answers it (annotators wrote COVID-QA's questions reading the paper), while a
person asking an agent for something rarely uses the words of the tool's one-line description (BFCL's
real requests want far less BM25 than Seal-Tools', which an LLM wrote from the descriptions).

The kind bonus (overview questions -> summary, bare terms -> keyword, otherwise vector) orders a document's
three tools without changing which document comes first. Keeping this a pure function of (evidence,
weights) is what lets weights be chosen per catalog and every channel be evaluated alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from agentic_router.indexes.lexical.cache import NO_MATCH, LexicalMatch
from agentic_router.indexes.schema import RouteHit, ToolSpec

_SUMMARY_INTENT = re.compile(
    r"\b(summar\w*|overview|outline|gist|main (?:idea|point|finding|topic|contribution)s?|key (?:points|findings)|"
    r"what is (?:this|the) (?:document|paper|article|text) about|about what|compare|comparison|in general)\b",
    re.I,
)
_QUESTION_WORD = re.compile(r"\b(what|which|who|whom|whose|when|where|why|how|is|are|does|do|did|can|could)\b", re.I)
_QUOTED = re.compile(r"\"[^\"]{2,}\"")


def kind_intent(query: str) -> str:
    """Which index kind a question calls for: overview questions -> summary, bare terms or a quoted phrase ->
    keyword, everything else (most questions ask for a fact) -> vector."""
    if _SUMMARY_INTENT.search(query):
        return "summary"
    words = query.split()
    if len(words) <= 3 and not _QUESTION_WORD.search(query) and not query.rstrip().endswith("?"):
        return "keyword"
    if _QUOTED.search(query):
        return "keyword"
    return "vector"


LEXICAL_NORMS = ("best", "ceiling", "ceiling_all")


@dataclass(frozen=True)
class Weights:
    """How the channels are mixed (``RouterConfig`` holds the configured values).

    ``lexical_norm`` says what a BM25 score is divided by: ``best``, the question's best BM25 score (the
    top candidate always gets 1, however weak its match), or ``ceiling``, what a text holding each of the
    question's words once would score (a weak match stays weak; see ``indexes.lexical.cache.LexicalMatch``)."""

    card_weight: float = 0.15
    lexical_weight: float = 0.4  # documents: BM25 over chunks against embeddings
    kind_bonus: float = 0.05
    lexical_norm: str = "best"
    memory_weight: float = 0.5
    memory_floor: float = 0.6
    abstain_below: float = 0.0  # "no tool fits" when the best tool's fit is below this (0: never)
    tool_lexical_weight: float = 0.2  # external tools: BM25 over cards against the card embedding
    tool_lexical_norm: str = "ceiling"  # a weak match of a request's words stays weak
    # with no calibrated abstain_below: "no tool fits" when a request fits no better than this share of the
    # background requests (router.fit); 0 never abstains
    abstain_quantile: float = 0.5

    def lexical(self, value: float) -> "Weights":
        """Both lexical weights set to ``value`` (the channels-alone systems)."""
        return replace(self, lexical_weight=value, tool_lexical_weight=value)

    @property
    def uses_lexical(self) -> bool:
        return self.lexical_weight > 0 or self.tool_lexical_weight > 0


@dataclass
class Evidence:
    """Everything known about the candidates of one question; filled by the retriever."""

    intent: str = "vector"
    specs: dict[str, ToolSpec] = field(default_factory=dict)
    card: dict[str, float] = field(default_factory=dict)  # tool name -> cosine to its card
    chunk: dict[str, float] = field(default_factory=dict)  # doc_id -> best chunk cosine
    passages: dict[str, str] = field(default_factory=dict)  # doc_id -> text of that best chunk
    lex_cards: LexicalMatch = NO_MATCH  # BM25 over tool cards, per tool name
    lex_docs: LexicalMatch = NO_MATCH  # BM25 over chunks, per doc_id (its best chunk)
    memory: list[tuple[str, str, float]] = field(default_factory=list)  # nearest recorded (id, tool, cosine)
    exclude: frozenset[str] = frozenset()  # recorded ids to ignore (a question's own record, in calibration)

    def memory_votes(self, floor: float) -> dict[str, float]:
        """Per tool, how far its nearest recorded request is above ``floor`` (0..1): a request that is
        merely on a related subject stays below the floor and votes for nothing."""
        votes: dict[str, float] = {}
        for rid, tool, sim in self.memory:
            if rid not in self.exclude and sim > floor:
                votes[tool] = max(votes.get(tool, 0.0), (sim - floor) / (1.0 - floor))
        return votes


def score(evidence: Evidence, weights: Weights, limit: int | None = None) -> list[RouteHit]:
    """Every candidate scored and ranked (best first; ties by name, so the order is deterministic); only
    the first ``limit`` become ``RouteHit``s when given (building a hit is most of scoring's cost).

    A document with no chunk among the nearest ones gets the weakest chunk similarity that was seen: it is
    at most that close, and a zero would sink a document whose card matches well."""
    floor = min(evidence.chunk.values()) if evidence.chunk else 0.0
    lam, lam_tool = weights.lexical_weight, weights.tool_lexical_weight
    lex_cards = evidence.lex_cards.normalised(weights.tool_lexical_norm) if lam_tool else {}
    lex_docs = evidence.lex_docs.normalised(weights.lexical_norm) if lam else {}
    votes = evidence.memory_votes(weights.memory_floor) if weights.memory_weight > 0 else {}
    mu = weights.memory_weight if votes else 0.0
    rows: list[tuple[float, str, ToolSpec, float, float | None, str | None]] = []
    for name, spec in evidence.specs.items():
        card = evidence.card.get(name, 0.0)
        if spec.kind == "external":
            value, chunk, passage = (1 - lam_tool) * card + lam_tool * lex_cards.get(name, 0.0), None, None
        else:
            doc = spec.doc_id or ""
            chunk, passage = evidence.chunk.get(doc, floor), evidence.passages.get(doc)
            dense = weights.card_weight * card + (1 - weights.card_weight) * chunk
            value = (1 - lam) * dense + lam * lex_docs.get(doc, 0.0)
            value += weights.kind_bonus if spec.kind == evidence.intent else 0.0
        value = round(float(value), 6)
        if mu:
            value = round((1 - mu) * value + mu * votes.get(name, 0.0), 6)
        rows.append((value, name, spec, card, chunk, passage))
    rows.sort(key=lambda r: (-r[0], r[1]))
    return [make_hit(spec, value, card, chunk, passage)
            for value, _, spec, card, chunk, passage in rows[:limit]]


def close_to_best(hits: list[RouteHit], margin: float) -> list[RouteHit]:
    """The leading hits that score within ``margin`` of the first (``k auto``): one tool when it stands
    out, several when they are close, so a client carries only the tools a request may need."""
    return [h for h in hits if hits and h.score >= hits[0].score - margin]


def fit(hits: list[RouteHit]) -> float:
    """How well the best tool fits the request: the strongest embedding evidence of the first hit (its
    card, or its document's best chunk). A cosine, comparable across questions unlike the fused score."""
    if not hits:
        return 0.0
    top = hits[0]
    return max(top.card_score or 0.0, top.evidence_score or 0.0)


def make_hit(spec: ToolSpec, value: float, card: float | None, chunk: float | None,
             passage: str | None = None) -> RouteHit:
    return RouteHit(
        name=spec.name, score=round(float(value), 6), kind=spec.kind, doc_id=spec.doc_id, tool_id=spec.tool_id,
        description=spec.description, card_score=None if card is None else round(card, 6),
        evidence_score=None if chunk is None else round(chunk, 6), evidence=passage,
    )
