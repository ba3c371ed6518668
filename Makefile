# Relance — two commands: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench airflow install clean e2e-celery

# The direct dependencies (requirements.txt) and the test tools (requirements-dev.txt), every
# transitive version bound by constraints.txt (Airflow's way: `pip install … -c constraints`).
$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the pinned requirements into $(VENV) (about two minutes the first time)…"
	@$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@$(BIN)/relance demo

# Everything, on SQLite and PostgreSQL, Airflow runs included; the 15 slowest tests printed.
# TEST_WORKERS processes (pytest-xdist), a test file per process at a time (its module fixtures
# made once): each has its own Airflow home, emulator and PostgreSQL schemas. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: $(STAMP) lint
	@$(BIN)/python -m pytest tests --durations=15 -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The edit loop (< 2 min): SQLite only, no Airflow runs, nothing marked slow (pyproject markers).
test-fast: $(STAMP) lint
	@RELANCE_TEST_BACKENDS=sqlite $(BIN)/python -m pytest tests -m "not airflow and not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	@$(BIN)/ruff check dags plugins tests benchmarks
	@$(BIN)/ruff check --select AIR3 --preview dags plugins
	@$(BIN)/python tests/tools/check_import_cycles.py plugins/relance

# The production path: Airflow with the CeleryExecutor (api-server, scheduler, dag-processor,
# triggerer, celery worker) on the local PostgreSQL and Redis, settings from airflow.env (as
# docker-compose.yml); the scheduler runs the pipeline, compared with the embedded path.
e2e-celery: $(STAMP)
	@$(BIN)/python tests/e2e/celery_e2e.py

bench: $(STAMP)
	@$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-bench.txt -c constraints.txt
	@$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements-bench-data.txt
	@$(BIN)/python -m benchmarks.run $(BENCH_ARGS)
	@$(BIN)/python -m benchmarks.recommender $(BENCH_ARGS)
	@$(BIN)/python -m benchmarks.send
	@$(BIN)/python -m benchmarks.real_data
	@$(BIN)/python -m benchmarks.run --report

airflow: $(STAMP)
	@test -f .local/env.sh || { echo "run 'make demo' first: it creates the state this opens"; exit 1; }
	@source .local/env.sh && export PATH="$(CURDIR)/$(BIN):$$PATH" && relance emulator && airflow standalone

clean:
	rm -rf .local $(VENV)
