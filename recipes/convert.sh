#!/usr/bin/env bash
# Convert a recipe run's FSDP checkpoint into a Hugging Face model (smartthinker-verl convert).
# Usage:
#   bash recipes/convert.sh RECIPE [CONVERT_OPTION ...] [-- HYDRA_OVERRIDE ...]
#   bash recipes/convert.sh RUN_DIR [CONVERT_OPTION ...]
# RECIPE is a recipe name (run_1.5b, run_7b, run_qwen3_4b) or the path of a recipe script: its checkpoint folder
# (trainer.default_local_dir) is found by composing the recipe's config with the same environment (PROJECT,
# EXPERIMENT, ...) and the Hydra overrides given after `--` as the training run had. RUN_DIR is the checkpoint
# folder itself. CONVERT_OPTIONs go to `smartthinker-verl convert` (--step N|latest, --out DIR,
# --dtype auto|bfloat16|float32, --no-verify, --force, --keep-adapter, ...). Examples:
#   bash recipes/convert.sh run_1.5b
#   bash recipes/convert.sh run_1.5b --step 100 --dtype float32 -- trainer.experiment_name=my-run
#   bash recipes/convert.sh checkpoints/smartthinker/my-run --out /models/my-run
# Output: RUN_DIR/hf/global_step_N unless --out is given.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "${REPO_ROOT}/.venv/bin/python" ]]; then PYTHON="${REPO_ROOT}/.venv/bin/python"; else PYTHON=python3; fi
fi
log() { echo "[convert $(date -u +%H:%M:%S)] $*" >&2; }

if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit $(( $# < 1 ? 2 : 0 ))
fi
target="$1"
shift
convert_args=()
overrides=()
while [[ $# -gt 0 ]]; do
    if [[ "$1" == "--" ]]; then
        shift
        overrides=("$@")
        break
    fi
    convert_args+=("$1")
    shift
done

run_config=""
if [[ -d "${target}" ]]; then
    run_dir="${target}"
    if [[ ${#overrides[@]} -gt 0 ]]; then
        log "Hydra overrides are only used with a RECIPE; ignoring: ${overrides[*]}"
    fi
else
    recipe="${target}"
    [[ -f "${recipe}" ]] || recipe="${REPO_ROOT}/recipes/${target%.sh}.sh"
    if [[ ! -f "${recipe}" ]]; then
        log "${target} is neither a run directory nor a recipe (looked for ${recipe});" \
            "recipes: $(cd "${REPO_ROOT}/recipes" && ls run_*.sh | tr '\n' ' ')"
        exit 2
    fi
    log "composing ${recipe##*/}'s config to find its checkpoint folder"
    run_config="$(mktemp -t smartthinker-config-XXXXXX.yaml)"
    trap 'rm -f "${run_config}"' EXIT
    if ! bash "${recipe}" --dry-run "${overrides[@]}" >"${run_config}"; then
        log "the recipe's config did not compose (see above); fix the overrides after --"
        exit 2
    fi
    run_dir="$("${PYTHON}" -c '
import sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
print(config["trainer"]["default_local_dir"])
' "${run_config}")"
fi

if [[ ! -d "${run_dir}" ]]; then
    log "no checkpoint folder ${run_dir}: has the run saved a checkpoint (trainer.save_freq)? If it ran with other" \
        "overrides or EXPERIMENT, pass the same ones (overrides after --), or pass RUN_DIR directly"
    exit 2
fi
extra=()
# The model card reads the run's config from RUN_DIR/config.yaml; else give it the recipe's composed config.
if [[ -n "${run_config}" && ! -f "${run_dir}/config.yaml" ]]; then
    case " ${convert_args[*]:-} " in
        *" --run-config "*) ;;
        *) extra=(--run-config "${run_config}") ;;
    esac
fi

log "converting ${run_dir}"
exec_bin="${REPO_ROOT}/.venv/bin/smartthinker-verl"
[[ -x "${exec_bin}" ]] || exec_bin="smartthinker-verl"
"${exec_bin}" convert "${run_dir}" "${extra[@]}" "${convert_args[@]}"
