#!/usr/bin/env bash
# Submit a SmartThinker training run (or any command from this repo) to a Ray cluster as a Ray job.
#
#   bash recipes/submit_ray_job.sh [OPTIONS] [--] [HYDRA_OVERRIDE ...]
#
# Options:
#   --address URL        Ray dashboard address [$RAY_ADDRESS, else http://127.0.0.1:8265]
#   --recipe NAME        recipe to run in the job: run_1.5b | run_7b | run_qwen3_4b [run_1.5b]
#   --entrypoint CMD     run CMD in the job instead of a recipe (e.g. "python -m smartthinker_verl.launch.cluster_check");
#                        Hydra overrides are then not allowed
#   --env KEY=VALUE      extra environment variable of the job (repeatable)
#   --submission-id ID   job id [smartthinker-<recipe or entry>-<UTC time>-<random>]
#   --wait               follow the job's logs until it ends; exit 0 only if it SUCCEEDED
#   --print-runtime-env  print the runtime environment YAML and exit without submitting
#   -h, --help           this help
# Everything else (after the options, or after --) is passed to the recipe as Hydra overrides.
#
# The job runs on the interpreter this script resolves here, by absolute path: $PYTHON if set, else this checkout's
# .venv-gpu/bin/python or .venv/bin/python (as the recipes pick locally), else the python3 on this shell's PATH. The
# upload leaves the virtual environments behind, so the path must exist on the head node (a shared filesystem, or
# the same install path on every node); a recipe job gets it as PYTHON, a --entrypoint job finds it first on PATH
# (so `python -m ...` runs on it). Ray's worker processes run on the interpreter Ray was started with.
#
# The job's runtime environment ships this repository as `working_dir` (without .git, .venv, .venv-gpu, data,
# checkpoints, models, evals, outputs, wandb: Ray refuses a working_dir over 512 MiB) and sets
# VERL_USE_EXTERNAL_MODULES=smartthinker_verl.plugin, so every Ray process that imports verl registers SmartThinker
# even on nodes where the package is not pip-installed (verl and the other dependencies must be installed there).
# Forwarded when set here: PYTHON (always, see above) MODEL_PATH DATA_DIR NGPUS NNODES PROJECT EXPERIMENT
# CHECKPOINT_DIR RESUME SMARTTHINKER_SKIP_DOCTOR WANDB_API_KEY WANDB_ENTITY WANDB_MODE WANDB_PROJECT WANDB_BASE_URL
# WANDB_DIR HF_TOKEN HF_HOME VERL_FILE_LOGGER_PATH VERL_FILE_LOGGER_ROOT (secrets end up in the job's runtime env,
# visible on the dashboard: prefer credentials configured on the nodes). The job runs in Ray's temporary copy of
# working_dir, so the folders that outlive it are made absolute: a relative WANDB_DIR / VERL_FILE_LOGGER_PATH /
# VERL_FILE_LOGGER_ROOT is taken from the folder this script runs in, and a recipe job without them writes wandb's
# files and the `file` logger's JSONL under CHECKPOINT_DIR (CHECKPOINT_DIR/wandb/,
# CHECKPOINT_DIR/<project>/<experiment>.jsonl).
# DATA_DIR defaults to this checkout's absolute data/ directory: the nodes must see it at that path (a shared
# filesystem), or set DATA_DIR. A recipe job needs an ABSOLUTE checkpoint folder on a shared filesystem
# (CHECKPOINT_DIR=/shared/checkpoints, or trainer.default_local_dir=/shared/...): a relative one would land in
# Ray's per-job working_dir copy on each node, which Ray may delete. The script refuses to submit without one.
set -euo pipefail

# ---- settings -------------------------------------------------------------------------------------------------
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ADDRESS="${RAY_ADDRESS:-http://127.0.0.1:8265}"
RECIPE="run_1.5b"
ENTRYPOINT=""
WAIT=0
PRINT_ONLY=0
SUBMISSION_ID=""
EXTRA_ENV=()
FORWARDED_ENV=(PYTHON MODEL_PATH DATA_DIR NGPUS NNODES PROJECT EXPERIMENT CHECKPOINT_DIR RESUME SMARTTHINKER_SKIP_DOCTOR
    WANDB_API_KEY WANDB_ENTITY WANDB_MODE WANDB_PROJECT WANDB_BASE_URL WANDB_DIR HF_TOKEN HF_HOME
    VERL_FILE_LOGGER_PATH VERL_FILE_LOGGER_ROOT)
# Paths that must not point into the job's temporary working_dir copy.
PATH_ENV=(WANDB_DIR VERL_FILE_LOGGER_PATH VERL_FILE_LOGGER_ROOT)
# gitignore syntax, relative to the repository root.
EXCLUDES=("/.git/" "/.venv/" "/.venv-gpu/" "/data/" "/checkpoints/" "/models/" "/evals/" "/outputs/" "/wandb/"
    "__pycache__/" ".pytest_cache/" ".ruff_cache/")
RAY_BIN="${RAY_BIN:-ray}"
for venv in .venv-gpu .venv; do
    if ! command -v "${RAY_BIN}" >/dev/null 2>&1 && [[ -x "${REPO_ROOT}/${venv}/bin/ray" ]]; then
        RAY_BIN="${REPO_ROOT}/${venv}/bin/ray"
    fi
done
# The job's interpreter (see the header): never left to the head node's PATH.
if [[ -z "${PYTHON:-}" ]]; then
    PYTHON="python3"
    for venv in .venv-gpu .venv; do
        if [[ -x "${REPO_ROOT}/${venv}/bin/python" ]]; then PYTHON="${REPO_ROOT}/${venv}/bin/python"; break; fi
    done
fi
# ----------------------------------------------------------------------------------------------------------------

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "submit_ray_job.sh: $*" >&2; exit 2; }
[[ "${PYTHON}" == /* ]] || PYTHON="$(command -v "${PYTHON}")" || PYTHON=""
[[ -x "${PYTHON}" ]] || die "no interpreter for the job (PYTHON unset and no python3 on PATH, or PYTHON not" \
    "executable); set PYTHON=/path/to/env/bin/python"
PYTHON_DIR="$(dirname "${PYTHON}")"

OVERRIDES=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --address) [[ $# -ge 2 ]] || die "--address needs a URL"; ADDRESS="$2"; shift 2 ;;
        --recipe) [[ $# -ge 2 ]] || die "--recipe needs a name"; RECIPE="${2%.sh}"; shift 2 ;;
        --entrypoint) [[ $# -ge 2 ]] || die "--entrypoint needs a command"; ENTRYPOINT="$2"; shift 2 ;;
        --env)
            [[ $# -ge 2 && "$2" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env needs KEY=VALUE (KEY a variable name)"
            EXTRA_ENV+=("$2"); shift 2 ;;
        --submission-id) [[ $# -ge 2 ]] || die "--submission-id needs an id"; SUBMISSION_ID="$2"; shift 2 ;;
        --wait) WAIT=1; shift ;;
        --print-runtime-env) PRINT_ONLY=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; OVERRIDES+=("$@"); break ;;
        --*) die "unknown option $1 (see --help); Hydra overrides have the form key=value" ;;
        *) OVERRIDES+=("$1"); shift ;;
    esac
done

if [[ -n "${ENTRYPOINT}" ]]; then
    [[ ${#OVERRIDES[@]} -eq 0 ]] || die "Hydra overrides (${OVERRIDES[*]}) apply to a recipe, not to --entrypoint"
    # `ray job submit` shell-quotes each word it is given: a command line travels as `bash -c CMD`.
    JOB_ARGV=(bash -c "PATH=$(printf '%q' "${PYTHON_DIR}"):\$PATH; ${ENTRYPOINT}")
    NAME_PART="$(basename "${ENTRYPOINT%% *}")"
    [[ "${ENTRYPOINT}" == *" -m "* ]] && NAME_PART="$(sed -E 's/.* -m ([^ ]+).*/\1/' <<<"${ENTRYPOINT}")"
else
    [[ -f "${REPO_ROOT}/recipes/${RECIPE}.sh" ]] \
        || die "no recipe recipes/${RECIPE}.sh (use run_1.5b, run_7b or run_qwen3_4b)"
    JOB_ARGV=(bash "recipes/${RECIPE}.sh" ${OVERRIDES[@]+"${OVERRIDES[@]}"})
    NAME_PART="${RECIPE}"
    # The nodes read the data where this checkout has it, unless told otherwise.
    export DATA_DIR="${DATA_DIR:-${REPO_ROOT}/data}"
    [[ -d "${DATA_DIR}" ]] || echo "submit_ray_job.sh: warning: DATA_DIR=${DATA_DIR} does not exist here;" \
        "the job fails unless the nodes have it (see docs/gpu.md)" >&2
    # Checkpoints: an absolute folder every node sees, never a relative one (see the header).
    CKPT_OVERRIDE=""
    for override in ${OVERRIDES[@]+"${OVERRIDES[@]}"}; do
        [[ "${override}" == trainer.default_local_dir=* || "${override}" == +trainer.default_local_dir=* ]] \
            && CKPT_OVERRIDE="${override#*=}"
    done
    CKPT_OVERRIDE="${CKPT_OVERRIDE#[\'\"]}"
    CKPT_OVERRIDE="${CKPT_OVERRIDE%[\'\"]}"
    if [[ -n "${CKPT_OVERRIDE}" ]]; then
        [[ "${CKPT_OVERRIDE}" == /* || "${CKPT_OVERRIDE}" =~ ^[a-z0-9]+:// ]] || die \
            "trainer.default_local_dir=${CKPT_OVERRIDE} is relative: in a Ray job it lands in Ray's per-job working_dir copy on each node" \
            "(deleted by Ray), so resume and convert break. Fix: an absolute folder on a shared filesystem."
    elif [[ "${CHECKPOINT_DIR:-}" != /* ]]; then
        die "a recipe job needs an absolute checkpoint folder on a filesystem every node mounts at the same path" \
            "(a relative one lands in Ray's per-job working_dir copy on each node, which Ray may delete; resume and" \
            "convert then break). Fix: CHECKPOINT_DIR=/shared/checkpoints bash recipes/submit_ray_job.sh ..." \
            "(or trainer.default_local_dir=/shared/checkpoints/RUN)."
    fi
fi
# wandb's files and the `file` logger's JSONL outlive the job: absolute paths, by default beside the checkpoints.
for name in "${PATH_ENV[@]}"; do
    if [[ -n "${!name:-}" && "${!name}" != /* ]]; then
        export "${name}=${PWD}/${!name}"
    fi
done
LOG_ROOT="${CHECKPOINT_DIR:-${CKPT_OVERRIDE:-}}"
if [[ -z "${ENTRYPOINT}" && "${LOG_ROOT}" == /* ]]; then
    export WANDB_DIR="${WANDB_DIR:-${LOG_ROOT%/}}"
    [[ -n "${VERL_FILE_LOGGER_PATH:-}" ]] || export VERL_FILE_LOGGER_ROOT="${VERL_FILE_LOGGER_ROOT:-${LOG_ROOT%/}}"
fi
NAME_PART="${NAME_PART//[^A-Za-z0-9._-]/_}"
JOB_COMMAND="$(printf '%q ' "${JOB_ARGV[@]}")"
JOB_COMMAND="${JOB_COMMAND% }"
SUBMISSION_ID="${SUBMISSION_ID:-smartthinker-${NAME_PART}-$(date -u +%Y%m%d-%H%M%S)-${RANDOM}}"

# ---- runtime environment (YAML; values JSON-quoted, which YAML reads as strings) --------------------------------
json_quote() { "${PYTHON}" -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }
RUNTIME_ENV_DIR="$(mktemp -d "${TMPDIR:-/tmp}/smartthinker-submit.XXXXXX")"
trap 'rm -rf "${RUNTIME_ENV_DIR}"' EXIT
RUNTIME_ENV="${RUNTIME_ENV_DIR}/runtime_env.yaml"
# The plugin module is always in the list (kept with any modules the caller already names).
EXTERNAL_MODULES="${VERL_USE_EXTERNAL_MODULES:-}"
[[ ",${EXTERNAL_MODULES}," == *",smartthinker_verl.plugin,"* ]] \
    || EXTERNAL_MODULES="${EXTERNAL_MODULES:+${EXTERNAL_MODULES},}smartthinker_verl.plugin"
{
    echo "working_dir: $(json_quote "${REPO_ROOT}")"
    echo "excludes:"
    for pattern in "${EXCLUDES[@]}"; do echo "  - $(json_quote "${pattern}")"; done
    echo "env_vars:"
    echo "  VERL_USE_EXTERNAL_MODULES: $(json_quote "${EXTERNAL_MODULES}")"
    # The recipes' config check then refuses a relative trainer.default_local_dir (launch.validate.RAY_JOB_ENV).
    echo "  SMARTTHINKER_RAY_JOB: \"1\""
    for name in "${FORWARDED_ENV[@]}"; do
        if [[ -n "${!name:-}" ]]; then echo "  ${name}: $(json_quote "${!name}")"; fi
    done
    for pair in ${EXTRA_ENV[@]+"${EXTRA_ENV[@]}"}; do
        echo "  ${pair%%=*}: $(json_quote "${pair#*=}")"
    done
} >"${RUNTIME_ENV}"

if [[ ${PRINT_ONLY} -eq 1 ]]; then
    cat "${RUNTIME_ENV}"
    echo "# entrypoint: ${JOB_COMMAND}"
    exit 0
fi

# A token-protected cluster (Ray writes ~/.ray/auth_token) rejects clients that do not send the token.
if [[ -f "${HOME}/.ray/auth_token" && -z "${RAY_AUTH_MODE:-}" ]]; then
    export RAY_AUTH_MODE=token
fi

echo "submit_ray_job.sh: submitting ${SUBMISSION_ID} to ${ADDRESS}: ${JOB_COMMAND} (interpreter ${PYTHON})" >&2
"${RAY_BIN}" job submit --address "${ADDRESS}" --runtime-env "${RUNTIME_ENV}" --submission-id "${SUBMISSION_ID}" \
    --no-wait -- "${JOB_ARGV[@]}" >&2

echo "${SUBMISSION_ID}"
cat >&2 <<EOF
job id:  ${SUBMISSION_ID}
logs:    ${RAY_BIN} job logs --address ${ADDRESS} --follow ${SUBMISSION_ID}
status:  ${RAY_BIN} job status --address ${ADDRESS} ${SUBMISSION_ID}
stop:    ${RAY_BIN} job stop --address ${ADDRESS} ${SUBMISSION_ID}
EOF

if [[ ${WAIT} -eq 1 ]]; then
    "${RAY_BIN}" job logs --address "${ADDRESS}" --follow "${SUBMISSION_ID}" >&2 || true
    STATUS="$("${RAY_BIN}" job status --address "${ADDRESS}" "${SUBMISSION_ID}" 2>&1 || true)"
    if grep -qiE "succeeded" <<<"${STATUS}"; then
        echo "submit_ray_job.sh: job ${SUBMISSION_ID} SUCCEEDED" >&2
    else
        echo "${STATUS}" >&2
        echo "submit_ray_job.sh: job ${SUBMISSION_ID} did not succeed (FAILED or STOPPED)" >&2
        exit 1
    fi
fi
