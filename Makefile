# The two commands: `make run` serves, `make test` runs the whole suite. `make bench` runs the
# read benchmarks, each against servers it starts (minutes each; the figures go in the README):
# BENCHES names other modules of bench/, and BENCH_ARGS reach each one, so name one with them
# (`make bench BENCHES=vs_postgraphile BENCH_ARGS="--rounds 3 --scale 10"`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CKSUM := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# One stamp per set of packages and version of pyproject.toml: `run` installs what serving
# needs (the project's dependencies), `test` adds the test extras (pytest, Playwright,
# schemathesis, ruff...). An installation for testing serves as one for running too.
RUN_STAMP := $(VENV)/.installed-run-$(CKSUM)
TEST_STAMP := $(VENV)/.installed-test-$(CKSUM)
BENCHES ?= vs_postgraphile read_graph

.PHONY: run test lint format schema bench clean

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	rm -f $(VENV)/.installed-*
	touch $(RUN_STAMP)

$(TEST_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(RUN_STAMP) $(TEST_STAMP)

run: $(RUN_STAMP)
	$(BIN)/campaign-api dev

test: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(TEST_STAMP)
	set -e; for name in $(BENCHES); do $(BIN)/python -m bench.$$name $(BENCH_ARGS); done

schema: $(RUN_STAMP)
	$(BIN)/campaign-api export-schema > schema.graphql

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
