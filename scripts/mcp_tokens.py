"""What putting the router in front of MCP servers saves: tokens of every tool definition a client would
otherwise hold, against tokens of the router's three tool definitions plus one ``search_tools`` answer.

    .venv/bin/python scripts/mcp_tokens.py [--catalog bench-results/data/bfcl/docs.jsonl]
        [--queries bench-results/data/bfcl/live.queries.jsonl] [--requests 200] [-k 5|auto] [--json OUT]

The catalog is the toy MCP server of the tests (registered over MCP, as a user would) plus a JSONL catalog
of real function definitions (BFCL's, made by ``scripts/bfcl_to_jsonl.py``); without that file a catalog
of generated tools stands in. Requests are real user requests of the same set (a seeded sample), so the
answer sizes are those of real searches. Tokens are counted on compact JSON, the same way on both sides,
with the two tokenizers available offline: the bundled LLM's byte-level BPE (SmolLM2, GPT-2 style, close
to what chat models spend) and the embedder's WordPiece (all-MiniLM-L6-v2, which splits JSON punctuation
more finely). Their absolute numbers differ; the saved share hardly does.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from transformers import AutoTokenizer

from agentic_router.indexes.encoders.cpu import cpu_summary
from agentic_router.indexes.encoders.embeddings import token_counter
from agentic_router.indexes.schema import ToolSpec
from agentic_router.router.answering.llms import bundled_gguf_path
from agentic_router.router.app import AgenticRouter
from agentic_router.serve.mcp import build_server

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "tests" / "mcp_toy_server.py"
BFCL = ROOT / "bench-results" / "data" / "bfcl"
FALLBACK_REQUESTS = ["what is 17 times 23", "turn my blog title into a url slug", "is 97 a prime number",
                     "reverse the word stressed", "count the words in this paragraph"]


def generated_catalog(n: int = 400) -> list[ToolSpec]:
    """Plausible tool definitions when no real catalog is at hand: verbs x objects, each with parameters."""
    verbs = ["get", "create", "update", "delete", "list", "search", "archive", "export"]
    objects = ["invoice", "customer", "ticket", "order", "shipment", "calendar_event", "report", "user", "repository",
               "playlist", "payment", "subscription", "document", "dashboard", "alert", "message", "contact",
               "project", "task", "warehouse_item", "flight_booking", "hotel_booking", "support_case", "lead",
               "campaign", "survey", "device", "employee", "expense", "asset", "contract", "invoice_line",
               "coupon", "review", "blog_post", "webhook", "api_key", "backup", "vm_instance", "dns_record",
               "sensor_reading", "recipe", "course", "enrollment", "vehicle", "parking_permit", "library_loan",
               "prescription", "appointment", "insurance_claim"]
    specs = []
    for i, (verb, obj) in enumerate((v, o) for o in objects for v in verbs):
        if i >= n:
            break
        props = {f"{obj}_id": {"type": "string", "description": f"Identifier of the {obj.replace('_', ' ')}."},
                 "fields": {"type": "array", "items": {"type": "string"}, "description": "Fields to return."},
                 "dry_run": {"type": "boolean", "description": "Validate without applying the change."}}
        specs.append(ToolSpec(name=f"{verb}_{obj}", kind="external",
                              description=f"{verb.capitalize()} a {obj.replace('_', ' ')} in the company system.",
                              parameters={"type": "object", "properties": props, "required": [f"{obj}_id"]}))
    return specs


def requests_from(path: Path | None, n: int, seed: int) -> list[tuple[str, list[str]]]:
    """``(request, gold tool names)``: a seeded sample of labelled requests, or a few unlabelled ones."""
    if path is None or not path.is_file():
        return [(q, []) for q in FALLBACK_REQUESTS]
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(rows)
    return [(r["query"], list(r.get("gold") or [])) for r in rows[:n]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=BFCL / "docs.jsonl")
    parser.add_argument("--queries", type=Path, default=BFCL / "live.queries.jsonl")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("-k", type=lambda v: v if v == "auto" else int(v), default=5,
                        help="tools per answer, or auto (those close to the best one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    print(f"CPU: {cpu_summary()}", file=sys.stderr)  # figures depend on the instruction set

    with tempfile.TemporaryDirectory() as tmp:
        router = AgenticRouter.open(tmp, llm_provider="none")
        router.add_mcp_server(command=[sys.executable, str(TOY)], name="toy")
        real = args.catalog.is_file()
        router.add_tools(args.catalog if real else generated_catalog())
        specs = router.list_tools()
        gguf = bundled_gguf_path()
        bpe = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        counters = {"smollm2_bpe": lambda text: bpe.encode(text, add_special_tokens=False),
                    "minilm_wordpiece": token_counter(router.view.embedder)}

        def tokens(data: Any) -> dict[str, int]:
            text = json.dumps(data, ensure_ascii=False)
            return {name: len(count(text)) for name, count in counters.items()}

        everything = tokens([router.executor.openai_tool(s) for s in specs])
        meta = anyio.run(build_server(router).list_tools)
        meta_defs = tokens([{"name": t.name, "description": t.description, "inputSchema": t.input_schema}
                            for t in meta])
        answers, found, returned = [], [], []
        for query, gold in requests_from(args.queries if real else None, args.requests, args.seed):
            answer = router.search_tools(query, args.k)
            answers.append(tokens(answer))
            returned.append(len(answer["tools"]))
            if gold:  # did the answer hold a tool the request needs? (what the saving costs)
                found.append(bool(set(gold) & {t["name"] for t in answer["tools"]}))
        router.close()

    result: dict[str, Any] = {"tools": len(specs), "catalog": args.catalog.name if real else "generated",
                              "requests": len(answers), "k": args.k,
                              "tools_per_answer_mean": round(statistics.mean(returned), 2),
                              "gold_in_answer": round(sum(found) / len(found), 3) if found else None}
    for name in counters:
        median = statistics.median(a[name] for a in answers)
        result[name] = {"all_definitions": everything[name], "router_definitions": meta_defs[name],
                        "search_answer_median": median, "search_answer_max": max(a[name] for a in answers),
                        "per_request_with_router": meta_defs[name] + median,
                        "saved_share": round(1 - (meta_defs[name] + median) / everything[name], 4)}
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
