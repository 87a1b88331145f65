# Two commands for a fresh machine: `make demo` and `make test`. Everything installs from requirements.lock.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-12)
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: install demo test test-fast lint bench clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@# Bytecode now, once: with PYTHONDONTWRITEBYTECODE set (Docker images, some CI) every command
	@# would compile its imports again (seconds of start-up; one file that is Python 3.12-only fails).
	-$(BIN)/python -m compileall -q -j 0 $(VENV)/lib tabpilot flows tasks > /dev/null 2>&1
	rm -f $(VENV)/.installed-* && touch $@

demo: install  ## train on the bundled Titanic data (about 60 s) and register titanic@champion
	$(BIN)/tabpilot train --params params.yaml

test: install  ## the whole suite: unit, contract and end-to-end on the real stack
	$(BIN)/python -m pytest -q

test-fast: install  ## for daily work, under 2 minutes: unit and contract tests without timed searches
	$(BIN)/python -m pytest -q -m "not slow" tests/unit tests/contract

lint: install
	$(BIN)/python -m ruff check tabpilot tasks flows tests benchmarks

clean:
	rm -rf runs data/raw data/prepared artifacts reports .prefect .dask
