"""Kimi k1.5's length reward (Kimi Team 2025, arXiv 2501.12599), for a whole batch (pure torch).

With min_g and max_g the shortest and longest response of the group,

    lambda_i = 0.5 - (l_i - min_g) / (max_g - min_g)
    len_i    = lambda_i               if the response is correct
    len_i    = min(0, lambda_i)       otherwise
    r_i      = score_i + weight * len_i

so the shortest correct response gains +0.5 and the longest loses 0.5, and wrong answers are only ever penalised
for length. When every response of the group has the same length (max_g == min_g) lambda is defined as 0: no
length reward. The paper adds the length reward to the correctness reward without a stated weight, so ``weight``
defaults to 1.0. ``score_i`` is the reward manager's score (1/0 for the paper's scorer); correctness is
``score >= correct_threshold``. GRPO normalisation follows in the adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from smartthinker_verl.errors import ConfigError
from smartthinker_verl.options import MethodOptions
from smartthinker_verl.shaping.groups import OUTCOME_METRIC_NAMES, GroupedBatch, masked_mean, outcome_statistics
from smartthinker_verl.shaping.registry import ShapingMethod, ShapingOutput, register_method

NAME = "kimi_length"

#: Per-step statistics, logged as ``kimi_length/<name>``.
METRIC_NAMES: tuple[str, ...] = (
    "length_reward/mean",
    "length_reward_correct/mean",
    "length_reward_incorrect/mean",
    "flat_group_frac",
    *OUTCOME_METRIC_NAMES,
)


@dataclass(frozen=True, kw_only=True)
class KimiLengthConfig(MethodOptions):
    """Options under ``algorithm.kimi_length`` (arXiv 2501.12599).

    Attributes:
        weight: multiplies the length reward before it is added to the score (paper: unweighted, 1.0).
        correct_threshold, epsilon: see :class:`~smartthinker_verl.options.MethodOptions`.
    """

    config_key: ClassVar[str] = NAME
    numeric_fields: ClassVar[dict[str, bool]] = {**MethodOptions.numeric_fields, "weight": False}

    weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weight < 0:
            raise ConfigError(
                f"algorithm.{NAME}.weight={self.weight!r} must be >= 0 (a negative weight rewards length). "
                "Fix: e.g. algorithm.kimi_length.weight=1.0"
            )


def length_rewards(batch: GroupedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """``(len_i [B], lambda_i [B])`` of the formula above; lambda = 0 in groups where max == min."""
    lo, hi = batch.per_group(batch.group_min(batch.lengths)), batch.per_group(batch.group_max(batch.lengths))
    spread = hi - lo
    flat = spread <= 0
    lam = torch.where(flat, 0.0, 0.5 - (batch.lengths - lo) / torch.where(flat, torch.ones_like(spread), spread))
    reward = torch.where(batch.correct, lam, lam.clamp(max=0.0))
    return reward, lam


def shape(batch: GroupedBatch, options: KimiLengthConfig) -> ShapingOutput:
    """The registered method: score + weight * Kimi's length reward, and the step statistics."""
    length_reward, lam = length_rewards(batch)
    rewards = batch.scores + options.weight * length_reward
    correct = batch.correct
    flat = batch.group_max(batch.lengths) <= batch.group_min(batch.lengths)
    statistics = {
        "length_reward/mean": length_reward.mean(),
        "length_reward_correct/mean": masked_mean(length_reward, correct),
        "length_reward_incorrect/mean": masked_mean(length_reward, ~correct),
        "flat_group_frac": flat.double().mean(),
        **outcome_statistics(batch),
    }
    return ShapingOutput(rewards=rewards, statistics=statistics, detail={"lambda": lam})


METHOD = register_method(
    ShapingMethod(
        name=NAME,
        options_type=KimiLengthConfig,
        shape=shape,
        metric_names=METRIC_NAMES,
        formula="r = score + w * (lambda if correct else min(0, lambda)), lambda = 0.5 - (len - min) / (max - min)",
    )
)
