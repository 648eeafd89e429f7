#!/usr/bin/env bash
# `make compare`: the CPU demo (recipes/run_demo_cpu.sh: SmolLM2-135M on reasoning-gym chain_sum at 2, 3 and 4 terms)
# trained once per length-shaping method and seed on the same data, then per level a table and a plot of the final
# validation accuracy and mean response tokens with 95% intervals over seeds, and the training curves.
# Validation: VAL_PER_LEVEL (default 64) greedy prompts per level, 192 in all; a 95% binomial interval on 64 items
# is about ±0.12 wide at 40% accuracy, ±0.07 at 10%. The base model is validated once (the first run).
# Usage:
#   bash recipes/compare_cpu.sh [METHOD ...]                  (default: grpo smartthinker shorter_better)
#   SEEDS="0 1" TOTAL_STEPS=12 OUTPUT_DIR=outputs/compare_cpu bash recipes/compare_cpu.sh   (the defaults)
#   TOTAL_STEPS=1 SEEDS=0 OUTPUT_DIR=/tmp/cmp bash recipes/compare_cpu.sh grpo shorter_better
#   REPORT_ONLY=1 bash recipes/compare_cpu.sh      the table and plot from the runs finished so far, no training
#   COMPARE_OVERRIDES="actor_rollout_ref.actor.optim.lr=1e-5" bash recipes/compare_cpu.sh
# Methods: grpo (verl's own) or any registered shaping estimator (smartthinker, shorter_better, efficient_reasoning,
# kimi_length, laser_de). Each run is `run_demo_cpu.sh algorithm.adv_estimator=METHOD` with SEED=S and its own
# OUTPUT_DIR (OUTPUT_DIR/METHOD/seed_S); a run whose report.md exists is finished and not run again, so the same
# command continues an interrupted comparison. Runs go seed by seed (every method at seed 0 first). About 25 minutes
# per 12-step run on 2 idle cores (3.5 min start-up, ~100 s a step, two validations).
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
read -r -a SEED_LIST <<<"${SEEDS:-0 1}"
export TOTAL_STEPS="${TOTAL_STEPS:-12}" VAL_PER_LEVEL="${VAL_PER_LEVEL:-64}"

log() { echo "[compare $(date -u +%H:%M:%S)] $*" >&2; }

# Fail before any training on a name no estimator has (the list comes from the registries themselves).
"${PYTHON}" - "${METHODS[@]}" <<'PY'
import sys
import verl  # noqa: F401  (registers the plugin's estimators)
import smartthinker_verl.advantage  # noqa: F401
from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY
from smartthinker_verl.shaping import METHODS
known = ["grpo", *(m.name for m in METHODS.values())]
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
total=$((${#METHODS[@]} * ${#SEED_LIST[@]}))
index=0
for seed in "${SEED_LIST[@]}"; do
    for method in "${METHODS[@]}"; do
        index=$((index + 1))
        run_dir="${OUTPUT_DIR}/${method}/seed_${seed}"
        if [[ "${REPORT_ONLY:-0}" == "1" || -f "${run_dir}/report.md" ]]; then
            continue
        fi
        log "run ${index}/${total}: ${method}, seed ${seed}, ${TOTAL_STEPS} steps -> ${run_dir}"
        run_start=${SECONDS}
        read -r -a specific <<<"$(method_overrides "${method}")"
        # The base model's validation is the same for every run (greedy): only the first run does it.
        before=False
        [[ ${index} == 1 ]] && before=True
        mkdir -p "${run_dir}"
        # The run's full output goes to OUTPUT_DIR/METHOD/seed_S.log; its per-step progress lines are shown live.
        set +e
        OUTPUT_DIR="${run_dir}" SEED="${seed}" VAL_BEFORE_TRAIN="${before}" bash "${REPO_ROOT}/recipes/run_demo_cpu.sh" \
            "algorithm.adv_estimator=${method}" \
            "trainer.experiment_name=compare_${method}_seed${seed}" \
            ${specific[@]+"${specific[@]}"} ${EXTRA[@]+"${EXTRA[@]}"} 2>&1 | tee "${run_dir}.log" |
            { grep --line-buffered -E '^ +step [0-9]|\] (training done|training FAILED)' >&2 || true; }
        status=${PIPESTATUS[0]}
        set -e
        if [[ "${status}" != "0" ]]; then
            log "run ${method} seed ${seed} FAILED (exit ${status}) after $((SECONDS - run_start)) s: ${run_dir}.log"
            tail -n 30 "${run_dir}.log" >&2
            exit 1
        fi
        log "run ${method} seed ${seed} done in $((SECONDS - run_start)) s"
    done
done

# Every finished run (its report.md written) of these methods and seeds, also from earlier invocations.
RUN_ARGS=()
for method in "${METHODS[@]}"; do
    for seed in "${SEED_LIST[@]}"; do
        run_dir="${OUTPUT_DIR}/${method}/seed_${seed}"
        [[ -f "${run_dir}/report.md" ]] && RUN_ARGS+=(--run "${method}=${run_dir}/metrics.jsonl")
    done
done
if [[ ${#RUN_ARGS[@]} -eq 0 ]]; then
    log "no finished run under ${OUTPUT_DIR}: nothing to compare"
    exit 1
fi
echo
"${PYTHON}" -m smartthinker_verl.demo.compare_report "${RUN_ARGS[@]}" --out "${OUTPUT_DIR}"
log "compared $((${#RUN_ARGS[@]} / 2)) finished run(s); this invocation took $((SECONDS - START_ALL)) s"
