"""verl adapter: the advantage estimator ``smartthinker`` (alias ``grpo_smartthinker``).

verl 0.9.1 calls a registered estimator from ``compute_advantage`` (in the TaskRunner process) as::

    fn(token_level_rewards=[bs, L], response_mask=[bs, L], config=<config.algorithm>, index=<uid array [bs]>)

This adapter only unpacks those arguments; the maths is in :mod:`smartthinker_verl.calibration`:

- length l_i = ``response_mask.sum(-1)``; outcome score = ``token_level_rewards.sum(-1)`` (verl puts the reward
  manager's score on the last valid token); correct a_i = score >= ``correct_threshold``; group = ``index``;
- shaped reward r_i = score_i - coef_g * s_i (eqs. 1-4; with a 1/0 scorer score_i = a_i, as in the paper);
- GRPO: A_i = (r_i - mean_g r) / (std_g r + epsilon), or r_i - mean_g r when
  ``algorithm.norm_adv_by_std_in_grpo=False``; broadcast over the response tokens (zero outside the mask).

A batch where no group is shaped gives verl's ``grpo`` advantages. The step's statistics go to
:mod:`smartthinker_verl.metrics`, which merges them into verl's logged metrics.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo.core_algos import register_adv_est

from smartthinker_verl import metrics
from smartthinker_verl.calibration import CalibrationResult, calibrate, group_ids_from_index, grpo_normalize
from smartthinker_verl.config import SmartThinkerConfig, select

logger = logging.getLogger(__name__)

ESTIMATOR_NAME = "smartthinker"
ESTIMATOR_ALIASES = ("grpo_smartthinker",)


class SmartThinkerEstimatorError(ValueError):
    """The estimator cannot run with the given inputs or configuration; the message names the fix."""


def shaped_advantages(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray | list,
    options: SmartThinkerConfig,
    norm_adv_by_std_in_grpo: bool = True,
) -> tuple[torch.Tensor, CalibrationResult]:
    """SmartThinker advantages for one batch.

    Args:
        token_level_rewards: ``[bs, L]`` rewards; the outcome score is their sum over tokens.
        response_mask: ``[bs, L]`` 1 on valid response tokens.
        index: ``[bs]`` group key per response (verl's ``uid``).
        options: the SmartThinker options.
        norm_adv_by_std_in_grpo: divide by the group std (GRPO) or not (Dr. GRPO).

    Returns:
        ``(advantages [bs, L] in the rewards' dtype, calibration result)``.
    """
    if token_level_rewards.shape != response_mask.shape or token_level_rewards.ndim != 2:
        raise SmartThinkerEstimatorError(
            f"token_level_rewards {tuple(token_level_rewards.shape)} and response_mask {tuple(response_mask.shape)} "
            "must both be [batch, response_length]"
        )
    if index is None:
        raise SmartThinkerEstimatorError(
            "the smartthinker estimator needs the group of every response (verl's `uid` as `index`); "
            "use it with GRPO-style rollouts (actor_rollout_ref.rollout.n > 1)"
        )
    if len(index) != token_level_rewards.shape[0]:
        raise SmartThinkerEstimatorError(
            f"index has {len(index)} entries for {token_level_rewards.shape[0]} responses: pass one uid per response"
        )
    with torch.no_grad():
        scores = token_level_rewards.sum(dim=-1)
        if not bool(torch.isfinite(scores).all()):
            bad = torch.nonzero(~torch.isfinite(scores)).flatten()[:5].tolist()
            raise SmartThinkerEstimatorError(
                f"non-finite outcome scores at responses {bad}: check the reward manager / scorer output"
            )
        # One float copy of the mask serves both the lengths and, multiplied in place, the output.
        mask = response_mask.to(dtype=token_level_rewards.dtype, copy=True)
        lengths = mask.sum(dim=-1)
        group_ids, num_groups = group_ids_from_index(index)
        group_ids = group_ids.to(scores.device)
        result = calibrate(
            lengths,
            scores >= options.correct_threshold,
            group_ids,
            num_groups,
            optimal_length=options.optimal_length,
            penalty=options.penalty,
            coefficient=options.coefficient,
            fixed_coefficient=options.fixed_coefficient,
        )
        rewards = (scores.to(torch.float64) - result.coefficient * result.penalty).to(scores.dtype)
        advantage = grpo_normalize(
            rewards, group_ids, num_groups, norm_by_std=norm_adv_by_std_in_grpo, epsilon=options.epsilon
        )
        if options.coefficient == "dynamic":
            # eq. 3 makes the most-penalised correct response's advantage exactly 0 (others > 0); rounding can
            # leave a tiny negative value there. Correct responses never get a negative advantage under this rule.
            shaped = result.groups.shaped.index_select(0, group_ids)
            advantage = torch.where(result.correct & shaped, advantage.clamp(min=0), advantage)
        advantages = mask.mul_(advantage.unsqueeze(-1))
    return advantages, result


@register_adv_est(ESTIMATOR_NAME)
def compute_smartthinker_outcome_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray | None = None,
    config: Any = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """verl advantage estimator ``smartthinker``: GRPO on SmartThinker's length-calibrated rewards.

    Args:
        token_level_rewards: ``[bs, L]`` (outcome score on the last valid token).
        response_mask: ``[bs, L]``.
        index: ``[bs]`` uid per response (the prompt's group).
        config: verl's ``config.algorithm``; reads ``smartthinker.*``, ``norm_adv_by_std_in_grpo`` and refuses
            ``use_kl_in_reward=True``.

    Returns:
        ``(advantages, returns)``, both ``[bs, L]`` (the same tensor, as verl's GRPO).
    """
    if select(config, "use_kl_in_reward", False):
        raise SmartThinkerEstimatorError(
            "algorithm.use_kl_in_reward=True subtracts KL terms from token_level_rewards, so the smartthinker "
            "estimator cannot read correctness from them. Set algorithm.use_kl_in_reward=False and, if you want a "
            "KL term, use the KL loss instead: actor_rollout_ref.actor.use_kl_loss=True"
        )
    options = SmartThinkerConfig.from_algorithm_config(config)
    norm_by_std = bool(select(config, "norm_adv_by_std_in_grpo", True))
    advantages, result = shaped_advantages(token_level_rewards, response_mask, index, options, norm_by_std)
    metrics.record(metrics.step_metrics(result))
    return advantages, advantages


for _alias in ESTIMATOR_ALIASES:
    register_adv_est(_alias)(compute_smartthinker_outcome_advantage)
