"""ShorterBetter's length reward (Yi, Wang, Li 2025, arXiv 2504.21370), for a whole batch at once (pure torch).

For a group (the responses to one prompt) the *Sample Optimal Length* is

    SOL_g = min { l_i : i correct }        if some response of the group is correct
    SOL_g = mean { l_i : i in the group }  otherwise

and every response gets

    r_i = alpha * 1[a_i = 1] - beta * | l_i - SOL_g |

with the paper's alpha = 2.0 and beta = 0.001 (per token of deviation). ``a_i`` is correctness
(``score >= correct_threshold``); the paper's reward uses the indicator, not a partial-credit score. GRPO's group
normalisation follows in the adapter, as in the paper. Groups of any size, interleaved in any order: per-group
minima and means are segment reductions (:mod:`smartthinker_verl.shaping.groups`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from smartthinker_verl.errors import ConfigError
from smartthinker_verl.options import MethodOptions
from smartthinker_verl.shaping.groups import DTYPE, OUTCOME_METRIC_NAMES, GroupedBatch, outcome_statistics
from smartthinker_verl.shaping.registry import ShapingMethod, ShapingOutput, register_method

NAME = "shorter_better"

#: Per-step statistics, logged as ``shorter_better/<name>``.
METRIC_NAMES: tuple[str, ...] = (
    "sol/mean",
    "length_deviation/mean",
    "no_correct_group_frac",
    *OUTCOME_METRIC_NAMES,
)


@dataclass(frozen=True, kw_only=True)
class ShorterBetterConfig(MethodOptions):
    """Options under ``algorithm.shorter_better`` (defaults: arXiv 2504.21370).

    Attributes:
        alpha: reward of a correct answer (paper: 2.0).
        beta: penalty per token of |l - SOL| (paper: 0.001).
        correct_threshold, epsilon: see :class:`~smartthinker_verl.options.MethodOptions`.
    """

    config_key: ClassVar[str] = NAME
    numeric_fields: ClassVar[dict[str, bool]] = {**MethodOptions.numeric_fields, "alpha": True, "beta": False}

    alpha: float = 2.0
    beta: float = 0.001

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta < 0:
            raise ConfigError(
                f"algorithm.{NAME}.beta={self.beta!r} must be >= 0 (a penalty per token of deviation from SOL). "
                "Fix: e.g. algorithm.shorter_better.beta=0.001"
            )


def sample_optimal_length(batch: GroupedBatch) -> torch.Tensor:
    """SOL per group, ``[num_groups]`` float64: shortest correct length, else the group's mean length ."""
    inf = torch.full_like(batch.lengths, float("inf"))
    shortest_correct = batch.group_min(torch.where(batch.correct, batch.lengths, inf))
    mean_length = batch.group_sum(batch.lengths) / batch.size.to(DTYPE)
    return torch.where(batch.num_correct > 0, shortest_correct, mean_length)


def shaped_rewards(batch: GroupedBatch, options: ShorterBetterConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """``(r [B], SOL [num_groups])``: r_i = alpha * 1[correct] - beta * |l_i - SOL_g| ."""
    sol = sample_optimal_length(batch)
    deviation = (batch.lengths - batch.per_group(sol)).abs()
    rewards = options.alpha * batch.correct.to(DTYPE) - options.beta * deviation
    return rewards, sol


def shape(batch: GroupedBatch, options: ShorterBetterConfig) -> ShapingOutput:
    """The registered method: ShorterBetter's rewards and step statistics for ``batch``."""
    rewards, sol = shaped_rewards(batch, options)
    deviation = (batch.lengths - batch.per_group(sol)).abs()
    statistics = {
        "sol/mean": sol.mean(),
        "length_deviation/mean": deviation.mean(),
        "no_correct_group_frac": (batch.num_correct == 0).double().mean(),
        **outcome_statistics(batch),
    }
    return ShapingOutput(rewards=rewards, statistics=statistics, detail={"sol": sol})


METHOD = register_method(
    ShapingMethod(
        name=NAME,
        options_type=ShorterBetterConfig,
        shape=shape,
        metric_names=METRIC_NAMES,
        formula="r = alpha * 1[correct] - beta * |len - SOL|, SOL = shortest correct length (group mean if none)",
    )
)
