"""How long `finetune --from-queries` takes with 4,000 labelled requests on a 200-tool catalog (2 cores).

    .venv/bin/python scripts/bench_finetune.py [--tools 200] [--requests 4000] [--methods full] [--json OUT]

The catalog and the requests are made from templates (20 objects x 10 actions; each request a random
phrasing of one tool's action and object with a random detail), so the figure is about time, not about
accuracy: the accuracy of `finetune` is measured on real requests by scripts/finetune_protocol.py. Timed
end to end, as a user runs it: recording the requests in the usage memory, choosing weights, training,
judging on the held-out part, activating. Also reported: how soon a recorded request counts (one
`feedback` call, then a route that uses it).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from agentic_router import AgenticRouter
from agentic_router.indexes.encoders.cpu import cpu_summary
from agentic_router.indexes.schema import ToolSpec
from agentic_router.training.finetune import finetune

ACTIONS = {
    "create": ["create", "make", "set up", "add"], "delete": ["delete", "remove", "get rid of", "drop"],
    "list": ["list", "show all", "give me every", "enumerate"], "update": ["update", "change", "edit", "modify"],
    "archive": ["archive", "put away", "shelve", "retire"], "share": ["share", "send over", "pass on", "forward"],
    "export": ["export", "download", "dump", "save out"], "search": ["search", "look for", "find", "hunt for"],
    "summarize": ["summarize", "recap", "give the gist of", "boil down"], "schedule": ["schedule", "plan", "book", "line up"],
}
OBJECTS = {
    "invoice": ["invoice", "bill"], "meeting": ["meeting", "call"], "ticket": ["ticket", "support case"],
    "playlist": ["playlist", "mix"], "contact": ["contact", "address book entry"], "report": ["report", "write-up"],
    "photo": ["photo", "picture"], "task": ["task", "to-do"], "order": ["order", "purchase"],
    "note": ["note", "memo"], "flight": ["flight", "plane ticket"], "recipe": ["recipe", "dish"],
    "document": ["document", "file"], "event": ["event", "gathering"], "budget": ["budget", "spending plan"],
    "shipment": ["shipment", "parcel"], "reminder": ["reminder", "alert"], "campaign": ["campaign", "promotion"],
    "vehicle": ["vehicle", "car"], "course": ["course", "class"],
}
DETAILS = ["for tomorrow", "from last week", "for the Berlin team", "named Q3", "for my sister", "before Friday",
           "about the launch", "in the shared folder", "for client 4411", "with high priority", "", "right now"]
OPENERS = ["", "please ", "can you ", "I need to ", "could you ", "help me "]


def catalog(n_tools: int) -> list[ToolSpec]:
    pairs = [(a, o) for o in OBJECTS for a in ACTIONS][:n_tools]
    return [ToolSpec(name=f"{a}_{o}", kind="external",
                     description=f"{a.capitalize()} a {o} record in the {o} service ({OBJECTS[o][1]}).")
            for a, o in pairs]


def requests(tools: list[ToolSpec], n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        tool = tools[i % len(tools)]
        action, obj = tool.name.split("_", 1)
        text = (f"{rng.choice(OPENERS)}{rng.choice(ACTIONS[action])} the {rng.choice(OBJECTS[obj])} "
                f"{rng.choice(DETAILS)} #{i}").strip()
        rows.append({"qid": f"r{i}", "query": text, "gold": [tool.name]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", type=int, default=200)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--methods", default="full")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    print(f"CPU: {cpu_summary()}", file=sys.stderr)  # figures depend on the instruction set
    with tempfile.TemporaryDirectory() as tmp:
        router = AgenticRouter.open(Path(tmp) / "ws", llm_provider="none")
        tools = catalog(args.tools)
        router.add_tools(tools)
        rows = requests(tools, args.requests, args.seed)
        logs = Path(tmp) / "logs.jsonl"
        logs.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

        start = time.perf_counter()
        router.feedback("please archive the memo about the merger", "archive_note")
        hit = router.route("put away the memo about the merger", k=1)[0].name
        first_feedback = time.perf_counter() - start

        start = time.perf_counter()
        report = finetune(router.view, from_queries=logs, methods=[m for m in args.methods.split(",") if m],
                          seed=args.seed, progress=True)
        seconds = time.perf_counter() - start
        router.close()
    out = {"tools": len(tools), "requests": len(rows), "finetune_seconds": round(seconds, 1),
           "feedback_then_route_seconds": round(first_feedback, 3), "route_after_feedback": hit,
           "chosen": report.chosen, "activated": report.activated, "candidates": report.candidates,
           "decisions": report.decisions}
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
