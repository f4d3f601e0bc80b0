# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed-run

inbox:
	mkdir -p inbox
	cp forwarder/samples/*.jsonl inbox/

run: $(VENV)/.installed-run inbox
	$(BIN)/workmail-forwarder run --config config/local.yaml

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check forwarder tests
	$(BIN)/ruff format --check forwarder tests
	$(BIN)/mypy

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench all

clean:
	rm -rf .state out inbox
