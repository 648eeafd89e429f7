"""Arora & Zanette's length-normalised reward ("Training Language Models to Reason Efficiently", arXiv 2502.04463),
for a whole batch at once (pure torch).

For a group with correct responses C (mean length mu_C, standard deviation sigma_C over C):

    r_i = 1[a_i = 1] * ( 1 - alpha * sigmoid( (l_i - mu_C) / sigma_C ) )

so correct responses shorter than the group's typical correct length earn more, wrong ones earn 0, and the
length term never makes a correct answer worth less than 1 - alpha (> 0 for alpha < 1).

Choices the paper leaves open, stated here and in docs/baselines.md:

- sigma_C is the population standard deviation of the correct lengths (divide by |C|).
- sigma_C = 0 (one correct response, or all correct responses of equal length): the normalised deviation is
  defined as 0, so every correct response gets 1 - alpha / 2 (the value at the mean); no division by zero.
- alpha defaults to 0.1; the paper trains with alpha in {0.05, 0.1, 0.2, 0.4} (a trade-off knob), and
  0.1 is a middle setting.

Correctness ``a_i`` is ``score >= correct_threshold`` (the paper's indicator). GRPO normalisation follows in the
adapter. Group statistics are segment reductions; groups of any size, interleaved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from smartthinker_verl.errors import ConfigError
from smartthinker_verl.options import MethodOptions
from smartthinker_verl.shaping.groups import DTYPE, OUTCOME_METRIC_NAMES, GroupedBatch, masked_mean, outcome_statistics
from smartthinker_verl.shaping.registry import ShapingMethod, ShapingOutput, register_method

NAME = "efficient_reasoning"

#: Per-step statistics, logged as ``efficient_reasoning/<name>``.
METRIC_NAMES: tuple[str, ...] = (
    "length_factor/mean",
    "correct_length_mean/mean",
    "correct_length_std/mean",
    *OUTCOME_METRIC_NAMES,
)


@dataclass(frozen=True, kw_only=True)
class EfficientReasoningConfig(MethodOptions):
    """Options under ``algorithm.efficient_reasoning`` (arXiv 2502.04463).

    Attributes:
        alpha: strength of the length term, in [0, 1) (paper sweeps 0.05-0.4; default 0.1).
        correct_threshold, epsilon: see :class:`~smartthinker_verl.options.MethodOptions`.
    """

    config_key: ClassVar[str] = NAME
    numeric_fields: ClassVar[dict[str, bool]] = {**MethodOptions.numeric_fields, "alpha": False}

    alpha: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.alpha < 1:
            raise ConfigError(
                f"algorithm.{NAME}.alpha={self.alpha!r} must lie in [0, 1): at 1 or above a long correct answer "
                "would be worth no more than a wrong one. Fix: e.g. algorithm.efficient_reasoning.alpha=0.1"
            )


def correct_length_moments(batch: GroupedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and population std of the correct responses' lengths per group, ``[num_groups]`` (NaN without one)."""
    _, mean, var = batch.moments(batch.lengths, batch.correct)
    return mean, var.sqrt()


def shaped_rewards(batch: GroupedBatch, options: EfficientReasoningConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """``(r [B], length factor [B])``: r_i = 1[correct] * (1 - alpha * sigmoid((l_i - mu_C) / sigma_C)) ;
    the factor is sigmoid(...) (0.5 where sigma_C = 0, 0 for wrong responses)."""
    mean, std = correct_length_moments(batch)
    mean_i, std_i = batch.per_group(mean), batch.per_group(std)
    positive = std_i > 0
    z = torch.where(positive, (batch.lengths - mean_i) / torch.where(positive, std_i, torch.ones_like(std_i)), 0.0)
    correct = batch.correct
    factor = torch.where(correct, torch.sigmoid(z), torch.zeros_like(z))
    rewards = correct.to(DTYPE) * (1.0 - options.alpha * factor)
    return rewards, factor


def shape(batch: GroupedBatch, options: EfficientReasoningConfig) -> ShapingOutput:
    """The registered method: the length-normalised rewards and step statistics for ``batch``."""
    rewards, factor = shaped_rewards(batch, options)
    mean, std = correct_length_moments(batch)
    has_correct = batch.num_correct > 0
    correct = batch.correct
    statistics = {
        "length_factor/mean": masked_mean(factor, correct),
        "correct_length_mean/mean": masked_mean(torch.nan_to_num(mean), has_correct),
        "correct_length_std/mean": masked_mean(torch.nan_to_num(std), has_correct),
        **outcome_statistics(batch),
    }
    return ShapingOutput(rewards=rewards, statistics=statistics, detail={"factor": factor})


METHOD = register_method(
    ShapingMethod(
        name=NAME,
        options_type=EfficientReasoningConfig,
        shape=shape,
        metric_names=METRIC_NAMES,
        formula="r = 1[correct] * (1 - alpha * sigmoid((len - mean_correct) / std_correct))",
    )
)
