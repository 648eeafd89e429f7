"""Arora & Zanette's length-normalised reward ("Training Language Models to Reason Efficiently", arXiv 2502.04463).

For a group with correct responses C (mean length mu_C, population standard deviation sigma_C over C):

    r_i = 1[a_i = 1] * ( 1 - alpha * sigmoid( (l_i - mu_C) / sigma_C ) )

so correct responses shorter than the group's typical correct length earn more, wrong ones earn 0, and a correct
answer is never worth less than 1 - alpha. Where sigma_C = 0 (one correct response, or all of one length) the
normalised deviation is 0: every correct response gets 1 - alpha / 2 (docs/baselines.md lists the choices the paper
leaves open).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from smartthinker_verl.errors import ConfigError
from smartthinker_verl.options import MethodOptions
from smartthinker_verl.shaping.groups import DTYPE, GroupedBatch, divide_where, masked_mean
from smartthinker_verl.shaping.registry import ShapingOutput, shaping_method


@dataclass(frozen=True, kw_only=True)
class EfficientReasoningConfig(MethodOptions):
    """Options under ``algorithm.efficient_reasoning``.

    Attributes:
        alpha: strength of the length term, in [0, 1) (the paper sweeps 0.05-0.4; default 0.1).
    """

    config_key: ClassVar[str] = "efficient_reasoning"

    alpha: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.alpha < 1:
            raise ConfigError(
                f"algorithm.{self.config_key}.alpha={self.alpha!r} must lie in [0, 1): at 1 or above a long correct "
                "answer would be worth no more than a wrong one. Fix: e.g. +algorithm.efficient_reasoning.alpha=0.1"
            )


@shaping_method(
    EfficientReasoningConfig,
    statistics=("length_factor/mean", "correct_length_mean/mean", "correct_length_std/mean"),
    formula="r = 1[correct] * (1 - alpha * sigmoid((len - mean_correct) / std_correct))",
)
def shape(batch: GroupedBatch, options: EfficientReasoningConfig) -> ShapingOutput:
    """r_i = 1[correct] * (1 - alpha * factor_i), ``[B]``, with factor_i = sigmoid((l_i - mu_C) / sigma_C) (0 for
    wrong responses)."""
    _, mean, var = batch.moments(batch.lengths, batch.correct)  # [num_groups], NaN without a correct response
    std = var.sqrt()
    std_i = batch.per_group(std)
    z = divide_where(batch.lengths - batch.per_group(mean), std_i, std_i > 0)
    correct = batch.correct
    factor = torch.where(correct, torch.sigmoid(z), torch.zeros_like(z))
    has_correct = batch.num_correct > 0
    statistics = {
        "length_factor/mean": masked_mean(factor, correct),
        "correct_length_mean/mean": masked_mean(torch.nan_to_num(mean), has_correct),
        "correct_length_std/mean": masked_mean(torch.nan_to_num(std), has_correct),
    }
    rewards = correct.to(DTYPE) * (1.0 - options.alpha * factor)
    return ShapingOutput(rewards=rewards, statistics=statistics, detail={"factor": factor})
