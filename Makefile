# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-python-engine lint bench clean native

# The native engine (Rust, native/) is built when cargo is on the machine; without it
# the forwarder runs on its pure-Python reference engine (forwarder/engine.py).
CARGO := $(shell command -v cargo 2>/dev/null)
NATIVE_SOURCES := $(wildcard native/Cargo.toml native/Cargo.lock native/pyproject.toml native/*.pyi native/*/Cargo.toml native/*/src/*.rs native/*/src/*/*.rs)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed-run

$(VENV)/.installed-native: $(NATIVE_SOURCES) | $(BIN)/python
ifdef CARGO
	$(BIN)/python -m pip install -q ./native
else
	@echo "cargo not found: the native engine is not built, the Python engine runs"
endif
	touch $@

native: $(VENV)/.installed-native

inbox:
	mkdir -p inbox
	cp forwarder/samples/*.jsonl inbox/

run: $(VENV)/.installed-run $(VENV)/.installed-native inbox
	$(BIN)/workmail-forwarder run --config config/local.yaml

test: $(VENV)/.installed-dev $(VENV)/.installed-native
	$(BIN)/python -m pytest
ifdef CARGO
	cd native && cargo test --release -q --workspace --exclude wmf-native
endif

# The suites that exercise mapping and delivery, on the reference engine alone
# (the chaos suite runs in `make test`, on the native engine).
test-python-engine: $(VENV)/.installed-dev
	WMF_ENGINE=python $(BIN)/python -m pytest -q tests/mapping tests/sinks tests/e2e tests/test_cli.py tests/test_engine.py tests/test_runner.py tests/test_deadletter.py

lint: $(VENV)/.installed-dev
ifdef CARGO
	cd native && cargo fmt --check && cargo clippy -q --all-targets -- -D warnings
endif
	$(BIN)/ruff check forwarder tests
	$(BIN)/ruff format --check forwarder tests
	$(BIN)/mypy

bench: $(VENV)/.installed-dev $(VENV)/.installed-native
	$(BIN)/python -m bench all

clean:
	rm -rf .state out inbox
