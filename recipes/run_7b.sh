#!/usr/bin/env bash
# SmartThinker on DeepSeek-R1-Distill-Qwen-7B (the paper: 75 steps, 64 prompts x 8 rollouts, 4 GPUs of 96 GB).
# Usage:
#   bash recipes/run_7b.sh [--dry-run] [HYDRA_OVERRIDE ...]
# Environment and arguments: see recipes/common.sh.
set -euo pipefail

# ---- settings -------------------------------------------------------------------------------------------------
RECIPE_NAME="run_7b"
RECIPE_MODEL_PATH="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
RECIPE_TOTAL_STEPS=75
# Two GPUs per vLLM engine leave room for the KV cache of 512 rollouts of up to 8000 tokens.
RECIPE_ROLLOUT_TP=2
# The FSDP actor's fp32 weights, gradients and Adam moments stay on the GPUs during rollout (16 bytes x 7.62 B / 4 =
# 28.4 GiB per GPU): 0.6 x 79.6 GiB for vLLM is what remains on an 80 GB GPU.
RECIPE_GPU_MEMORY_UTILIZATION=0.6
# Each engine gets 256 of the 512 rollouts; its KV cache (47.8 - 7.1 GiB of weights - ~3 GiB of activations =
# 37.7 GiB per GPU) holds 148 of them at full length (9500 tokens x 28 KiB/token per GPU at TP 2), so vLLM runs at
# most 128 at once and never preempts (docs/gpu.md, "GPU memory").
RECIPE_MAX_NUM_SEQS=128
# Smaller packs than 1.5B: activations of a 7B model (one sequence is at most 1500 + 8000 tokens).
RECIPE_MAX_TOKEN_LEN_PER_GPU=16384
# With +attention=sdpa: one full sequence plus a little (9728); even so the largest padded micro-batch (~18-24k
# positions) takes ~35 GiB beside 28 GiB of actor state on 80 GB GPUs (docs/gpu.md, "Without flash-attn").
RECIPE_SDPA_MAX_TOKEN_LEN_PER_GPU=9728
RECIPE_EXTRA_OVERRIDES=()
# ----------------------------------------------------------------------------------------------------------------

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
smartthinker_run "$@"
