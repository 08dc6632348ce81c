#!/usr/bin/env bash
# The main job, end to end on the repository's own docs: ingest, list tools, route, answer.
#   bash scripts/demo.sh [WORKSPACE]     (make demo runs it offline)
set -euo pipefail
cd "$(dirname "$0")/.."
WS="${1:-.demo-workspace}"
AR=".venv/bin/agentic-router --workspace $WS"
# model-loading progress bars would bury the answers (ingest keeps its own one-line bar)
export HF_HUB_DISABLE_PROGRESS_BARS="${HF_HUB_DISABLE_PROGRESS_BARS:-1}" TQDM_DISABLE="${TQDM_DISABLE:-1}"

step() { printf '\n== %s\n' "$*"; }

step "1. Ingest the docs (three tools per document)"
$AR ingest docs
step "2. Register application tools"
$AR tools add examples/tools.jsonl
step "3. The catalog"
$AR tools list
step "4. Route: which tools fit a question?"
echo "Q: Which model providers can plan tool calls?"
$AR route "Which model providers can plan tool calls?" -k 5
echo "Q: What will the weather be in Lisbon tomorrow?"
$AR route "What will the weather be in Lisbon tomorrow?" -k 3
step "5. Answer with the bundled local model (direct mode; the first run unpacks the model)"
echo "Q: How does the tool retriever score a tool?"
$AR query "How does the tool retriever score a tool?"
step "6. Answer with no model: the retrieved passages (JSON, main fields)"
$AR --llm none query "Where is the workspace kept?" --json | .venv/bin/python -c '
import json, sys
r = json.load(sys.stdin)
keep = {k: r[k] for k in ("question", "mode", "answer_source", "answer") if k in r}
keep["tools_called"] = [c["name"] for c in r["tools_called"]]
keep["sources"] = [{k: s[k] for k in ("doc_id", "title", "score")} for s in r["sources"]]
print(json.dumps(keep, indent=2, ensure_ascii=False))'
