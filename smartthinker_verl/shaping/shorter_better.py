"""ShorterBetter's length reward (Yi, Wang, Li 2025, arXiv 2504.21370).

For a group the *Sample Optimal Length* is

    SOL_g = min { l_i : i correct }        if some response of the group is correct
    SOL_g = mean { l_i : i in the group }  otherwise

and every response gets

    r_i = alpha * 1[a_i = 1] - beta * | l_i - SOL_g |

with the paper's alpha = 2.0 and beta = 0.001 (per token of deviation); ``a_i`` is correctness, the paper's
indicator rather than a partial-credit score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from smartthinker_verl.options import MethodOptions
from smartthinker_verl.shaping.groups import DTYPE, GroupedBatch
from smartthinker_verl.shaping.registry import ShapingOutput, shaping_method


@dataclass(frozen=True, kw_only=True)
class ShorterBetterConfig(MethodOptions):
    """Options under ``algorithm.shorter_better``.

    Attributes:
        alpha: reward of a correct answer (paper: 2.0).
        beta: penalty per token of |l - SOL| (paper: 0.001).
    """

    config_key: ClassVar[str] = "shorter_better"
    positive: ClassVar[tuple[str, ...]] = (*MethodOptions.positive, "alpha")
    non_negative: ClassVar[tuple[str, ...]] = ("beta",)

    alpha: float = 2.0
    beta: float = 0.001


def sample_optimal_length(batch: GroupedBatch) -> torch.Tensor:
    """SOL per group, ``[num_groups]`` float64: shortest correct length, else the group's mean length."""
    inf = torch.full_like(batch.lengths, float("inf"))
    shortest_correct = batch.group_min(torch.where(batch.correct, batch.lengths, inf))
    return torch.where(batch.num_correct > 0, shortest_correct, batch.group_mean(batch.lengths))


@shaping_method(
    ShorterBetterConfig,
    statistics=("sol/mean", "length_deviation/mean", "no_correct_group_frac"),
    formula="r = alpha * 1[correct] - beta * |len - SOL|, SOL = shortest correct length (group mean if none)",
)
def shape(batch: GroupedBatch, options: ShorterBetterConfig) -> ShapingOutput:
    """r_i = alpha * 1[correct] - beta * |l_i - SOL_g|, ``[B]``."""
    sol = sample_optimal_length(batch)
    deviation = (batch.lengths - batch.per_group(sol)).abs()
    statistics = {
        "sol/mean": sol.mean(),
        "length_deviation/mean": deviation.mean(),
        "no_correct_group_frac": (batch.num_correct == 0).double().mean(),
    }
    rewards = options.alpha * batch.correct.to(DTYPE) - options.beta * deviation
    return ShapingOutput(rewards=rewards, statistics=statistics, detail={"sol": sol})
