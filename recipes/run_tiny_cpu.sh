#!/usr/bin/env bash
# The fast end-to-end run on CPU: verl's own trainer on the CPU config (the recipe config + what CPU needs,
# smartthinker_verl/launch/config/platform/cpu.yaml) with SmartThinker's estimator and reward manager on a
# tiny Qwen2 (random weights briefly fitted offline to the answer format, so that some answers are right and the
# length shaping acts; see smartthinker_verl/demo/assets.py).
# 3 training steps, a validation pass, a checkpoint, then the checkpoint converted to a Hugging Face model.
# Usage:
#   bash recipes/run_tiny_cpu.sh [HYDRA_OVERRIDE ...]
#   OUTPUT_DIR=/tmp/tiny bash recipes/run_tiny_cpu.sh trainer.total_training_steps=5
# Writes everything under OUTPUT_DIR: data/, checkpoints/, metrics.jsonl, train.log, hf/.
set -euo pipefail

# ---- settings -------------------------------------------------------------------------------------------------
OUTPUT_DIR="${OUTPUT_DIR:-outputs/tiny_cpu}"
TOTAL_STEPS="${TOTAL_STEPS:-3}"
PROMPTS_PER_STEP=4           # data.train_batch_size
ROLLOUTS_PER_PROMPT=8        # actor_rollout_ref.rollout.n (GRPO group size): 8 so groups hold several right answers
MAX_PROMPT_TOKENS=96
MAX_RESPONSE_TOKENS=64
TRAIN_ROWS=16
VAL_ROWS=8
LEARNING_RATE=1e-3           # a tiny model: large steps so the gradient visibly moves it
TEMPERATURE=1.0              # not the paper's 0.6: the tiny model needs diverse samples for mixed groups
# One torch thread per process: more only adds synchronisation for a model this small.
export SMARTTHINKER_CPU_THREADS="${SMARTTHINKER_CPU_THREADS:-1}"
# ----------------------------------------------------------------------------------------------------------------

source "$(dirname "${BASH_SOURCE[0]}")/cpu_common.sh"
stv_layout

stv_log "tiny CPU run -> ${OUTPUT_DIR}"
stv_log "assets and data"
stv_prepare_assets tiny
MODEL_PATH="$("${PYTHON}" -m smartthinker_verl.demo.assets path tiny)"
"${PYTHON}" -m smartthinker_verl.demo.data --out "${DATA_DIR}" --train "${TRAIN_ROWS}" --val "${VAL_ROWS}" \
    --difficulty digits >/dev/null
# A re-run starts from scratch (verl would otherwise resume from the last checkpoint); RESUME=1 continues instead.
[[ "${RESUME:-0}" == "1" ]] || rm -rf "${CKPT_DIR}" "${OUTPUT_DIR}/hf" "${METRICS}"

stv_log "training ${TOTAL_STEPS} steps (verl's trainer, estimator smartthinker, reward manager smartthinker)"
export VERL_FILE_LOGGER_PATH="${METRICS}"
stv_train "${OUTPUT_DIR}/train.log" "${TOTAL_STEPS}" \
    "data.train_files=${DATA_DIR}/train.parquet" \
    "data.val_files=${DATA_DIR}/val.parquet" \
    "data.train_batch_size=${PROMPTS_PER_STEP}" \
    "data.max_prompt_length=${MAX_PROMPT_TOKENS}" \
    "data.max_response_length=${MAX_RESPONSE_TOKENS}" \
    "actor_rollout_ref.model.path=${MODEL_PATH}" \
    "actor_rollout_ref.actor.optim.lr=${LEARNING_RATE}" \
    "actor_rollout_ref.actor.ppo_mini_batch_size=${PROMPTS_PER_STEP}" \
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=16" \
    "actor_rollout_ref.rollout.n=${ROLLOUTS_PER_PROMPT}" \
    "actor_rollout_ref.rollout.temperature=${TEMPERATURE}" \
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=16" \
    "trainer.total_training_steps=${TOTAL_STEPS}" \
    "trainer.save_freq=${TOTAL_STEPS}" \
    "trainer.test_freq=${TOTAL_STEPS}" \
    "trainer.val_before_train=False" \
    "trainer.project_name=smartthinker_cpu" \
    "trainer.experiment_name=tiny" \
    "trainer.default_local_dir=${CKPT_DIR}" \
    "$@"
stv_log "training done in $((SECONDS - START)) s; metrics: ${METRICS}"

STEP="$(cat "${CKPT_DIR}/latest_checkpointed_iteration.txt")"
stv_log "converting checkpoint global_step_${STEP} -> ${OUTPUT_DIR}/hf"
"${PYTHON}" -m smartthinker_verl.cli convert "${CKPT_DIR}" --out "${OUTPUT_DIR}/hf"
stv_log "done in $((SECONDS - START)) s: checkpoint ${CKPT_DIR}/global_step_${STEP}, model ${OUTPUT_DIR}/hf"
