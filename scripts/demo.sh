#!/usr/bin/env bash
# The main job, end to end on the repository's own docs: ingest, list tools, route, answer.
set -euo pipefail
cd "$(dirname "$0")/.."
WS="${1:-.demo-workspace}"
AR=".venv/bin/agentic-router --workspace $WS"

echo "== ingest the project's docs (three tools per document)"
$AR ingest docs
echo "== register application tools"
$AR tools add examples/tools.jsonl
echo "== the catalog"
$AR tools list
echo "== route a question"
$AR route "Which model providers can plan tool calls?" -k 5
$AR route "What will the weather be in Lisbon tomorrow?" -k 3
echo "== answer with the bundled local model (direct mode)"
$AR query "How does the tool retriever score a tool?"
echo "== answer with no model (retrieved passages), as JSON"
$AR --llm none query "Where is the workspace kept?" --json
