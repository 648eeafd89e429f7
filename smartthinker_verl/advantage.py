"""The one verl adapter: every length-shaping method as a verl advantage estimator.

verl 0.9.1 calls a registered estimator from ``compute_advantage`` (in the TaskRunner process) as::

    fn(token_level_rewards=[bs, L], response_mask=[bs, L], config=<config.algorithm>, index=<uid array [bs]>)

For each method of :data:`smartthinker_verl.shaping.METHODS` (``smartthinker``, alias ``grpo_smartthinker``, and
the baselines beside it: ``shorter_better``, ``efficient_reasoning``, ``kimi_length``, ``laser_de``; see
docs/baselines.md) this module registers such a function. It only unpacks verl's arguments; the maths is in
:mod:`smartthinker_verl.shaping`:

- length l_i = ``response_mask.sum(-1)``; outcome score = ``token_level_rewards.sum(-1)`` (verl puts the reward
  manager's score on the last valid token); correct = score >= ``correct_threshold``; group = ``index``;
- the method's shaped reward r_i (SmartThinker: r_i = score_i - coef_g * s_i, eqs. 1-4);
- a non-default option of another method (``algorithm.shorter_better.alpha=3`` while ``adv_estimator=smartthinker``)
  is an error: it would silently do nothing (:func:`smartthinker_verl.shaping.check_foreign_options`);
- GRPO: A_i = (r_i - mean_g r) / (std_g r + epsilon), or r_i - mean_g r when
  ``algorithm.norm_adv_by_std_in_grpo=False``; broadcast over the response tokens (zero outside the mask). In the
  groups the method shaped, advantages within rounding noise of 0 are set to exactly 0 (the pivot response of
  eq. 3 sits at the group mean); nothing else is rewritten.

A batch where no group is shaped gives verl's ``grpo`` advantages bit for bit. The step's statistics go to
:mod:`smartthinker_verl.metrics` as ``<method>/<name>``, which merges them into verl's logged metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo.core_algos import register_adv_est

from smartthinker_verl import checkpoint, metrics
from smartthinker_verl.config import MethodOptions, SmartThinkerError, select
from smartthinker_verl.shaping import METHODS, ShapingMethod, ShapingOutput, check_foreign_options, get_method
from smartthinker_verl.shaping.groups import GroupedBatch, group_ids_from_index
from smartthinker_verl.shaping.grpo import group_std, grpo_normalize, rounding_tolerance, zero_rounding_noise

logger = logging.getLogger(__name__)

ESTIMATOR_NAME = "smartthinker"


class SmartThinkerEstimatorError(SmartThinkerError, ValueError):
    """An estimator cannot run with the given inputs or configuration; the message names the fix."""


def _validate_inputs(token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index: Any, name: str) -> None:
    if token_level_rewards.shape != response_mask.shape or token_level_rewards.ndim != 2:
        raise SmartThinkerEstimatorError(
            f"token_level_rewards {tuple(token_level_rewards.shape)} and response_mask {tuple(response_mask.shape)} "
            "must both be [batch, response_length]"
        )
    if index is None:
        raise SmartThinkerEstimatorError(
            f"the {name} estimator needs the group of every response (verl's `uid` as `index`); "
            "use it with GRPO-style rollouts (actor_rollout_ref.rollout.n > 1)"
        )
    if len(index) != token_level_rewards.shape[0]:
        raise SmartThinkerEstimatorError(
            f"index has {len(index)} entries for {token_level_rewards.shape[0]} responses: pass one uid per response"
        )


def shaped_advantages(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray | list,
    options: MethodOptions,
    norm_adv_by_std_in_grpo: bool = True,
    method: ShapingMethod | str = ESTIMATOR_NAME,
) -> tuple[torch.Tensor, ShapingOutput]:
    """Advantages of one batch under a length-shaping method.

    Args:
        token_level_rewards: ``[bs, L]`` rewards; the outcome score is their sum over tokens.
        response_mask: ``[bs, L]`` 1 on valid response tokens.
        index: ``[bs]`` group key per response (verl's ``uid``).
        options: the method's options (e.g. ``SmartThinkerConfig``).
        norm_adv_by_std_in_grpo: divide by the group std (GRPO) or not (Dr. GRPO).
        method: the method or its registered name.

    Returns:
        ``(advantages [bs, L] in the rewards' dtype, the method's ShapingOutput)``.
    """
    method = get_method(method) if isinstance(method, str) else method
    _validate_inputs(token_level_rewards, response_mask, index, method.name)
    with torch.no_grad():
        scores = token_level_rewards.sum(dim=-1)
        if not bool(torch.isfinite(scores).all()):
            bad = torch.nonzero(~torch.isfinite(scores)).flatten()[:5].tolist()
            raise SmartThinkerEstimatorError(
                f"non-finite outcome scores at responses {bad}: check the reward manager / scorer output"
            )
        # One float copy of the mask serves both the lengths and, multiplied in place, the output.
        mask = response_mask.to(dtype=token_level_rewards.dtype, copy=True)
        group_ids, num_groups = group_ids_from_index(index)
        batch = GroupedBatch.build(
            mask.sum(dim=-1), scores, group_ids.to(scores.device), num_groups,
            correct_threshold=options.correct_threshold,
        )  # fmt: skip
        output = method.shape(batch, options)
        rewards = output.rewards.to(scores.dtype)
        norm = {"norm_by_std": norm_adv_by_std_in_grpo, "epsilon": options.epsilon}
        stats = group_std(rewards, batch.group_ids, num_groups)  # shared by the normalisation and the tolerance
        advantage = grpo_normalize(rewards, batch.group_ids, num_groups, stats=stats, **norm)
        if bool(output.shaped.any()):
            tolerance = rounding_tolerance(rewards, batch.group_ids, num_groups, stats=stats, **norm)
            advantage = zero_rounding_noise(advantage, tolerance, batch.per_group(output.shaped))
        advantages = mask.mul_(advantage.unsqueeze(-1))
    return advantages, output


def make_estimator(method: ShapingMethod) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """The verl estimator function of ``method`` (reads ``algorithm.<name>`` and ``norm_adv_by_std_in_grpo``)."""

    def estimator(
        token_level_rewards: torch.Tensor,
        response_mask: torch.Tensor,
        index: np.ndarray | None = None,
        config: Any = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if select(config, "use_kl_in_reward", False):
            raise SmartThinkerEstimatorError(
                f"algorithm.use_kl_in_reward=True subtracts KL terms from token_level_rewards, so the {method.name} "
                "estimator cannot read correctness from them. Set algorithm.use_kl_in_reward=False and, if you want "
                "a KL term, use the KL loss instead: actor_rollout_ref.actor.use_kl_loss=True"
            )
        options = method.options_type.from_algorithm_config(config)
        check_foreign_options(config, method.name)
        if method.state is not None:
            checkpoint.warn_if_state_not_saved(method)
        norm_by_std = bool(select(config, "norm_adv_by_std_in_grpo", True))
        advantages, output = shaped_advantages(
            token_level_rewards, response_mask, index, options, norm_by_std, method=method
        )
        metrics.record(metrics.step_metrics(output.statistics, prefix=f"{method.name}/"))
        return advantages, advantages

    estimator.__name__ = f"compute_{method.name}_outcome_advantage"
    estimator.__qualname__ = estimator.__name__
    estimator.__doc__ = (
        f"verl advantage estimator ``{method.name}``: GRPO on length-shaped rewards ({method.formula}).\n\n"
        "Args: token_level_rewards ``[bs, L]`` (outcome score on the last valid token), response_mask ``[bs, L]``,\n"
        f"index ``[bs]`` uid per response, config verl's ``config.algorithm`` (reads ``{method.name}.*`` and\n"
        "``norm_adv_by_std_in_grpo``; refuses ``use_kl_in_reward=True`` and non-default options of another\n"
        "method).\n\n"
        "Returns: ``(advantages, returns)``, both ``[bs, L]`` (the same tensor, as verl's GRPO)."
    )
    return estimator


_ESTIMATORS: dict[str, Callable[..., Any]] = {}


def register_estimators() -> None:
    """Register every shaping method (and its aliases) with verl's estimator registry; idempotent."""
    for method in {id(m): m for m in METHODS.values()}.values():
        if method.name in _ESTIMATORS:
            continue
        estimator = make_estimator(method)
        _ESTIMATORS[method.name] = estimator
        for name in (method.name, *method.aliases):
            register_adv_est(name)(estimator)


register_estimators()
