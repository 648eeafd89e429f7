#!/usr/bin/env bash
# The device check: what a GPU day should confirm first, in under 10 minutes on one H100, with only torch and
# transformers installed (no vLLM, Ray or verl; no network; this checkout needs no install: PYTHONPATH).
#
#   bash benchmarks/gpu_check.sh            # on the GPU machine
#   bash benchmarks/gpu_check.sh --smoke    # anywhere, tiny shapes: that the scripts run
#
# 1. benchmarks/gpu_calibration_check.py: SmartThinker's calibration on the GPU equals the CPU result (200 random
#    batches x 2 rules; fails above 1e-9), and its cost beside plain GRPO's normalisation.
# 2. benchmarks/gpu_memory_check.py: one update pass (forward + backward) of a random-weight model with the 1.5B
#    recipe's shapes (benchmarks/models/deepseek-r1-distill-qwen-1.5b/config.json) on the recipe's largest
#    micro-batch at its sdpa token budget, peak memory against docs/gpu.md's estimate.
# Environment: PYTHON (default python3). Exit status: the first check that fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
export PYTHONPATH="${ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
FLAGS=()
[[ "${1:-}" == "--smoke" ]] && FLAGS=(--smoke)

echo "== environment"
"${PYTHON}" -c 'import sys, torch, transformers; print(sys.version.split()[0], "torch", torch.__version__,
    "transformers", transformers.__version__, "cuda", torch.version.cuda, "devices", torch.cuda.device_count())'
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "== calibration maths: GPU against CPU"
"${PYTHON}" "${ROOT}/benchmarks/gpu_calibration_check.py" ${FLAGS[@]+"${FLAGS[@]}"}
echo "== the 1.5B recipe's largest micro-batch: peak memory against the estimate"
"${PYTHON}" "${ROOT}/benchmarks/gpu_memory_check.py" ${FLAGS[@]+"${FLAGS[@]}"}
echo "== gpu_check: done"
