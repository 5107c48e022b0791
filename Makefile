# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv as needed, installing the pinned CPU torch first so that the
# `torch` requirement of the package never pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_PIN := torch==2.13.0
STAMP := $(VENV)/.cidir-installed
DEMO_OUT ?= demo_out
# the benchmark's own environment: cidir + the optional peers (itk-elastix, antspyx), kept
# apart because antspyx pins older numpy/scipy
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.cidir-installed

.PHONY: venv demo test test-slow lint clean benchmarks benchmarks-quick

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --upgrade pip
	$(BENCH_VENV)/bin/pip install -q $(TORCH_PIN)
	$(BENCH_VENV)/bin/pip install -q -e '.[peers]'
	touch $(BENCH_STAMP)

# every table of docs/benchmarks.md: the full protocol (hours on 2 cores) and --quick (< 15 min)
benchmarks: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python benchmarks/run_benchmarks.py $(BENCH_ARGS)

benchmarks-quick: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python benchmarks/run_benchmarks.py --quick $(BENCH_ARGS)

demo: $(STAMP)
	$(BIN)/cidir demo --out $(DEMO_OUT)

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(DEMO_OUT) .pytest_cache .ruff_cache .mypy_cache
