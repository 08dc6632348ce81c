"""The tool retriever: ranking, external tools, and the LlamaIndex ObjectRetriever contract."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from helpers import write_jsonl
from llama_index.core.objects import ObjectRetriever
from llama_index.core.tools import FunctionTool

from agentic_router.indexes.errors import CatalogError


def test_routes_questions_to_the_right_document(router) -> None:
    cases = {
        "What does the borrow checker verify about references?": "borrow",
        "Which light does chlorophyll absorb?": "photosynthesis",
        "What happened at Mount St. Helens in 1980?": "volcano",
    }
    for question, stem in cases.items():
        hits = router.route(question, k=3)
        assert hits[0].doc_id.startswith(stem), (question, [h.name for h in hits])
        assert hits[0].kind == "vector"  # a factual question goes to the vector tool
        assert hits == sorted(hits, key=lambda h: -h.score)


def test_kind_follows_the_question(router) -> None:
    assert router.route("Give me an overview of photosynthesis", k=1)[0].kind == "summary"
    assert router.route("Calvin cycle", k=1)[0].kind == "keyword"


def test_external_tool_formats(make_router, tmp_path: Path) -> None:
    router = make_router()
    path = write_jsonl(tmp_path / "tools.jsonl", [
        {"name": "get_weather", "description": "Current weather for a city",
         "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}}}},
        {"type": "function", "function": {"name": "convertCurrency", "description": "Convert an amount between currencies",
                                          "parameters": {"type": "object", "properties": {"amount": {"type": "number"}}}}},
        {"doc_id": "translateText", "title": "translateText", "text": "Translate text into another language"},
    ])
    report = router.add_tools(path)
    assert sorted(report.added) == ["convertCurrency", "get_weather", "translateText"]
    assert router.route("How many euros is 50 dollars?", k=1)[0].name == "convertCurrency"
    assert router.route("Will it rain in Paris today?", k=1)[0].name == "get_weather"
    assert router.route("Say hello in Japanese", k=1)[0].name == "translateText"
    assert router.add_tools(path).unchanged == ["get_weather", "convertCurrency", "translateText"]
    changed = write_jsonl(tmp_path / "changed.jsonl", [{"name": "get_weather", "description": "Weather forecast"}])
    with pytest.raises(CatalogError, match="another description"):
        router.add_tools(changed)
    assert router.add_tools(changed, replace=True).replaced == ["get_weather"]


def test_object_retriever_sync_and_async(router) -> None:
    retriever = router.object_retriever(k=3)
    assert isinstance(retriever, ObjectRetriever)
    tools = retriever.retrieve("What does the borrow checker verify?")
    assert len(tools) == 3 and "borrow" in tools[0].metadata.name
    atools = asyncio.run(retriever.aretrieve("What does the borrow checker verify?"))
    assert [t.metadata.name for t in atools] == [t.metadata.name for t in tools]


def test_every_offered_tool_stays_callable_by_its_exact_name(router) -> None:
    """Workflow agents re-query the retriever with the tool's name when they execute a call."""
    retriever = router.object_retriever(k=5)
    offered = asyncio.run(retriever.aretrieve("Which light does chlorophyll absorb?"))
    for tool in offered:
        again = asyncio.run(retriever.aretrieve(tool.metadata.name))
        assert again[0].metadata.name == tool.metadata.name
    # also tools that would never rank for their own name
    for spec in router.list_tools():
        assert retriever.retrieve(spec.name)[0].metadata.name == spec.name


def test_routed_document_tools_answer_from_their_document(router) -> None:
    hit = router.route("What does the borrow checker verify?", k=1)[0]
    tool = router.tools_for([hit])[0]
    out = tool.call(input="What does the borrow checker verify?")
    assert "references" in out.content and not out.is_error
    assert {n.node.metadata["doc_id"] for n in out.raw_output.source_nodes} == {hit.doc_id}


def test_python_tools_registered_by_an_application(router) -> None:
    def multiply(a: int, b: int) -> int:
        """Multiply two integers and return the product."""
        return a * b

    router.register_tool(FunctionTool.from_defaults(fn=multiply))
    hits = router.route("What is 6 times 7?", k=3)
    assert "multiply" in [h.name for h in hits]
    tool = router.object_retriever(k=3).retrieve("multiply")[0]
    assert tool.call(a=6, b=7).raw_output == 42


def test_lexical_channel_follows_catalog_changes(make_router, tmp_path: Path) -> None:
    router = make_router()
    router.add_tools(write_jsonl(tmp_path / "a.jsonl", [
        {"name": "lookup_gene", "description": "Look up a gene by its symbol"},
        {"name": "send_email", "description": "Send an email"},
    ]))
    first = router.route("ZXQ7 gene symbol", k=2)
    assert first[0].name == "lookup_gene"
    version = router.catalog.version()
    router.add_tools(write_jsonl(tmp_path / "b.jsonl", [
        {"name": "zxq7_registry", "description": "Registry entry for ZXQ7 variants"},
    ]))
    assert router.catalog.version() == version + 1
    hits = router.route("ZXQ7 registry entry", k=3)
    assert hits[0].name == "zxq7_registry"  # the rebuilt BM25 index knows the new rare token
    lexical_dirs = sorted(p.name for p in (router.config.workspace / "lexical").iterdir())
    assert all(f"-v{version + 1}" in d for d in lexical_dirs)  # stale versions are cleaned up


def test_lexical_weights_zero_is_embeddings_only(make_router, corpus_dir: Path) -> None:
    router = make_router(lexical_weight=0.0, tool_lexical_weight=0.0)
    router.ingest([corpus_dir])
    hit = router.route("What does the borrow checker verify?", k=1)[0]
    assert hit.doc_id.startswith("borrow") and not (router.config.workspace / "lexical").exists()


def test_tokenizer_keeps_cjk_and_splits_camel_case() -> None:
    from agentic_router.indexes.lexical.cache import tokenize

    assert tokenize("getWeatherForecast for Paris") == ["get", "weather", "forecast", "for", "paris"]
    assert tokenize("抹茶を点てる", frozenset()) == ["抹", "茶", "を", "点", "て", "る"]
