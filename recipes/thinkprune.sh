#!/usr/bin/env bash
# ThinkPrune (Hou et al. 2025, arXiv 2504.01296) as a preset: plain GRPO under a response-length cap, in rounds of
# shrinking caps (4k, then 3k, then 2k tokens), each round starting from the previous round's model. A response cut
# off at the cap never closes its thinking, so the scorer's </think> gate (on in the recipe yaml) scores it 0: that
# is ThinkPrune's only length signal; there is no length reward.
# Usage:
#   ROUND=1 bash recipes/thinkprune.sh [--dry-run] [HYDRA_OVERRIDE ...]        # cap 4096, from the base model
#   smartthinker-verl convert checkpoints/thinkprune/round1 --out checkpoints/thinkprune/round1/hf
#   ROUND=2 bash recipes/thinkprune.sh                                          # cap 3072, from round 1's model
#   ROUND=3 bash recipes/thinkprune.sh                                          # cap 2048, from round 2's model
# Environment (plus recipes/common.sh's): ROUND [1], STEPS [100] training steps per round (the paper trains each
# round until the length settles; choose yours), CHECKPOINT_ROOT [checkpoints/thinkprune], PREVIOUS_MODEL [round
# N-1's converted model: CHECKPOINT_ROOT/round<N-1>/hf] (rounds 2 and 3), MODEL_PATH [the base model] (round 1).
set -euo pipefail

ROUND="${ROUND:-1}"
# ---- settings -------------------------------------------------------------------------------------------------
RECIPE_NAME="thinkprune-round${ROUND}"
case "${ROUND}" in
    1) LIMIT=4096 ;;
    2) LIMIT=3072 ;;
    3) LIMIT=2048 ;;
    *)
        echo "recipes/thinkprune.sh: ROUND=${ROUND} is not a ThinkPrune round. Fix: ROUND=1 (4096 tokens)," \
            "ROUND=2 (3072) or ROUND=3 (2048), in that order" >&2
        exit 2
        ;;
esac
CHECKPOINT_ROOT="${CHECKPOINT_ROOT:-checkpoints/thinkprune}"
RECIPE_MODEL_PATH="deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
if [[ "${ROUND}" != "1" ]]; then
    previous="${PREVIOUS_MODEL:-${CHECKPOINT_ROOT}/round$((ROUND - 1))/hf}"
    if [[ ! -f "${previous}/config.json" ]]; then
        echo "recipes/thinkprune.sh: round ${ROUND} starts from round $((ROUND - 1))'s model, but ${previous} holds" \
            "no Hugging Face model (config.json). Fix: run ROUND=$((ROUND - 1)) bash recipes/thinkprune.sh, then" \
            "smartthinker-verl convert ${CHECKPOINT_ROOT}/round$((ROUND - 1)) --out ${previous};" \
            "or point PREVIOUS_MODEL at that round's converted model" >&2
        exit 2
    fi
    RECIPE_MODEL_PATH="${previous}"
    MODEL_PATH="${previous}"  # a round after the first always continues from the previous round
fi
RECIPE_TOTAL_STEPS="${STEPS:-100}"
RECIPE_ROLLOUT_TP=1
RECIPE_GPU_MEMORY_UTILIZATION=0.6
RECIPE_MAX_TOKEN_LEN_PER_GPU=32768
RECIPE_EXTRA_OVERRIDES=(
    "algorithm.adv_estimator=grpo"
    "data.max_response_length=${LIMIT}"
    "+reward.smartthinker.require_think_close=true"
    "trainer.default_local_dir=${CHECKPOINT_ROOT}/round${ROUND}"
    "trainer.experiment_name=thinkprune-round${ROUND}-L${LIMIT}"
)
# ----------------------------------------------------------------------------------------------------------------

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
smartthinker_log "ThinkPrune round ${ROUND}: response cap ${LIMIT} tokens, plain GRPO, </think> gate on"
smartthinker_run "$@"
