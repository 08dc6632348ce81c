"""Cleaning a small model's answer (router/answering/answer.py): every rule on its own text, without a model, then the
hook in direct mode with a scripted LLM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.base.llms.types import CompletionResponse, LLMMetadata
from llama_index.core.llms import CustomLLM

from agentic_router.indexes.config import RouterConfig
from agentic_router.router.answering import answer
from agentic_router.router.app import AgenticRouter

QUESTION = "What does the borrow checker verify?"
BORROW = ("The Rust borrow checker\n\nRust enforces memory safety without a garbage collector. The borrow "
          "checker verifies that references never outlive the data they point to. A mutable reference is "
          "exclusive: no other reference to the same value may be used while it exists.")
VOLCANO = "Volcanoes erupt when magma rises through the crust. Effusive eruptions produce slow lava flows."
# what SmolLM2 printed for the demo question: one pair of sentences until the token budget ran out
LOOP = ("The tool retriever scores a tool based on the score of the tool itself. The score is based on the "
        "score of the tool itself.\n\n") * 8 + "The tool retriever scores a tool"


# ---- cleaning ----------------------------------------------------------------------------------------
def test_a_repeated_sentence_is_kept_once_in_first_position() -> None:
    text = "Rust is safe. The checker verifies references. Rust is SAFE! It needs no collector. Rust is safe."
    assert answer.cut_repetition(text) == "Rust is safe. The checker verifies references. It needs no collector."


def test_a_repeated_clause_inside_a_sentence_is_kept_once() -> None:
    assert answer.cut_repetition("It checks borrows, it checks borrows, then it compiles.") == \
        "It checks borrows, then it compiles."
    # the repeat was the last clause: the sentence still ends with its full stop, not a comma
    assert answer.cut_repetition("It checks borrows, then it compiles, then it compiles.") == \
        "It checks borrows, then it compiles."


def test_an_unfinished_last_sentence_is_cut() -> None:
    assert answer.cut_unfinished("The checker verifies references. It also checks that a mut") == \
        "The checker verifies references."
    assert answer.cut_unfinished('It said "stop." Then it stopped.') == 'It said "stop." Then it stopped.'
    # a stop inside a code name is not the end of a sentence
    assert answer.cut_unfinished("Scores are summed. See `router/scoring.") == "Scores are summed."
    assert answer.cut_unfinished("The tool retriever scores a tool") == ""


def test_chatter_and_copied_headings_are_stripped() -> None:
    text = "Answer: Based on the context information, the checker verifies references. I hope this helps!"
    assert answer.strip_chatter(text) == "The checker verifies references."
    assert answer.strip_chatter("## Borrowing\nSure! It verifies references.") == "It verifies references."
    assert answer.strip_chatter("The answer is short.") == "The answer is short."


def test_clean_answer_mends_the_demo_loop_to_its_first_pass() -> None:
    assert answer.clean_answer(LOOP) == ("The tool retriever scores a tool based on the score of the tool itself. "
                                         "The score is based on the score of the tool itself.")


# ---- rejecting ---------------------------------------------------------------------------------------
def test_a_loop_is_rejected_but_a_single_repeat_is_mended() -> None:
    assert answer.loops(LOOP)
    once = "The borrow checker verifies that references never outlive their data."
    assert not answer.loops(once * 2)  # one slip: cut, not rejected
    assert answer.loops(" ".join([once] * 3))
    assert answer.rejection(QUESTION, " ".join([once] * 3), [BORROW]) == "it repeats itself"
    assert answer.usable_answer(QUESTION, f"{once} {once}", [BORROW]) == once


def test_an_answer_without_a_complete_sentence_is_rejected() -> None:
    assert answer.rejection(QUESTION, "Answer: the references never out", [BORROW]) == \
        "no complete sentence is left after cleaning"
    assert answer.usable_answer(QUESTION, "", [BORROW]) is None


def test_an_answer_that_drifts_from_the_passages_is_rejected() -> None:
    drift = "The borrow checker verifies pizza toppings and cheese ovens."
    reason = answer.rejection(QUESTION, drift, [BORROW])
    assert reason is not None and "not grounded" in reason and "0 of the 4" in reason
    assert answer.usable_answer(QUESTION, drift, [BORROW]) is None
    grounded = "The borrow checker verifies that references never outlive their data."
    assert answer.usable_answer(QUESTION, grounded, [BORROW]) == grounded


def test_the_grounding_share_is_half_of_the_added_words() -> None:
    # added words (the question's own do not count): "references", "pizza" -> 1 of 2 found: kept
    assert answer.grounding_problem(QUESTION, "The borrow checker verifies references with pizza.", [BORROW]) is None
    # "references", "pizza", "cheese" -> 1 of 3 found: rejected
    assert answer.grounding_problem(QUESTION, "The borrow checker verifies references, pizza and cheese.",
                                    [BORROW]) is not None


def test_an_answer_that_only_restates_the_question_is_rejected() -> None:
    assert answer.rejection(QUESTION, "The borrow checker verifies what the borrow checker verifies.",
                            [BORROW]) == "it only restates the question"


# ---- the extractive fallback -------------------------------------------------------------------------
def test_extractive_answer_picks_the_sentence_that_matches_the_question() -> None:
    got = answer.extractive_answer(QUESTION, [VOLCANO, BORROW])
    assert got == "The borrow checker verifies that references never outlive the data they point to."


def test_extractive_answer_adds_a_second_sentence_only_for_a_missed_question_word() -> None:
    question = "Is a mutable reference checked by the borrow checker?"
    got = answer.extractive_answer(question, [BORROW])
    # first: borrow + checker + reference; second adds "mutable"; both in reading order
    assert got == ("The borrow checker verifies that references never outlive the data they point to. A mutable "
                   "reference is exclusive: no other reference to the same value may be used while it exists.")
    # a sentence with only words already covered is not added
    assert answer.extractive_answer(QUESTION, [BORROW]).count(".") == 1
    # the best sentence comes second in the passage: the answer still reads in the passage's order
    passage = "Rust has no garbage collector. The borrow checker keeps every mutable reference exclusive."
    assert answer.extractive_answer("How does the borrow checker keep a mutable reference safe without a "
                                    "garbage collector?", [passage]) == passage


def test_extractive_answer_quotes_only_complete_prose_sentences() -> None:
    chunk = ("and the checker runs before code generation.\n\n## Borrowing\n\n| module | what it verifies |\n"
             "|---|---|\n| `borrowck` | the borrow checker verifies lifetimes |\n\n    borrow checker --verify\n\n"
             "The borrow checker verifies lifetimes of references. It also verifies that the borr")
    assert answer.passage_sentences(chunk) == ["The borrow checker verifies lifetimes of references."]
    assert answer.extractive_answer(QUESTION, [chunk]) == "The borrow checker verifies lifetimes of references."
    # a passage whose line breaks were collapsed: table cells and headings still stay out of the sentence
    flat = "| `borrowck` | checks borrows | The borrow checker verifies lifetimes of references. ## Borrowing"
    assert answer.passage_sentences(flat) == ["The borrow checker verifies lifetimes of references."]


def test_extractive_answer_never_quotes_code_or_lines_glued_together() -> None:
    code = ("Run the checker.\n\n```\nThe borrow checker verifies this fenced line.\n```\n\n"
            "    The borrow checker verifies this indented line.\n")
    assert answer.passage_sentences(code) == ["Run the checker."]
    # a heading run into a command listing once the line breaks are gone: far over 60 words, not a sentence
    listing = " ".join(f"agentic-router query QUESTION{i} [--json]" for i in range(20))
    glued = f"Command line {listing} The borrow checker verifies references."
    assert answer.passage_sentences(glued) == []


def test_extractive_answer_without_a_matching_word_or_a_passage() -> None:
    # ties (here: nothing shared) go to the retriever's first passage and its first sentence
    assert answer.extractive_answer("Who won the cup?", [VOLCANO, BORROW]) == \
        "Volcanoes erupt when magma rises through the crust."
    assert answer.extractive_answer(QUESTION, []) == answer.NO_ANSWER


def test_finish_answer_keeps_a_good_answer_and_replaces_a_loop() -> None:
    good = answer.finish_answer(QUESTION, "Sure! The borrow checker verifies that references never outlive "
                                          "their data. It also", [BORROW])
    assert good == ("The borrow checker verifies that references never outlive their data.", answer.GENERATED, None)
    looped = answer.finish_answer(QUESTION, " ".join(["The borrow checker verifies data."] * 5), [VOLCANO, BORROW])
    assert looped.how == answer.EXTRACTIVE and looped.reason == "it repeats itself"
    assert looped.text == "The borrow checker verifies that references never outlive the data they point to."


# ---- the hook in direct mode -------------------------------------------------------------------------
class FixedLLM(CustomLLM):
    """Answers every prompt with the same text, as a stuck small model would."""

    text: str = ""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="fixed")

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self.text)

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Iterator[CompletionResponse]:
        yield CompletionResponse(text=self.text, delta=self.text)


@pytest.mark.parametrize("reply, how", [
    (" ".join(["The borrow checker checks things."] * 6), "extractive"),
    ("The borrow checker verifies that references never outlive their data. It also chec", "generated"),
    (None, "passages"),
])
def test_direct_mode_cleans_only_an_llm_answer(tmp_path: Path, corpus_dir: Path, reply: str | None, how: str) -> None:
    llm = FixedLLM(text=reply) if reply is not None else None
    router = AgenticRouter(RouterConfig.load(tmp_path / "ws", llm_provider="none"), llm=llm)
    router.ingest([corpus_dir])
    result = router.query(QUESTION, mode="direct")
    router.close()
    assert result.answer_source == how
    assert result.tools_called[0].output == (reply if reply is not None else result.answer)  # raw text kept
    if how == "extractive":
        assert result.answer.startswith("The borrow checker verifies that references never outlive")
        assert result.note and "repeats itself" in result.note
    elif how == "generated":
        assert result.answer == "The borrow checker verifies that references never outlive their data."
        assert result.note is None
    else:
        assert result.answer.startswith("The Rust borrow checker") and result.note is None
