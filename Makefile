# The two commands: `make run` (the whole stack) and `make test` (ruff, mypy, pytest).
# Each target creates or refreshes .venv itself; only Python 3.10+, gcc and make are needed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test lint bench fuzz chaos clean distclean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel

$(VENV)/.run: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[dev]'
	touch $@

# Baselines: py_vollib_vectorized and flowrisk pin pre-numpy-2 packages, so they go in without deps;
# lets-be-rational (pulled by vollib) overwrites py_lets_be_rational's files with a version numba
# cannot compile, so the original 1.0.0 is reinstalled last.
$(VENV)/.bench: pyproject.toml $(VENV)/.dev
	$(PIP) install -e '.[bench]'
	$(PIP) install --no-deps 'py_vollib_vectorized==0.1.1' 'flowrisk==0.3.0'
	$(PIP) install --no-deps --force-reinstall 'py_lets_be_rational==1.0.0'
	touch $@

run: $(VENV)/.run
	$(BIN)/qc up

lint: $(VENV)/.dev
	$(BIN)/ruff check qc tests benchmarks chaos
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# Unit and fuzz tests need no Redis and no simulator (the fuzzed dashboard and CLI use loopback sockets of their
# own): one process per core. Integration tests start
# servers and mostly wait on them (simulated sessions run in real time): two workers, each taking whole
# files (a module's stack stays in one process), every server on its own free port.
test: lint
	$(BIN)/pytest -n auto tests/unit tests/fuzz
	$(BIN)/pytest -n 2 --dist loadfile tests/integration

bench: $(VENV)/.bench
	$(BIN)/python -m benchmarks.run

# A whole simulated session through `qc up` at 30x under a seeded fault schedule, then the invariants
# (README "Reliability"); `python -m chaos --seed N` replays one. Then the fuzz campaign at full size.
chaos: $(VENV)/.dev
	$(BIN)/python -m chaos
	$(MAKE) fuzz

# The fuzz campaign at full size: 10,000 cases per surface of outside input, a tally of rejections per module.
fuzz: $(VENV)/.dev
	mkdir -p var/fuzz
	for m in tests/fuzz/test_fuzz_*.py; do \
		QC_FUZZ_EXAMPLES=10000 QC_FUZZ_REPORT=var/fuzz/$$(basename $$m .py).json $(BIN)/pytest -q -p no:cacheprovider $$m || exit 1; \
	done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf var
