"""The one verl adapter: every length-shaping method of :data:`smartthinker_verl.shaping.METHODS` (and its aliases)
as a verl advantage estimator, called by verl's ``compute_advantage`` as::

    fn(token_level_rewards=[bs, L], response_mask=[bs, L], config=<config.algorithm>, index=<uid array [bs]>)

Length l_i = ``response_mask.sum(-1)``, outcome score = ``token_level_rewards.sum(-1)``, group = ``index``; the
method's shaped reward from ``algorithm.<method>`` and ``algorithm.run_context`` (validated once per process and
config by :func:`check_settings`, which check-config runs too); ``algorithm.<method>.normalizer`` turns it into
advantages (``grpo``, honouring ``algorithm.norm_adv_by_std_in_grpo``, or any verl outcome estimator). Rows with an
empty response mask (verl's batch padding) take no part and get advantage 0. The step's statistics go to
:mod:`smartthinker_verl.step_metrics` as ``<method>/<name>``.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, get_adv_estimator_fn, register_adv_est

from smartthinker_verl import run_state, step_metrics
from smartthinker_verl.errors import ConfigError, DataError
from smartthinker_verl.options import CONFIG_KEY, DEFAULT_NORMALIZER, MethodOptions, RunContext, plain, select
from smartthinker_verl.shaping import (
    METHODS,
    ShapingMethod,
    ShapingOutput,
    estimator_names,
    foreign_option_errors,
    get_method,
)
from smartthinker_verl.shaping.groups import GroupedBatch, group_ids_from_index, incomplete_groups
from smartthinker_verl.shaping.grpo import (
    group_std,
    grpo_normalize,
    rounding_tolerance,
    zero_rounding_noise,
    zero_spread_groups,
)

logger = logging.getLogger(__name__)


def _validate_inputs(token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index: Any, name: str) -> None:
    if token_level_rewards.shape != response_mask.shape or token_level_rewards.ndim != 2:
        raise DataError(
            f"token_level_rewards {tuple(token_level_rewards.shape)} and response_mask {tuple(response_mask.shape)} "
            "must both be [batch, response_length]"
        )
    if index is None:
        raise DataError(
            f"the {name} estimator needs the group of every response (verl's `uid` as `index`); "
            "use it with GRPO-style rollouts (actor_rollout_ref.rollout.n > 1)"
        )
    if len(index) != token_level_rewards.shape[0]:
        raise DataError(
            f"index has {len(index)} entries for {token_level_rewards.shape[0]} responses: pass one uid per response"
        )


#: verl estimators that cannot turn shaped outcome rewards into advantages, with the reason.
CANNOT_NORMALIZE: dict[str, str] = {
    "gae": "it needs a critic's values",
    "remax": "it needs reward_baselines from a greedy rollout",
    "reinforce_plus_plus": "it discounts token-level returns rather than normalising outcome rewards",
    "gdpo": "it normalises each dimension of a multi-dimensional reward from the batch",
    "optimal_token_baseline": "it needs the actor's per-token log-probabilities",
    "tir_optimal_token_baseline": "it needs the actor's per-token log-probabilities",
}


def usable_normalizers() -> list[str]:
    """The registered verl estimators that can serve as ``algorithm.<method>.normalizer``: every outcome estimator
    in verl's registry except :data:`CANNOT_NORMALIZE` and this package's own estimators."""
    ours = set(estimator_names())
    return sorted(name for name in ADV_ESTIMATOR_REGISTRY if name not in CANNOT_NORMALIZE and name not in ours)


def normalizer_problem(method_name: str, normalizer: str) -> str | None:
    """Why ``algorithm.<method_name>.normalizer=<normalizer>`` cannot work (with the fix), or None when it can."""
    if normalizer in estimator_names():
        reason = "it is a length-shaping estimator of this package, not a normaliser"
    elif normalizer in CANNOT_NORMALIZE:
        reason = CANNOT_NORMALIZE[normalizer]
    elif normalizer not in ADV_ESTIMATOR_REGISTRY:
        reason = "no verl advantage estimator is registered under that name"
    else:
        return None
    return (
        f"algorithm.{method_name}.normalizer={normalizer} cannot normalise shaped rewards: {reason}. "
        f"Fix: use one of {', '.join(usable_normalizers())}"
    )


def check_settings(algorithm: Any, method: ShapingMethod) -> tuple[MethodOptions | None, RunContext | None, list[str]]:
    """``(options, run, problems)`` of verl's ``config.algorithm`` for ``method``: its options with the run's
    defaults filled in, the run context, and every problem with its fix (options and run are None when the options
    cannot be built). The estimator and check-config both run this."""
    problems = foreign_option_errors(algorithm, method.name)
    if select(algorithm, "use_kl_in_reward", False):
        problems.append(
            f"algorithm.use_kl_in_reward=True subtracts KL terms from token_level_rewards, so the {method.name} "
            "estimator cannot read correctness from them. Fix: algorithm.use_kl_in_reward=False and, for a KL term, "
            "the KL loss: actor_rollout_ref.actor.use_kl_loss=True"
        )
    try:
        run = RunContext.from_algorithm(algorithm)
        options = method.options_type.from_algorithm_config(algorithm).for_run(run)
    except ConfigError as error:
        message = str(error)
        fix = "" if "Fix" in message else ". Fix: change or remove that option (the options: docs/baselines.md)"
        return None, None, [*problems, message + fix]
    return options, run, problems + [p for p in [normalizer_problem(method.name, options.normalizer)] if p]


@functools.lru_cache(maxsize=8)
def _checked_settings(method_name: str, algorithm_json: str) -> tuple[MethodOptions, RunContext]:
    options, run, problems = check_settings(json.loads(algorithm_json), METHODS[method_name])
    if problems:
        raise ConfigError("; ".join(problems))
    return options, run


def _grpo_advantages(output: ShapingOutput, batch: GroupedBatch, dtype: torch.dtype, **norm: Any) -> torch.Tensor:
    """``[B]`` GRPO advantages of the shaped rewards in ``dtype``; exactly 0 for zero-spread groups and for a shaped
    group's pivot response (:mod:`smartthinker_verl.shaping.grpo`)."""
    rewards = output.rewards.to(dtype)
    ids, count = batch.group_ids, batch.num_groups
    stats = group_std(rewards, ids, count)  # shared by the normalisation and the tolerance
    advantage = grpo_normalize(rewards, ids, count, stats=stats, **norm)
    if output.shaped is not None and bool(output.shaped.any()):
        tolerance = rounding_tolerance(rewards, ids, count, stats=stats, **norm)
        advantage = zero_rounding_noise(advantage, tolerance, batch.per_group(output.shaped))
    flat = batch.per_group(zero_spread_groups(rewards, ids, count))
    return torch.where(flat, torch.zeros_like(advantage), advantage)


def _verl_advantages(
    name: str, rewards: torch.Tensor, lengths: torch.Tensor, response_mask: torch.Tensor, index: Any, config: Any
) -> torch.Tensor:
    """``[bs, L]`` advantages from verl's registered estimator ``name`` on the shaped rewards ``[bs]`` placed where
    verl puts the score (the last valid token)."""
    placed = torch.zeros(response_mask.shape, dtype=rewards.dtype, device=rewards.device)
    rows = torch.arange(len(rewards), device=rewards.device)
    last = (lengths.to(torch.int64) - 1).clamp(min=0)
    placed[rows, last] = torch.where(lengths > 0, rewards, torch.zeros_like(rewards))
    advantages, _ = get_adv_estimator_fn(name)(
        token_level_rewards=placed, response_mask=response_mask, config=config, index=index
    )
    return advantages


def shaped_advantages(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray | list,
    options: MethodOptions,
    norm_adv_by_std_in_grpo: bool = True,
    method: ShapingMethod | str = CONFIG_KEY,
    config: Any = None,
    **shape_kwargs: Any,
) -> tuple[torch.Tensor, ShapingOutput]:
    """Advantages of one batch under a length-shaping method; rows with an empty response mask take no part.

    Args:
        token_level_rewards: ``[bs, L]`` rewards; the outcome score is their sum over tokens.
        response_mask: ``[bs, L]`` 1 on valid response tokens.
        index: ``[bs]`` group key per response (verl's ``uid``).
        options: the method's options (e.g. ``SmartThinkerConfig``), run defaults filled in.
        norm_adv_by_std_in_grpo: divide by the group std (GRPO) or not (Dr. GRPO); the ``grpo`` normaliser only.
        method: the method or its registered name.
        config: verl's ``config.algorithm``, handed to a verl normaliser (``options.normalizer`` other than grpo).
        shape_kwargs: passed to the method's ``shape`` (a stateful method's ``state`` and ``calls_per_step``).

    Returns:
        ``(advantages [bs, L] in the rewards' dtype, the method's ShapingOutput over the non-empty rows)``.
    """
    method = get_method(method) if isinstance(method, str) else method
    _validate_inputs(token_level_rewards, response_mask, index, method.name)
    with torch.no_grad():
        scores = token_level_rewards.sum(dim=-1)
        if not bool(torch.isfinite(scores).all()):  # here, not in GroupedBatch.build: these are verl's row numbers
            bad = torch.nonzero(~torch.isfinite(scores)).flatten()[:5].tolist()
            raise DataError(f"non-finite outcome scores at responses {bad}: check the reward manager / scorer output")
        # One float copy of the mask serves both the lengths and, multiplied in place, the output.
        mask = response_mask.to(dtype=token_level_rewards.dtype, copy=True)
        lengths = mask.sum(dim=-1)
        rows = torch.nonzero(lengths > 0).flatten()  # verl's padding rows (empty masks) take no part
        group_ids, num_groups = group_ids_from_index(np.asarray(index, dtype=object)[rows.cpu().numpy()])
        batch = GroupedBatch.build(
            lengths[rows],
            scores[rows],
            group_ids.to(scores.device),
            num_groups,
            correct_threshold=options.correct_threshold,
        )
        output = method.shape(batch, options, **shape_kwargs)
        if options.normalizer == DEFAULT_NORMALIZER:
            norm = {"norm_by_std": norm_adv_by_std_in_grpo, "epsilon": options.epsilon}
            advantage = _grpo_advantages(output, batch, scores.dtype, **norm)
            advantage = torch.zeros_like(scores).index_copy_(0, rows, advantage)
            return mask.mul_(advantage.unsqueeze(-1)), output
        rewards = torch.zeros_like(scores).index_copy_(0, rows, output.rewards.to(scores.dtype))
        return _verl_advantages(options.normalizer, rewards, lengths, response_mask, index, config), output


def record_batch_health(index: Any, response_mask: torch.Tensor, group_size: int | None) -> None:
    """Stop on a grading pool that could not start (:func:`grading_report.collect`), and record the step's
    ``smartthinker/grading_errors`` and ``smartthinker/incomplete_group_frac`` (groups with fewer than the rollout's
    ``n`` responses, verl's padding rows not counted), with a WARNING when a group is short."""
    from smartthinker_verl import grading_report  # the TaskRunner's side of the reward workers' reports

    metrics = {f"{CONFIG_KEY}/grading_errors": float(grading_report.collect())}
    if group_size is not None:  # None: a plain verl config without algorithm.run_context.group_size
        real = (response_mask.sum(dim=-1) > 0).cpu().numpy()
        group_ids, num_groups = group_ids_from_index(np.asarray(index, dtype=object)[real])
        short = incomplete_groups(group_ids, num_groups, group_size)
        metrics[f"{CONFIG_KEY}/incomplete_group_frac"] = short / max(num_groups, 1)
        if short:
            logger.warning(
                "%d of %d groups have fewer than actor_rollout_ref.rollout.n=%d responses: verl dropped responses, "
                "most likely because the reward loop raised for them (see the agent-loop workers' logs) or a filter "
                "removed them; their advantages come from smaller groups",
                short,
                num_groups,
                group_size,
            )
    step_metrics.PENDING.record(metrics)


def make_estimator(method: ShapingMethod) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """The verl estimator function of ``method`` (reads ``algorithm.<name>`` and ``norm_adv_by_std_in_grpo``)."""

    def estimator(
        token_level_rewards: torch.Tensor,
        response_mask: torch.Tensor,
        index: np.ndarray | None = None,
        config: Any = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        algorithm = json.dumps(plain(config), sort_keys=True, default=repr)
        options, run = _checked_settings(method.name, algorithm)  # validated once per process and config
        state = {}
        if method.state_type is not None:
            state = {"state": run_state.state_of(method), "calls_per_step": run.calls_per_step}
        norm_by_std = bool(select(config, "norm_adv_by_std_in_grpo", True))
        advantages, output = shaped_advantages(
            token_level_rewards, response_mask, index, options, norm_by_std, method, config, **state
        )
        record_batch_health(index, response_mask, run.group_size)  # may stop the step: before verl's update
        responses = int((response_mask.sum(dim=-1) > 0).sum())
        step_metrics.PENDING.record(step_metrics.as_floats(output.statistics, f"{method.name}/"), weight=responses)
        return advantages, advantages

    estimator.__name__ = f"compute_{method.name}_outcome_advantage"
    estimator.__qualname__ = estimator.__name__
    estimator.__doc__ = f"verl advantage estimator ``{method.name}``: {method.formula}; see this module's docstring."
    return estimator


def register_estimators() -> None:
    """Register every shaping method under its name and aliases with verl's estimator registry; names verl already
    knows are skipped, so a method registered after the plugin loaded (docs/baselines.md) is added by a second call."""
    for method in METHODS.values():
        names = [name for name in (method.name, *method.aliases) if name not in ADV_ESTIMATOR_REGISTRY]
        estimator = make_estimator(method) if names else None
        for name in names:
            register_adv_est(name)(estimator)


register_estimators()
