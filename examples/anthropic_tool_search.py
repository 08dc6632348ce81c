"""The Messages API request a client sends after its model asked the router for tools (no network needed).

Claude is given one non-deferred custom tool, ``search_tools``. When it calls it, the client routes the
query and answers with ``route --format anthropic``: a ``tool_result`` of ``tool_reference`` blocks, plus the
referenced tools' definitions with ``defer_loading: true``, which go into ``tools`` so the API can expand
the references. Only the routed tools are declared, however large the catalog.

    python examples/anthropic_tool_search.py [--workspace DIR] [--question "..."]

Prints the request body as JSON on stdout; POST it to https://api.anthropic.com/v1/messages.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from agentic_router import AgenticRouter
from agentic_router.router.payloads import search_tool

CATALOG = Path(__file__).with_name("tools.jsonl")
SEARCH_CALL_ID = "toolu_01SearchToolsExample"  # what Claude's tool_use block would carry


def request_body(router: AgenticRouter, question: str, model: str, k: int | str = "auto") -> dict[str, Any]:
    """The second request of the conversation: the question, Claude's call of the search tool, the answer."""
    search = search_tool("anthropic")
    found = router.route_as(question, "anthropic", k, call_id=SEARCH_CALL_ID)
    called = {"type": "tool_use", "id": SEARCH_CALL_ID, "name": search["name"], "input": {"query": question}}
    return {
        "model": model,
        "max_tokens": 1024,
        "tools": [search, *found["tools"]],
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": [called]},
            {"role": "user", "content": [found["tool_result"]]},
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", help="Workspace to route in (default: a new one with examples/tools.jsonl).")
    parser.add_argument("--question", default="Will it rain in Lisbon tomorrow?")
    parser.add_argument("--model", default="claude-opus-4-8")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        router = AgenticRouter.open(args.workspace or scratch, llm_provider="none")
        try:
            if not args.workspace:
                router.add_tools(CATALOG)
            body = request_body(router, args.question, args.model)
        finally:
            router.close()
    json.dump(body, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
