"""What can a model do as a ReAct planner over routed tools? Runs agent mode on labelled questions and
counts: runs that called a tool, runs whose first call named an offered tool, runs that ended with an
answer, and runs whose called tool belongs to the gold document.

    .venv/bin/python scripts/react_probe.py --workspace WS --queries Q.jsonl [--limit 20] [--llm local]
        [--llm-model OTHER.gguf [--chat-template gemma]]

``--chat-template gemma`` is for a Gemma GGUF that carries no chat template (the local provider needs one
for chat turns): it sets Gemma's turn format on the loaded tokenizer and stops generation at <end_of_turn>.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from agentic_router.router.app import AgenticRouter
from agentic_router.training.evaluate import load_queries

# Gemma's turn format (no system role: system text opens the first user turn); written for this probe
GEMMA_TURNS = (
    "{{ bos_token }}{% set ns = namespace(sys='') %}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{% set ns.sys = ns.sys + m['content'] + '\\n\\n' %}"
    "{% else %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
    "{{ ns.sys if m['role'] != 'assistant' else '' }}{{ m['content'] | trim }}<end_of_turn>\n"
    "{% set ns.sys = '' %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def use_gemma_turns(llm) -> None:  # llm: a LocalTransformersLLM
    tok, model = llm._tokenizer, llm._model
    if not tok.chat_template:
        tok.chat_template = GEMMA_TURNS
    end = tok.convert_tokens_to_ids("<end_of_turn>")
    model.generation_config.eos_token_id = [tok.eos_token_id, end]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--queries", required=True)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--llm", default="local")
    parser.add_argument("--llm-base-url", default=None)
    parser.add_argument("--llm-model", default=None, help="model name, or a GGUF path for local / llama-cpp")
    parser.add_argument("--chat-template", choices=["gemma"], default=None, help="see the module docstring")
    parser.add_argument("-k", type=int, default=3)
    args = parser.parse_args()
    router = AgenticRouter.open(args.workspace, llm_provider=args.llm, llm_base_url=args.llm_base_url,
                                llm_model=args.llm_model)
    if args.chat_template == "gemma":
        use_gemma_turns(router.llm)
    counts = {"runs": 0, "called_a_tool": 0, "called_offered_tool": 0, "answered": 0, "gold_tool": 0, "errors": 0}
    started = time.perf_counter()
    for q in load_queries(args.queries, limit=args.limit, seed=args.seed):
        counts["runs"] += 1
        try:
            result = router.query(q.query, mode="agent", k=args.k)
        except Exception as exc:  # noqa: BLE001 - a probe records failures instead of stopping
            counts["errors"] += 1
            print(f"[error] {q.query[:60]!r}: {str(exc).splitlines()[0][:120]}", file=sys.stderr)
            continue
        calls = result.tools_called
        counts["called_a_tool"] += bool(calls)
        counts["called_offered_tool"] += bool(calls) and calls[0].name in result.tools_offered
        counts["answered"] += bool(result.answer.strip())
        spec = router.catalog.get_tool(calls[0].name) if calls else None
        counts["gold_tool"] += bool(spec and (spec.doc_id in q.gold or spec.name in q.gold))
        print(f"[ok] {q.query[:60]!r} -> {[c.name for c in calls]} answer={result.answer[:80]!r}", file=sys.stderr)
    counts["seconds_per_run"] = round((time.perf_counter() - started) / max(1, counts["runs"]), 1)
    print(json.dumps(counts, indent=2))


if __name__ == "__main__":
    main()
