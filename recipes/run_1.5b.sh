#!/usr/bin/env bash
# SmartThinker on DeepSeek-R1-Distill-Qwen-1.5B: the paper's main run (150 steps, 64 prompts x 8 rollouts,
# 4 GPUs on one node). Usage:
#   bash recipes/run_1.5b.sh [--dry-run] [HYDRA_OVERRIDE ...]
#   MODEL_PATH=/models/r1-1.5b DATA_DIR=/data/smartthinker NGPUS=8 bash recipes/run_1.5b.sh trainer.save_freq=50
# Environment and arguments: see recipes/common.sh.
set -euo pipefail

# ---- settings -------------------------------------------------------------------------------------------------
RECIPE_NAME="run_1.5b"
RECIPE_MODEL_PATH="deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
RECIPE_TOTAL_STEPS=150
RECIPE_ROLLOUT_TP=1
RECIPE_GPU_MEMORY_UTILIZATION=0.6
# Real tokens per GPU per micro-batch with flash-attn (packed; one sequence is at most 1500 + 8000).
RECIPE_MAX_TOKEN_LEN_PER_GPU=32768
# With +attention=sdpa (micro-batches padded to their longest sequence): the largest padded micro-batch of
# verl's partitioner on short answers is ~40k positions, ~47 GiB of logits and activations at 12288 (docs/gpu.md,
# "Without flash-attn").
RECIPE_SDPA_MAX_TOKEN_LEN_PER_GPU=12288
RECIPE_EXTRA_OVERRIDES=()
# ----------------------------------------------------------------------------------------------------------------

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
smartthinker_run "$@"
