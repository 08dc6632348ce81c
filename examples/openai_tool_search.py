"""The Responses API request a client sends after its model asked the router for tools (no network needed).

The model is given a client-executed ``tool_search`` tool. When it emits a ``tool_search_call``, the client
routes the query and answers with ``route --format openai-tool-search``: a ``tool_search_output`` item that
echoes the call's ``call_id`` and carries the routed functions (``defer_loading: true``); only those become
callable, however large the catalog.

    python examples/openai_tool_search.py [--workspace DIR] [--question "..."]

Prints the request body as JSON on stdout; POST it to https://api.openai.com/v1/responses.
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
SEARCH_CALL_ID = "call_search_tools_example"  # what the model's tool_search_call would carry


def request_body(router: AgenticRouter, question: str, model: str, k: int | str = "auto") -> dict[str, Any]:
    """The second request: the question, the model's ``tool_search_call`` (kept as it came), the output."""
    called = {"type": "tool_search_call", "call_id": SEARCH_CALL_ID, "execution": "client",
              "status": "completed", "arguments": {"query": question}}
    found = router.route_as(question, "openai-tool-search", k, call_id=SEARCH_CALL_ID)
    return {
        "model": model,
        "tools": [search_tool("openai-tool-search")],
        "input": [{"role": "user", "content": question}, called, found],
        "parallel_tool_calls": False,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", help="Workspace to route in (default: a new one with examples/tools.jsonl).")
    parser.add_argument("--question", default="Will it rain in Lisbon tomorrow?")
    parser.add_argument("--model", default="gpt-5.4")
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
