# Shared environment and launcher of the SmartThinker recipes. Sourced by recipes/run_*.sh, never run.
#
# A recipe sets its settings (RECIPE_MODEL_PATH, RECIPE_TOTAL_STEPS, ...) and then calls
# `smartthinker_run "$@"`. What users may override by environment (defaults in brackets):
#   MODEL_PATH   [the recipe's model]      local directory or Hugging Face id
#   DATA_DIR     [<repo>/data]             holds deepscaler/train.parquet, aime25/ amc23/ math500/test.parquet
#   NGPUS        [4]                       GPUs per node
#   NNODES       [1]                       nodes
#   PROJECT      [smartthinker]            trainer.project_name (wandb project)
#   EXPERIMENT   [built from the settings] trainer.experiment_name (wandb run, checkpoint folder)
#   CHECKPOINT_DIR [unset: checkpoints/ under the launch folder] absolute folder for checkpoints; the run's go to
#                CHECKPOINT_DIR/<project>/<experiment>. Required (absolute, on a shared filesystem) with NNODES > 1
#                and in Ray jobs.
#   RESUME       [unset] 1: continue the run folder from its last checkpoint; 0: start over in it. Unset: a folder
#                that already holds a checkpoint stops the run with both fixes (never a silent resume).
#   SMARTTHINKER_SKIP_DOCTOR [0] 1: skip the preflight `smartthinker-verl doctor` (same as --skip-doctor)
#   PYTHON       [<repo>/.venv-gpu/bin/python (make install-gpu), else <repo>/.venv/bin/python, else python3]
# Arguments: `--dry-run` composes and validates without GPUs and prints the resolved YAML on stdout;
# `--skip-doctor` skips the preflight on the Ray cluster; `--doctor-only` runs only the preflight, on the run this
# recipe would start (its environment and overrides), and exits with its status; every other argument is a Hydra
# override (key=value, +new.key=value, ~key) applied last. Options come before the overrides. The recipes train
# with flash-attn; `+attention=sdpa` trains with PyTorch's sdpa and the recipe's RECIPE_SDPA_MAX_TOKEN_LEN_PER_GPU.

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
    echo "recipes/common.sh is sourced by the recipes, not run" >&2
    exit 2
fi

SMARTTHINKER_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The GPU environment first: where both exist, .venv is the CPU build (vLLM for CPUs, `make install`).
if [[ -z "${PYTHON:-}" ]]; then
    PYTHON="python3"
    for venv in .venv-gpu .venv; do
        if [[ -x "${SMARTTHINKER_REPO_ROOT}/${venv}/bin/python" ]]; then
            PYTHON="${SMARTTHINKER_REPO_ROOT}/${venv}/bin/python"
            break
        fi
    done
fi

DATA_DIR="${DATA_DIR:-${SMARTTHINKER_REPO_ROOT}/data}"
NGPUS="${NGPUS:-4}"
NNODES="${NNODES:-1}"
PROJECT="${PROJECT:-smartthinker}"
EXPERIMENT="${EXPERIMENT:-}"
CHECKPOINT_DIR="${CHECKPOINT_DIR:-}"

# The plugin reaches every Ray process through `import verl`, also where the package is not pip-installed
# (code shipped only by a Ray job's working_dir); the source tree goes on the path for the same reason.
export VERL_USE_EXTERNAL_MODULES="${VERL_USE_EXTERNAL_MODULES:-smartthinker_verl.plugin}"
export PYTHONPATH="${SMARTTHINKER_REPO_ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
export HYDRA_FULL_ERROR=1

smartthinker_log() {
    echo "[smartthinker $(date -u +%H:%M:%S)] $*" >&2
}

# smartthinker_run [--dry-run] [OVERRIDE ...]: build the recipe's overrides and start (or dry-run) training.
smartthinker_run() {
    local mode="" doctor=1 doctor_only=0
    [[ "${SMARTTHINKER_SKIP_DOCTOR:-0}" == "1" ]] && doctor=0
    while [[ "${1:-}" == --* ]]; do
        case "$1" in
            --dry-run) mode="--dry-run"; shift ;;
            --skip-doctor) doctor=0; shift ;;
            --doctor-only) doctor_only=1; shift ;;
            *) break ;;
        esac
    done
    local arg budget="${RECIPE_MAX_TOKEN_LEN_PER_GPU:-32768}"
    for arg in "$@"; do
        # sdpa pads micro-batches: the model's smaller budget (docs/gpu.md, "Without flash-attn").
        [[ "${arg}" == "+attention=sdpa" ]] && budget="${RECIPE_SDPA_MAX_TOKEN_LEN_PER_GPU:-12288}"
        if [[ "${arg}" == --* ]]; then
            smartthinker_log "unknown option ${arg}: the options are --dry-run and --skip-doctor (before the" \
                "overrides), or --doctor-only; everything else is a Hydra override key=value"
            return 2
        fi
    done

    : "${RECIPE_MODEL_PATH:?the recipe must set RECIPE_MODEL_PATH}"
    : "${RECIPE_TOTAL_STEPS:?the recipe must set RECIPE_TOTAL_STEPS}"
    local model_path="${MODEL_PATH:-${RECIPE_MODEL_PATH}}"

    local overrides=(
        "actor_rollout_ref.model.path='${model_path}'"
        "data.train_files='${DATA_DIR}/deepscaler/train.parquet'"
        "data.val_files=['${DATA_DIR}/aime25/test.parquet','${DATA_DIR}/amc23/test.parquet','${DATA_DIR}/math500/test.parquet']"
        "trainer.n_gpus_per_node=${NGPUS}"
        "trainer.nnodes=${NNODES}"
        "trainer.project_name='${PROJECT}'"
        "trainer.total_training_steps=${RECIPE_TOTAL_STEPS}"
        "actor_rollout_ref.rollout.tensor_model_parallel_size=${RECIPE_ROLLOUT_TP:-1}"
        "actor_rollout_ref.rollout.gpu_memory_utilization=${RECIPE_GPU_MEMORY_UTILIZATION:-0.6}"
        "actor_rollout_ref.actor.ppo_max_token_len_per_gpu=${budget}"
    )
    if [[ -n "${EXPERIMENT}" ]]; then
        overrides+=("trainer.experiment_name='${EXPERIMENT}'")
    fi
    if [[ -n "${CHECKPOINT_DIR}" ]]; then
        if [[ "${CHECKPOINT_DIR}" != /* ]]; then
            smartthinker_log "CHECKPOINT_DIR=${CHECKPOINT_DIR} is relative: give an absolute folder (every node" \
                "must see it at that path when NNODES > 1)"
            return 2
        fi
        overrides+=("trainer.default_local_dir='${CHECKPOINT_DIR%/}/\${trainer.project_name}/\${trainer.experiment_name}'")
    fi
    if [[ -n "${RECIPE_MAX_NUM_SEQS:-}" ]]; then
        overrides+=("actor_rollout_ref.rollout.max_num_seqs=${RECIPE_MAX_NUM_SEQS}")
    fi
    if [[ -n "${RECIPE_EXTRA_OVERRIDES+x}" ]]; then
        overrides+=("${RECIPE_EXTRA_OVERRIDES[@]}")
    fi
    # The user's arguments come last, so they win.
    overrides+=("$@")

    smartthinker_log "${RECIPE_NAME:-recipe}: model ${model_path}, data ${DATA_DIR}, ${NNODES} node(s) x ${NGPUS} GPU(s)" \
        "${mode:+(dry run)}${RESUME:+ RESUME=${RESUME}}"
    # The preflight on every node of the Ray cluster (GPUs, driver, vLLM, memory, disk, shared checkpoint folder,
    # wandb, data): docs/gpu.md "Preflight". A dry run needs no cluster.
    if [[ "${doctor_only}" == "1" && ( -n "${mode}" || "${doctor}" == "0" ) ]]; then
        smartthinker_log "--doctor-only runs only the preflight: drop --dry-run, --skip-doctor and SMARTTHINKER_SKIP_DOCTOR"
        return 2
    fi
    if [[ -z "${mode}" && "${doctor}" == "1" ]]; then
        smartthinker_log "preflight: smartthinker-verl doctor (skip with --skip-doctor or SMARTTHINKER_SKIP_DOCTOR=1)"
        "${PYTHON}" -m smartthinker_verl.cli doctor --recipe "${RECIPE_NAME:-recipe}" "${overrides[@]}" || return $?
        if [[ "${doctor_only}" == "1" ]]; then return 0; fi
    fi
    # Config checks (plugin import, registered names, batch sizes, data files, resume) run in Python before
    # anything starts.
    "${PYTHON}" -m smartthinker_verl.launch.train ${mode:+"${mode}"} "${overrides[@]}"
}
