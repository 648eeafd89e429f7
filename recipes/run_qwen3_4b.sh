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
RECIPE_MAX_TOKEN_LEN_PER_GPU=24576
RECIPE_EXTRA_OVERRIDES=()
# ----------------------------------------------------------------------------------------------------------------

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
smartthinker_run "$@"
