"""Training-data generation: pseudo-queries, labelled logs, quality filters, round trip, resume, real local LLM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import write_jsonl

from agentic_router.indexes.errors import InputError
from agentic_router.indexes.schema import ToolSpec
from agentic_router.training import quality
from agentic_router.training.dataset import RoutingDataset
from agentic_router.training.generate import SYNTHETIC_WARNING, generate_dataset
from agentic_router.training.sources import plan_sources, source_prompts

EXTERNAL = [
    ToolSpec("get_weather", "Get the current weather forecast for a city", "external",
             parameters={"city": {"type": "str", "description": "City name"}, "unit": {"type": "str"}}),
    ToolSpec("convertCurrency", "Convert an amount of money from one currency to another", "external",
             parameters={"amount": {"type": "float"}, "from_currency": {"type": "str"},
                         "to_currency": {"type": "str"}}),
    ToolSpec("send_email", "Send an email message to a recipient with a subject and body", "external",
             parameters={"to": {"type": "str"}, "subject": {"type": "str"}, "body": {"type": "str"}}),
]


@pytest.fixture
def catalog(router):
    """The active view of a workspace holding the test corpus plus a few external tools."""
    router.add_tools(EXTERNAL)
    return router.view


def _doc_ids(router) -> dict[str, str]:
    """title word -> doc_id"""
    return {title.split()[-1].lower(): doc_id for doc_id, title, _ in router.catalog.document_leads()}


def _stable(path: Path) -> dict:
    data = json.loads(path.read_text(encoding="utf-8"))
    data["meta"].pop("run")
    return data


class ScriptedLLM:
    """Stands in for the local model: answers each prompt from its key term; can fail after ``fail_after`` calls."""

    def __init__(self, fail_after: int | None = None, answer=None) -> None:
        self.calls: list[list[str]] = []
        self.fail_after = fail_after
        self.answer = answer or (lambda prompt: "does the " + prompt.rsplit("Key term: ", 1)[-1].split("\n")[0]
                                 + " do in this study" if "Key term: " in prompt else "find the weather in Paris")

    def generate_batch(self, prompts, max_new_tokens, stop=None, chat=True, temperature=None):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt
        self.calls.append(list(prompts))
        return [self.answer(p) for p in prompts]


# ---- pseudo-queries (llm=None) --------------------------------------------------------------------------
def test_ict_dataset_covers_every_tool_and_is_reproducible(catalog, tmp_path):
    out = tmp_path / "ds.json"
    ds = generate_dataset(catalog, llm=None, out=out, progress=False)
    loaded = RoutingDataset.load(out)
    specs = {t.name: t for t in catalog.list_tools()}
    assert len(specs) == 12
    assert {t for names in loaded.relevant_docs.values() for t in names} == set(specs)  # every tool has data
    for qid, names in loaded.relevant_docs.items():
        assert loaded.kinds[qid] == specs[names[0]].kind and loaded.origin[qid] == "ict"
        assert loaded.corpus[names[0]] == specs[names[0]].card()
        if loaded.kinds[qid] == "vector":  # ICT: the sentence is gone from its positive chunk
            (chunk,) = loaded.relevant_chunks[qid]
            assert "~s" in chunk and loaded.queries[qid] not in loaded.chunks[chunk]
    assert set(loaded.split.values()) <= {"train", "val"} and len(loaded.split) == len(loaded.queries)
    assert loaded.meta["warning"] == SYNTHETIC_WARNING and not loaded.has_real_validation()
    assert loaded.meta["funnel"]["ict"]["kept"] == len(loaded.queries) - loaded.meta["fallback"]["questions"]
    assert not out.with_name("ds.json.progress.jsonl").exists()
    again = tmp_path / "again.json"
    generate_dataset(catalog, llm=None, out=again, progress=False)
    assert _stable(out) == _stable(again)
    other = generate_dataset(catalog, llm=None, out=tmp_path / "other.json", seed=1, val_fraction=0.3, progress=False)
    assert other.split != ds.split


def test_empty_catalog_is_an_input_error(make_router, tmp_path):
    with pytest.raises(InputError, match="catalog is empty"):
        generate_dataset(make_router("empty").view, llm=None, out=tmp_path / "x.json", progress=False)


def test_max_questions_spreads_over_sources(catalog, tmp_path):
    ds = generate_dataset(catalog, llm=None, out=tmp_path / "ds.json", max_questions=6, per_tool=1, progress=False)
    assert sum(ds.meta["sources"].values()) == 6  # round one: one source per document/tool
    assert len({t for names in ds.relevant_docs.values() for t in names}) == 6


# ---- labelled logs --------------------------------------------------------------------------------------
def test_from_queries_maps_doc_ids_and_counts_unknown(catalog, tmp_path):
    docs = _doc_ids(catalog)
    rows = [{"qid": f"r{i}", "query": f"question {i} about rust", "gold": [docs["checker"]]} for i in range(8)]
    rows += [{"qid": "w", "query": "weather in Oslo", "gold": ["get_weather", "nope"]},
             {"qid": "x", "query": "unknown target", "gold": "missing-doc"}]
    path = write_jsonl(tmp_path / "log.jsonl", rows)
    ds = generate_dataset(catalog, llm=None, out=tmp_path / "ds.json", from_queries=path, val_fraction=0.2,
                          progress=False)
    assert ds.relevant_docs["r0"] == ["vector_the_rust_borrow_checker"] and ds.kinds["r0"] == "vector"
    # a logged question also trains the passage side: the best chunk of its gold document
    (chunk,) = ds.relevant_chunks["r0"]
    assert "borrow checker" in ds.chunks[chunk] and "w" not in ds.relevant_chunks
    assert ds.meta["questions_with_chunk"] == 8
    assert ds.relevant_docs["w"] == ["get_weather"] and ds.kinds["w"] == "external"
    assert "x" not in ds.queries and ds.meta["unknown_gold_ids"] == 2 and ds.meta["rows_without_known_gold"] == 1
    assert set(ds.origin.values()) == {"log"} and ds.has_real_validation() and "warning" not in ds.meta
    assert list(ds.split.values()).count("val") == 2


def test_from_queries_bad_files(catalog, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"qid": "1", "query": "ok", "gold": ["get_weather"]}\n{"qid": "2", "query": ""}\n')
    with pytest.raises(InputError, match="line 2"):
        generate_dataset(catalog, llm=None, out=tmp_path / "a.json", from_queries=bad, progress=False)
    none = write_jsonl(tmp_path / "none.jsonl", [{"qid": "1", "query": "q", "gold": ["nothing"]}])
    with pytest.raises(InputError, match="no gold id"):
        generate_dataset(catalog, llm=None, out=tmp_path / "b.json", from_queries=none, progress=False)


# ---- quality filters ------------------------------------------------------------------------------------
def test_quality_filters():
    assert quality.is_chatter("What a great question! Let me think")
    assert quality.is_chatter("Sure, here is a question about the passage")
    assert quality.is_chatter("I'm sorry, as an AI I cannot do that")
    assert quality.is_chatter("What is it?")  # no content
    assert not quality.is_chatter("What does chlorophyll absorb?")
    passage = "Chlorophyll in the chloroplasts absorbs mostly red and blue light and reflects green light back."
    assert quality.copies_span("Why does chlorophyll in the chloroplasts absorb mostly red and blue light?", passage) is False
    assert quality.copies_span("Is it true that chlorophyll in the chloroplasts absorbs mostly red and blue light?", passage)
    assert not quality.length_ok("Why green?") and quality.length_ok("Why are leaves green?")
    assert not quality.length_ok(" ".join(["word"] * 41))
    assert quality.degenerate("the most recent record of the most recent record of the most recent record of")
    assert quality.degenerate("Summarise what is known about the role of the") and not quality.degenerate("What is it used for?")
    assert quality.clean_generation("Question 1: What does the Calvin cycle fix") == "What does the Calvin cycle fix?"
    dedup = quality.NearDuplicates()
    assert dedup.add("What does the Calvin cycle fix in plants and algae today?")
    assert not dedup.add("what does the calvin cycle fix in plants and algae today")  # exact after normalising
    assert not dedup.add("What does the Calvin cycle fix in the plants and algae today?")  # Jaccard 0.91
    assert dedup.add("How do volcanoes erupt?")


def test_round_trip_drops_a_query_that_routes_elsewhere(catalog):
    docs = _doc_ids(catalog)
    queries = ["How does chlorophyll absorb red and blue light?"] * 2 + ["weather forecast for a city"]
    targets = [("vector_the_rust_borrow_checker", docs["checker"]), ("vector_photosynthesis_in_plants", docs["plants"]),
               ("get_weather", None)]
    assert quality.round_trip(catalog, queries, targets, k=1) == [False, True, True]


def test_off_topic_llm_questions_are_dropped_and_fall_back(catalog, tmp_path):
    llm = ScriptedLLM(answer=lambda p: "is the best way to send an email with a subject line")
    ds = generate_dataset(catalog, llm=llm, out=tmp_path / "ds.json", per_tool=1, round_trip_k=1, progress=False)
    assert "email" not in " ".join(q for q, k in zip(ds.queries.values(), ds.kinds.values()) if k == "vector")
    assert ds.meta["fallback"]["by_kind"].get("vector") == 3
    funnel = ds.meta["funnel"]["llm"]
    assert funnel["after_dedup"] < funnel["generated"] and funnel["kept"] <= funnel["after_dedup"]


# ---- resume ---------------------------------------------------------------------------------------------
def test_interrupted_generation_resumes_without_redoing_sources(catalog, tmp_path):
    out = tmp_path / "ds.json"
    progress = out.with_name("ds.json.progress.jsonl")
    first = ScriptedLLM(fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(catalog, llm=first, out=out, batch_size=2, per_tool=1, progress=False)
    done = [json.loads(line)["key"] for line in progress.read_text().splitlines()[1:]]
    assert done and not out.exists()
    plan, _ = plan_sources(catalog, catalog.list_tools(), 1, 1, None, 0)
    done_prompts = {p for src in plan if src.key in done for p, _, _ in source_prompts(src)}
    second = ScriptedLLM()
    ds = generate_dataset(catalog, llm=second, out=out, batch_size=2, per_tool=1, progress=False)
    rerun = [p for call in second.calls for p in call]
    assert not done_prompts & set(rerun) and len(rerun) == len(set(rerun))
    assert not progress.exists() and ds.meta["run"]["resumed_sources"] == len(done)
    fresh = generate_dataset(catalog, llm=ScriptedLLM(), out=tmp_path / "fresh.json", batch_size=2, per_tool=1,
                             progress=False)
    assert fresh.queries == ds.queries and fresh.relevant_chunks == ds.relevant_chunks


# ---- the real bundled model -----------------------------------------------------------------------------
def test_real_local_llm_on_three_chunks(router, tmp_path, request):
    from agentic_router.indexes.config import RouterConfig
    from agentic_router.router.answering.llms import load_llm

    # the de-quantised weights are kept in pytest's cache folder, so only the first run pays ~25 s
    ws = request.config.cache.mkdir("generate-llm-ws")
    llm = load_llm(RouterConfig.load(workspace=ws, llm_provider="local", llm_max_new_tokens=32))
    ds = generate_dataset(router.view, llm=llm, out=tmp_path / "ds.json", max_questions=3, progress=False)
    assert 1 <= sum(ds.meta["sources"].values()) <= 3 and ds.queries
    assert ds.meta["funnel"]["llm"]["generated"] == 3
    assert set(ds.origin.values()) <= {"llm", "ict"} and RoutingDataset.load(tmp_path / "ds.json").queries


def test_from_queries_augmented_keeps_validation_real(catalog, tmp_path):
    docs = _doc_ids(catalog)
    rows = [{"qid": f"r{i}", "query": f"how does the borrow checker treat reference {i}", "gold": [docs["checker"]]}
            for i in range(10)]
    path = write_jsonl(tmp_path / "log.jsonl", rows)
    ds = generate_dataset(catalog, llm=None, out=tmp_path / "ds.json", from_queries=path, val_fraction=0.2,
                          augment=True, per_tool=1, progress=False)
    generated = [q for q in ds.queries if q.startswith("gen:")]
    assert generated and all(ds.split[q] == "train" and ds.origin[q] != "log" for q in generated)
    assert ds.has_real_validation() and len(ds.qids("val")) == 2
    assert ds.meta["augmented"]["questions"] == len(generated)
    assert RoutingDataset.load(tmp_path / "ds.json").queries == ds.queries
