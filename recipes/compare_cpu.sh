#!/usr/bin/env bash
# `make compare`: the CPU demo (recipes/run_demo_cpu.sh: SmolLM2-135M, the same data, seed and steps) trained once per
# length-shaping method, then one table and one plot: training accuracy and mean response tokens per step for each
# method, and the final validation accuracy / tokens with AES against grpo.
# A few CPU steps on a 135M model show the mechanics of each method, not the paper's result.
# Usage:
#   bash recipes/compare_cpu.sh [METHOD ...]                  (default: grpo smartthinker shorter_better)
#   TOTAL_STEPS=1 OUTPUT_DIR=/tmp/cmp bash recipes/compare_cpu.sh grpo shorter_better
#   COMPARE_OVERRIDES="actor_rollout_ref.actor.optim.lr=1e-5" bash recipes/compare_cpu.sh
# Methods: grpo (verl's own) or any registered shaping estimator (smartthinker, shorter_better, efficient_reasoning,
# kimi_length, laser_de). Each run is `run_demo_cpu.sh algorithm.adv_estimator=METHOD` with its own OUTPUT_DIR
# (OUTPUT_DIR/METHOD); everything else about the runs is run_demo_cpu.sh's. About 11 minutes per method on 2 idle cores.
# Writes OUTPUT_DIR/compare.md and OUTPUT_DIR/compare.png.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "${REPO_ROOT}/.venv/bin/python" ]]; then PYTHON="${REPO_ROOT}/.venv/bin/python"; else PYTHON="python3"; fi
fi
export PYTHON
export PYTHONPATH="${REPO_ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
OUTPUT_DIR="${OUTPUT_DIR:-outputs/compare_cpu}"
mkdir -p "${OUTPUT_DIR}"
OUTPUT_DIR="$(cd "${OUTPUT_DIR}" && pwd)"
METHODS=("$@")
if [[ ${#METHODS[@]} -eq 0 ]]; then
    METHODS=(grpo smartthinker shorter_better)
fi
read -r -a EXTRA <<<"${COMPARE_OVERRIDES:-}"

log() { echo "[compare $(date -u +%H:%M:%S)] $*" >&2; }

# Fail before any training on a name no estimator has (the list comes from the registries themselves).
"${PYTHON}" - "${METHODS[@]}" <<'PY'
import sys
import verl  # noqa: F401  (registers the plugin's estimators)
import smartthinker_verl.advantage  # noqa: F401
from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY
from smartthinker_verl.shaping import primary_methods
known = ["grpo", *(m.name for m in primary_methods())]
bad = [m for m in sys.argv[1:] if m != "grpo" and m not in ADV_ESTIMATOR_REGISTRY]
if bad:
    sys.exit(f"compare_cpu.sh: unknown method(s) {', '.join(bad)}. Fix: choose from {' '.join(known)}")
PY

# Overrides a method needs on the 96-token CPU demo (its defaults are sized for 8k-token responses).
method_overrides() {
    case "$1" in
        laser_de)
            echo "+algorithm.laser_de.length_lower_bound=16 +algorithm.laser_de.length_interval=16" \
                "+algorithm.laser_de.length_upper_bound=96 +algorithm.laser_de.truncation_length=96" \
                "+algorithm.laser_de.update_interval=2"
            ;;
    esac
}

START_ALL=${SECONDS}
RUN_ARGS=()
index=0
for method in "${METHODS[@]}"; do
    index=$((index + 1))
    run_dir="${OUTPUT_DIR}/${method}"
    log "run ${index}/${#METHODS[@]}: ${method} -> ${run_dir}"
    run_start=${SECONDS}
    read -r -a specific <<<"$(method_overrides "${method}")"
    # The run's full output goes to OUTPUT_DIR/METHOD.log; its per-step progress lines are shown live.
    set +e
    OUTPUT_DIR="${run_dir}" bash "${REPO_ROOT}/recipes/run_demo_cpu.sh" \
        "algorithm.adv_estimator=${method}" \
        "trainer.experiment_name=compare_${method}" \
        ${specific[@]+"${specific[@]}"} ${EXTRA[@]+"${EXTRA[@]}"} 2>&1 | tee "${run_dir}.log" |
        { grep --line-buffered -E '^ +step [0-9]|\] (training done|training FAILED)' >&2 || true; }
    status=${PIPESTATUS[0]}
    set -e
    if [[ "${status}" != "0" ]]; then
        log "run ${method} FAILED (exit ${status}) after $((SECONDS - run_start)) s; its output: ${run_dir}.log"
        tail -n 30 "${run_dir}.log" >&2
        exit 1
    fi
    log "run ${method} done in $((SECONDS - run_start)) s"
    RUN_ARGS+=(--run "${method}=${run_dir}/metrics.jsonl")
done

echo
"${PYTHON}" -m smartthinker_verl.demo.compare_report "${RUN_ARGS[@]}" --out "${OUTPUT_DIR}"
log "compared ${#METHODS[@]} method(s) in $((SECONDS - START_ALL)) s total"
