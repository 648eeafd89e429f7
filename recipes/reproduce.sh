#!/usr/bin/env bash
# The paper's table in one command: preflight, training per method, conversion, the paper's evaluation (AIME24,
# AIME25, AMC23, MATH500; temperature 0.6, top-p 1.0, 32,768 new tokens, k samples) of the base model and of each
# trained model, and the report with AES. Resumable stage by stage; every output under one run folder.
# Usage:
#   bash recipes/reproduce.sh MODEL [METHOD ...] [--dry-run] [--run-dir DIR] [--k K] [--eval-tp N] [-- OVERRIDE ...]
#   bash recipes/reproduce.sh 1.5b                          # SmartThinker on DeepSeek-R1-Distill-Qwen-1.5B
#   bash recipes/reproduce.sh 1.5b grpo smartthinker --dry-run
#   NGPUS=8 bash recipes/reproduce.sh 7b smartthinker -- trainer.save_freq=25
# MODEL: 1.5b, 7b or qwen3_4b (recipes/run_MODEL.sh). METHOD: an advantage estimator (default smartthinker).
# Overrides after `--` go to every training stage. Environment: as the recipes' (recipes/common.sh).
# Layout: runs/reproduce-MODEL/{preflight,train,convert,eval,report}/...; stages, markers and what --dry-run
# checks: smartthinker_verl/launch/reproduce.py and README.md ("The paper's table in one command").
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
    # vLLM's CUDA build (make install-gpu) before the CPU one (make install).
    for venv in .venv-gpu .venv; do
        if [[ -x "${REPO_ROOT}/${venv}/bin/python" ]]; then PYTHON="${REPO_ROOT}/${venv}/bin/python"; break; fi
    done
    PYTHON="${PYTHON:-python3}"
fi
# The recipes this runs use the same interpreter.
export PYTHON
export PYTHONPATH="${REPO_ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
export VERL_USE_EXTERNAL_MODULES="${VERL_USE_EXTERNAL_MODULES:-smartthinker_verl.plugin}"
exec "${PYTHON}" -m smartthinker_verl.launch.reproduce "$@"
