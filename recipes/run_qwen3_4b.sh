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
# The FSDP actor's fp32 weights, gradients and Adam moments stay on the GPU during rollout (16 bytes x 4.02 B / 4 =
# 15.0 GiB, ~17 GiB with CUDA context): 0.75 x 79.6 = 59.7 GiB for vLLM is what remains on an 80 GB GPU.
RECIPE_GPU_MEMORY_UTILIZATION=0.75
# vLLM runs at most this many sequences at once per engine, so that all of them fit in the KV cache at full length:
# 59.7 GiB - 7.5 GiB of weights - ~3 GiB of activations = 49.2 GiB holds 37 sequences of 1500 + 8000 tokens x
# 144 KiB/token (36 layers x 8 KV heads x 128 x 2 x 2 bytes) = 1.30 GiB; 36 leaves a margin: no preemption.
# The arithmetic: docs/gpu.md, "GPU memory".
RECIPE_MAX_NUM_SEQS=36
RECIPE_MAX_TOKEN_LEN_PER_GPU=24576
# With +attention=sdpa (docs/gpu.md, "Without flash-attn"): the largest padded micro-batch on short answers is
# ~32k positions, ~42 GiB of logits and activations beside 15 GiB of actor state.
RECIPE_SDPA_MAX_TOKEN_LEN_PER_GPU=11264
RECIPE_EXTRA_OVERRIDES=()
# ----------------------------------------------------------------------------------------------------------------

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
smartthinker_run "$@"
