# smartthinker-verl developer commands. `make test` and `make demo` install into .venv first when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is installed before the package (verl does not declare it). Override for another build, e.g.
# `make install TORCH_SPEC="torch==2.11.0 --index-url https://download.pytorch.org/whl/cu128"`.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install test test-fast lint bench demo compare clean

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/bench_estimator.py
	$(PY) benchmarks/bench_scoring.py

demo: $(STAMP)
	bash recipes/run_demo_cpu.sh

# The CPU demo once per method, then one table and plot (METHODS="grpo smartthinker shorter_better" by default).
METHODS ?= grpo smartthinker shorter_better
compare: $(STAMP)
	bash recipes/compare_cpu.sh $(METHODS)

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
