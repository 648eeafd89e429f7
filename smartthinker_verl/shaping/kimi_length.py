"""Kimi k1.5's length reward (Kimi Team 2025, arXiv 2501.12599).

With min_g and max_g the shortest and longest response of the group,

    lambda_i = 0.5 - (l_i - min_g) / (max_g - min_g)      (0 when max_g == min_g: no length reward)
    len_i    = lambda_i               if the response is correct
    len_i    = min(0, lambda_i)       otherwise
    r_i      = score_i + weight * len_i

so the shortest correct response gains +0.5, the longest loses 0.5, and wrong answers are only ever penalised for
length. The paper adds the length reward unweighted: ``weight`` defaults to 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from smartthinker_verl.options import MethodOptions
from smartthinker_verl.shaping.groups import GroupedBatch, divide_where, masked_mean
from smartthinker_verl.shaping.registry import ShapingOutput, shaping_method


@dataclass(frozen=True, kw_only=True)
class KimiLengthConfig(MethodOptions):
    """Options under ``algorithm.kimi_length``.

    Attributes:
        weight: multiplies the length reward before it is added to the score (paper: unweighted, 1.0).
    """

    config_key: ClassVar[str] = "kimi_length"
    non_negative: ClassVar[tuple[str, ...]] = ("weight",)

    weight: float = 1.0


def length_rewards(batch: GroupedBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(len_i [B], lambda_i [B], flat [num_groups] bool)``; lambda = 0 in the flat groups (max == min)."""
    lo, hi = batch.group_min(batch.lengths), batch.group_max(batch.lengths)
    flat = hi <= lo
    spread = batch.per_group(hi - lo)
    lam = 0.5 - divide_where(batch.lengths - batch.per_group(lo), spread, ~batch.per_group(flat), fill=0.5)
    return torch.where(batch.correct, lam, lam.clamp(max=0.0)), lam, flat


@shaping_method(
    KimiLengthConfig,
    statistics=("length_reward/mean", "length_reward_correct/mean", "length_reward_incorrect/mean", "flat_group_frac"),
    formula="r = score + w * (lambda if correct else min(0, lambda)), lambda = 0.5 - (len - min) / (max - min)",
)
def shape(batch: GroupedBatch, options: KimiLengthConfig) -> ShapingOutput:
    """r_i = score_i + weight * len_i, ``[B]``."""
    length_reward, lam, flat = length_rewards(batch)
    statistics = {
        "length_reward/mean": length_reward.mean(),
        "length_reward_correct/mean": masked_mean(length_reward, batch.correct),
        "length_reward_incorrect/mean": masked_mean(length_reward, ~batch.correct),
        "flat_group_frac": flat.double().mean(),
    }
    rewards = batch.scores + options.weight * length_reward
    return ShapingOutput(rewards=rewards, statistics=statistics, detail={"lambda": lam})
