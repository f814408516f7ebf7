# The two commands of the quick start; both install what they need first.
#   make run    start the hub with ./alerts.toml
#   make test   lint and run the whole test suite, on three processes: on two cores
#               two leave a third of the time idle, waiting on servers and timers

VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: run test bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/hub serve --config alerts.toml

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/python -m pytest -n 3

bench: $(STAMP)
	for b in ingest alertmanager resend scale memory latency; do $(VENV)/bin/python -m bench.$$b || exit 1; done
