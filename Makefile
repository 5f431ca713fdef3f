# The two commands: `make run` (the whole stack) and `make test` (ruff, mypy, pytest).
# Each target creates or refreshes .venv itself; only Python 3.10+, gcc and make are needed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test lint bench clean distclean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel

$(VENV)/.run: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[dev]'
	touch $@

# py_vollib_vectorized pins an old py_lets_be_rational that must go in after lets-be-rational, without deps.
$(VENV)/.bench: pyproject.toml $(VENV)/.dev
	$(PIP) install -e '.[bench]'
	$(PIP) install --no-deps 'py_vollib_vectorized==0.1.1' 'py_lets_be_rational==1.0.0'
	touch $@

run: $(VENV)/.run
	$(BIN)/qc up

lint: $(VENV)/.dev
	$(BIN)/ruff check qc tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(VENV)/.bench
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf var
