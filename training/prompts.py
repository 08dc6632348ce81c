"""Prompts and templates for generating routing questions, tuned for the bundled 135M model.

What works with SmolLM2-135M (measured on COVID-QA chunks, greedy decoding):
- a *completion* prompt (no chat template), two short worked examples, and an answer prefix: the prompt
  ends with ``Question: <start word>`` so the model continues a question instead of chatting;
- a *key term* taken from the passage (an acronym, a gene, a place) the question must be about: it grounds the
  question in the passage (round-trip top-5 rose from 0.59 to 0.72 on a 32-chunk sample);
- a rotating question start written into the answer prefix. Left alone the model writes "What is the ..."
  nearly every time; "Which" yields "Which of the following ..." (exam style) 15 times in 16. A start with a
  verb keeps it on the key term: round-trip top-5 on 16 chunks was 0.94 for "What does", 0.88 "How does",
  0.75 "Why", 0.75 "What is", 0.69 "Which" (and 94% chatter);
- short passages (~700 characters, front matter such as URLs, author lists and licences removed); the key
  term (``indexes.sources.describe.key_term``) is weighted by its idf over the catalog, so a word every paper uses
  ("China", "health") is not picked.
For tools the same recipe (two worked examples of tool line -> request, answer prefix "Please" / "Can you" /
"I need to" / "Help me") gave requests that route back to their own tool: on a 300-tool Seal-Tools sample
813 of 900 passed the text filters and 657 (73% of 900) the round trip, where a one-line prompt had 46 of 833.
Stop at the first newline or "?"; the caller puts the start word back and the "?" on.

Without an LLM, ``summary_templates``/``keyword_templates``/``tool_key_phrases`` build pseudo-queries.
``LLMRunner`` runs the prompts: batched ``generate_batch`` for the local model, ``complete`` otherwise.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from agentic_router.indexes.lexical.cache import FUNCTION_WORDS
from agentic_router.indexes.schema import ToolSpec, humanize_identifier
from agentic_router.indexes.sources.describe import looks_like_names
from agentic_router.training.trainers.common import torch_threads

PASSAGE_CHARS = 700
QUESTION_STARTS = ("What does", "How does", "Why", "What does")
SUMMARY_STARTS = ("Give an overview of", "What are the main findings about", "Summarise what is known about")
REQUEST_STARTS = ("Please", "Can you", "I need to", "Help me")
STOP = ["\n", "?"]

_META_LINE = re.compile(
    r"^(https?://|www\.|doi\s*:|sha\s*:|authors?\s*:|date\s*:|license\s*:|keywords?\s*:|pmcid|pmid|copyright|"
    r"\d{4}-\d{2}-\d{2}$)", re.I)
_SECTION_PREFIX = re.compile(
    r"^(abstract|text|background|summary|introduction|methods?|results?|conclusions?)\s*:\s*", re.I)

_QUESTION_EXAMPLES = (
    ("Of the 1,200 volunteers aged 18 to 60, 95% developed antibodies within two weeks of the second dose.",
     "antibodies", "What share of the volunteers developed antibodies after the second dose?"),
    ("The borrow checker of Rust rejects programs in which a mutable reference coexists with any other reference.",
     "borrow checker", "How does the Rust borrow checker treat a mutable reference?"),
)
_SUMMARY_EXAMPLE = ("Photosynthesis in plants", "Photosynthesis converts light energy into chemical energy stored in "
                    "glucose; the Calvin cycle fixes carbon dioxide.",
                    "Give an overview of how plants turn light into chemical energy")
_REQUEST_EXAMPLES = (
    ("get weather", "Get the current weather for a city", "city; unit",
     "Please tell me the weather in Lisbon in celsius right now."),
    ("convert currency", "Convert an amount between two currencies", "amount; from currency; to currency",
     "Can you convert 250 euros to Japanese yen?"),
)


# ---- passages -----------------------------------------------------------------------------------------
def clean_passage(text: str, title: str | None = None, limit: int | None = PASSAGE_CHARS) -> str:
    """Prose of a chunk: no title/URL/author/licence lines, no one-word menu lines, cut at a sentence end."""
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line == title or _META_LINE.match(line) or looks_like_names(line):
            continue
        line = _SECTION_PREFIX.sub("", line)
        if len(line.split()) >= 5:
            lines.append(line)
    flat = " ".join(" ".join(lines).split())
    if limit is None or len(flat) <= limit:
        return flat
    cut = flat[:limit]
    end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
    return cut[: end + 1] if end > limit // 2 else cut.rsplit(" ", 1)[0]


# ---- LLM prompts (completion style; the model's reply continues the last line) ---------------------------
def question_prompt(passage: str, term: str | None, start: str) -> str:
    text = "Write a question about the key term, answered by the passage.\n\n"
    for ex_passage, ex_term, ex_question in _QUESTION_EXAMPLES:
        text += f"Passage: {ex_passage}\nKey term: {ex_term}\nQuestion: {ex_question}\n\n"
    return text + f"Passage: {passage}\nKey term: {term or 'the main topic'}\nQuestion: {start}"


def summary_prompt(title: str, lead: str, start: str) -> str:
    t, lead_ex, q = _SUMMARY_EXAMPLE
    return ("Write a request for an overview of the document.\n\n"
            f"Title: {t}\nStart: {lead_ex}\nRequest: {q}\n\n"
            f"Title: {title}\nStart: {lead[:400]}\nRequest: {start}")


def request_prompt(spec: ToolSpec, start: str) -> str:
    text = "Write a request a user would send to the tool.\n\n"
    for name, desc, params, request in _REQUEST_EXAMPLES:
        text += f"Tool: {name}: {desc}. Parameters: {params}\nRequest: {request}\n\n"
    params = "; ".join(param_names(spec)) or "none"
    tool = f"{humanize_identifier(spec.name)}: {spec.description.rstrip('.')}"
    return text + f"Tool: {tool}. Parameters: {params}\nRequest: {start}"


def example_texts() -> list[str]:
    """The worked examples' outputs: a generation that repeats one is discarded."""
    return [q for _, _, q in _QUESTION_EXAMPLES] + [_SUMMARY_EXAMPLE[2]] + [r for *_, r in _REQUEST_EXAMPLES]


def param_names(spec: ToolSpec) -> list[str]:
    if not spec.parameters:
        return []
    props = spec.parameters.get("properties", spec.parameters)
    return [humanize_identifier(p) for p in props] if isinstance(props, dict) else []


# ---- templates and pseudo-queries (no LLM) --------------------------------------------------------------
def short_title(title: str, words: int = 12) -> str:
    parts = title.split()
    return " ".join(parts[:words]).rstrip(":,;.")


def summary_templates(title: str, terms: Sequence[str]) -> list[str]:
    topic = short_title(title)
    lowered = topic[:1].lower() + topic[1:] if topic[:2].istitle() and not topic[:2].isupper() else topic
    out = [f'What is the document "{topic}" about?', f"Summarise the main findings on {lowered}",
           f"Give an overview of {lowered}"]
    if len(terms) >= 2:
        out.append(f"What are the key points about {terms[0]} and {terms[1]}?")
    return out


def keyword_templates(terms: Sequence[str]) -> list[str]:
    forms = ("{t}", "Which document mentions {t}?", '"{t}"', "Find the passage that uses the term {t}")
    return [forms[i % len(forms)].format(t=t) for i, t in enumerate(terms)]


def tool_key_phrases(spec: ToolSpec, rng: random.Random, n: int) -> list[str]:
    """Pseudo-requests from a tool card: readable name + parameters, salient description words, and noisy
    (word-dropped) descriptions; seeded by ``rng``."""
    name = humanize_identifier(spec.name)
    params = param_names(spec)
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z0-9\-']*", spec.description) if w.lower() not in FUNCTION_WORDS]
    phrases = [f"{name} {' '.join(params[:3])}".strip(), " ".join(words[:8]) or name]
    if params:
        phrases.append(f"{' '.join(words[:5]) or name} by {params[0]}")
    desc = spec.description.split()
    while len(phrases) < n + 4 and len(desc) >= 4:
        kept = [w for w in desc if rng.random() > 0.3] or desc[:3]
        phrases.append(" ".join(kept).rstrip("."))
    unique = list(dict.fromkeys(p.strip() for p in phrases if p.strip()))
    rng.shuffle(unique)
    return unique[:n]


# ---- running prompts ------------------------------------------------------------------------------------
class LLMRunner:
    """Runs LLM batches; for the local model on CPU it uses bf16 autocast where the CPU has it and picks the
    faster of 1 thread and all threads by timing both (re-checked every 30 batches): on a shared 2-core
    machine one thread was 2.5x faster, alone two threads win."""

    def __init__(self, local: bool, max_threads: int = 1, bf16: bool = False) -> None:
        self.local, self.bf16 = local, bf16
        self.options = sorted({1, max_threads}) if local else [0]
        self.rates: dict[int, float] = {}
        self.batches = 0
        self.current = self.options[-1]
        self.used: Counter[int] = Counter()

    def run(self, llm: Any, prompts: list[str], max_new_tokens: int) -> list[str]:
        if not self.local:
            return complete_each(llm, prompts, max_new_tokens)
        phase = self.batches % 30
        self.current = self.options[phase] if phase < len(self.options) else max(self.rates, key=lambda n: self.rates[n])
        with torch_threads(self.current):  # the caller's thread count is back after each batch
            t = time.perf_counter()
            out = llm.generate_batch(prompts, max_new_tokens=max_new_tokens, stop=STOP, chat=False, temperature=0.0)
            self.rates[self.current] = sum(map(len, prompts)) / max(time.perf_counter() - t, 1e-9)
        self.batches += 1
        self.used[self.current] += 1
        return out

    def summary(self) -> dict[str, Any]:
        return {"threads_used": {str(k): v for k, v in self.used.items()}, "local": self.local, "bf16": self.bf16}


@contextmanager
def cpu_tuning(llm: Any) -> Iterator[LLMRunner]:
    """The runner for ``llm``. For the local model, bf16 autocast is on for the block (where the CPU computes
    bf16 natively) and each batch may use fewer threads than the caller's count, which comes back after it."""
    if not hasattr(llm, "generate_batch"):
        yield LLMRunner(False)
        return
    import torch

    bf16 = not torch.cuda.is_available() and bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: 0)())
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        yield LLMRunner(True, torch.get_num_threads(), bf16)


def complete_each(llm: Any, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Any llama-index LLM: one ``complete`` per prompt, first line of the reply."""
    out = []
    for prompt in prompts:
        try:
            text = str(llm.complete(prompt, formatted=True)).strip()
        except TypeError:
            text = str(llm.complete(prompt)).strip()
        text = (text.splitlines() or [""])[0]
        out.append(text[: text.find("?") + 1] if "?" in text else text)
    return out


def llm_name(llm: Any) -> str | None:
    if llm is None:
        return None
    try:
        return f"{type(llm).__name__}:{llm.metadata.model_name}"
    except Exception:  # noqa: BLE001 - the name only labels the progress file
        return type(llm).__name__
