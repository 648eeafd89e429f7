#!/usr/bin/env bash
# SmartThinker on Qwen3-4B-Thinking-2507 (the paper: 50 steps, 64 prompts x 8 rollouts, 4 GPUs).
# Its chat template opens <think> in the prompt, so responses carry only the closing </think> (the scorer
# handles both shapes). Usage:
#   bash recipes/run_qwen3_4b.sh [--dry-run] [HYDRA_OVERRIDE ...]
# Environment and arguments: see recipes/common.sh.
set -euo pipefail

# ---- settings -------------------------------------------------------------------------------------------------
RECIPE_NAME="run_qwen3_4b"
RECIPE_MODEL_PATH="Qwen/Qwen3-4B-Thinking-2507"
RECIPE_TOTAL_STEPS=50
RECIPE_ROLLOUT_TP=1
RECIPE_GPU_MEMORY_UTILIZATION=0.6
# vLLM runs at most this many sequences at once per engine, so that all of them fit in the KV cache at full length
# (1500 + 8000 tokens x 144 KiB/token = 1.31 GiB each; ~37 GiB of KV cache on an 80 GB GPU at 0.6 holds 28):
# no preemption. The arithmetic: docs/gpu.md, "GPU memory".
RECIPE_MAX_NUM_SEQS=24
RECIPE_MAX_TOKEN_LEN_PER_GPU=24576
RECIPE_EXTRA_OVERRIDES=()
# ----------------------------------------------------------------------------------------------------------------

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
smartthinker_run "$@"
