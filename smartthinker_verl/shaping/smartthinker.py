"""SmartThinker's length calibration (arXiv 2603.08000), for a whole batch at once.

Notation (docs/algorithm.md): a group is the responses to one prompt; for response i, ``l_i`` is its length in
tokens, ``score_i`` its outcome score and ``a_i = [score_i >= correct_threshold]`` its correctness; per group
G = size, k = number correct, p_err = 1 - k / G.

1. Optimal length. Gaussians fitted to all lengths (m1, v1) and to the correct lengths (m2, v2), population
   variances. P(correct | l) ~ N(l; m2, v2) / N(l; m1, v1), stationary at

       l_opt = (v1 * m2 - v2 * m1) / (v1 - v2)                                          (eq. 1)

   ``reference`` rule (the paper's case table): k = G -> min(l); k = 0 -> max(l); v2 < v1 -> eq. 1 clipped to
   [min(l), max(l)]; v2 > v1 -> min(l); v2 == v1 and m2 < m1 -> max(l); v2 == v1 otherwise -> min(l).
   ``argmax`` rule: the exact argmax of log N(l; m2, v2) - log N(l; m1, v1) over [min(l), max(l)] (eq. 1 when
   v1 > v2 and inside the range, else the better end point; m2 when the correct lengths are all equal).
2. Penalty, correct responses only: s_i = max(0, l_i - l_opt) (``one_sided``) or |l_i - l_opt| (``symmetric``);
   s_i = 0 for incorrect responses.                                                      (eq. 2)
3. Coefficient: coef = p_err / (max_{i: a_i = 1} s_i - mean_i s_i) (``dynamic``), 0 for groups that are all
   correct, all wrong, or have no penalised response; or a constant for mixed groups (``fixed``).   (eq. 3)
4. Shaped reward: r_i = score_i - coef * s_i; with the paper's 1/0 scorer score_i = a_i.   (eq. 4)

With 1/0 scores and the dynamic coefficient the most-penalised correct response gets exactly the group's mean
reward, so no correct answer is pushed below the mean (with partial credit: docs/algorithm.md, "Partial credit").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from smartthinker_verl.options import SmartThinkerConfig
from smartthinker_verl.shaping.groups import DTYPE, GroupedBatch, divide_where, masked_mean
from smartthinker_verl.shaping.registry import ShapingOutput, shaping_method

#: Excess lengths (tokens) below this are float64 rounding of eq. 1, not a penalty: a lone correct response has
#: l_opt = its own length in exact arithmetic, and penalising the rounding would set its reward to the group mean.
LENGTH_TOLERANCE = 1e-6
#: The fitted variances count as equal (the paper's v2 == v1 cases) within this relative tolerance: fitted twice from
#: the same lengths they can differ by rounding, and eq. 1 divided by that difference would flip l_opt to the other end.
VARIANCE_RTOL = 1e-12

#: SmartThinker's own per-step statistics (logged as ``smartthinker/<name>`` with the outcome statistics).
STATISTICS: tuple[str, ...] = (
    "optimal_length/mean",
    "coefficient/mean",
    "shaped_group_frac",
    "penalized_frac",
    "all_correct_group_frac",
    "all_wrong_group_frac",
)


@dataclass(frozen=True)
class GroupStats:
    """Per-group statistics, each of shape ``[num_groups]`` (float64 unless stated; sizes, counts of correct
    responses and mixedness are the batch's)."""

    optimal_length: torch.Tensor  # l_opt (eq. 1)
    coefficient: torch.Tensor  # coef (eq. 3)
    shaped: torch.Tensor  # bool: the length penalty changed at least one reward of the group


@dataclass(frozen=True)
class CalibrationResult:
    """Per-response tensors of shape ``[B]`` (float64), the per-group statistics and the batch."""

    optimal_length: torch.Tensor  # l_opt of the response's group
    penalty: torch.Tensor  # s_i (eq. 2)
    coefficient: torch.Tensor  # coef of the response's group
    shaped_reward: torch.Tensor  # r_i (eq. 4)
    groups: GroupStats
    batch: GroupedBatch


@dataclass(frozen=True)
class LengthFits:
    """The two Gaussian fits and the length range of each group, ``[num_groups]`` float64 each."""

    m1: torch.Tensor
    v1: torch.Tensor
    m2: torch.Tensor  # NaN when no response is correct
    v2: torch.Tensor  # NaN when no response is correct
    min_length: torch.Tensor
    max_length: torch.Tensor


def fit_lengths(batch: GroupedBatch) -> LengthFits:
    """Population mean and variance of all lengths (m1, v1) and of the correct lengths (m2, v2), and min/max."""
    _, m1, v1 = batch.moments(batch.lengths)
    _, m2, v2 = batch.moments(batch.lengths, batch.correct)
    return LengthFits(m1, v1, m2, v2, batch.group_min(batch.lengths), batch.group_max(batch.lengths))


def _log_ratio(length: torch.Tensor, m1, v1, m2, v2) -> torch.Tensor:
    """log N(l; m2, v2) - log N(l; m1, v1), for v1, v2 > 0 (the constants are kept)."""
    return -((length - m2) ** 2) / (2 * v2) + ((length - m1) ** 2) / (2 * v1) - 0.5 * torch.log(v2 / v1)


def optimal_lengths(rule: str, num_correct: torch.Tensor, size: torch.Tensor, fits: LengthFits) -> torch.Tensor:
    """l_opt per group ``[num_groups]`` by the ``reference`` or ``argmax`` rule (eq. 1 and its case table); the rule
    names, like those below, are checked by :class:`SmartThinkerConfig`."""
    m1, v1, lo, hi = fits.m1, fits.v1, fits.min_length, fits.max_length
    all_correct = num_correct == size
    none_correct = num_correct == 0
    m2 = torch.where(none_correct, m1, fits.m2)
    v2 = torch.where(none_correct, v1, fits.v2)
    denominator = v1 - v2
    closed_form = divide_where(v1 * m2 - v2 * m1, denominator, denominator != 0).clamp(min=lo, max=hi)
    equal_var = torch.isclose(v2, v1, rtol=VARIANCE_RTOL, atol=0.0)

    if rule == "reference":
        l_opt = torch.where(v2 < v1, closed_form, lo)
        l_opt = torch.where(equal_var & (m2 < m1), hi, l_opt)
        l_opt = torch.where(equal_var & ~(m2 < m1), lo, l_opt)
    else:  # argmax
        positive = (v1 > 0) & (v2 > 0)
        v1_pos = torch.where(positive, v1, torch.ones_like(v1))
        v2_pos = torch.where(positive, v2, torch.ones_like(v1))
        at_min = _log_ratio(lo, m1, v1_pos, m2, v2_pos)
        at_max = _log_ratio(hi, m1, v1_pos, m2, v2_pos)
        best_end = torch.where(at_max > at_min, hi, lo)
        interior = (v2 < v1) & ~equal_var  # concave log-ratio: eq. 1 (clipped) is the argmax
        l_opt = torch.where(interior, closed_form, best_end)
        # v2 = 0: the correct lengths are all m2 and the fitted ratio peaks there (a point mass).
        l_opt = torch.where(~positive, m2, l_opt)

    l_opt = torch.where(all_correct, lo, l_opt)
    return torch.where(none_correct, hi, l_opt)


def penalties(batch: GroupedBatch, l_opt: torch.Tensor, rule: str) -> torch.Tensor:
    """s_i (eq. 2), ``[B]``: correct responses only; an excess within ``LENGTH_TOLERANCE`` is no penalty."""
    excess = batch.lengths - batch.per_group(l_opt)
    s = excess.clamp(min=0) if rule == "one_sided" else excess.abs()
    return torch.where(batch.correct & (s > LENGTH_TOLERANCE), s, torch.zeros_like(s))


def coefficients(
    batch: GroupedBatch, s: torch.Tensor, rule: str, fixed_coefficient: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """coef per group (eq. 3), with max_{correct} s; ``[num_groups]`` each."""
    max_correct_s = batch.group_max(torch.where(batch.correct, s, torch.zeros_like(s)))
    mean_s = batch.group_mean(s)
    mixed = batch.mixed
    if rule == "fixed":
        coef = torch.where(mixed, torch.full_like(mean_s, float(fixed_coefficient)), torch.zeros_like(mean_s))
    else:  # dynamic. In a mixed group a wrong response has s = 0, so max s > 0 implies max s - mean s > 0.
        p_err = 1.0 - batch.num_correct.to(DTYPE) / batch.size.to(DTYPE)
        coef = divide_where(p_err, max_correct_s - mean_s, mixed & (max_correct_s > 0))
    return coef, max_correct_s


def calibrate_batch(batch: GroupedBatch, options: SmartThinkerConfig) -> CalibrationResult:
    """SmartThinker's shaped rewards (eqs. 1-4) for a validated batch of groups under ``options``' rules."""
    fits = fit_lengths(batch)
    l_opt = optimal_lengths(options.optimal_length, batch.num_correct, batch.size, fits)
    s = penalties(batch, l_opt, options.penalty)
    coef, max_correct_s = coefficients(batch, s, options.coefficient, options.fixed_coefficient)
    coef_i = batch.per_group(coef)
    shaped_reward = batch.scores - coef_i * s  # eq. 4
    return CalibrationResult(
        optimal_length=batch.per_group(l_opt),
        penalty=s,
        coefficient=coef_i,
        shaped_reward=shaped_reward,
        groups=GroupStats(optimal_length=l_opt, coefficient=coef, shaped=(coef > 0) & (max_correct_s > 0)),
        batch=batch,
    )


def calibrate(
    lengths: torch.Tensor,
    scores: torch.Tensor,
    group_ids: torch.Tensor,
    num_groups: int | None = None,
    **options: Any,
) -> CalibrationResult:
    """SmartThinker's shaped rewards (eqs. 1-4) for ``[B]`` lengths, scores and dense group ids (the arguments of
    :meth:`GroupedBatch.build`); ``options``: the keys of :class:`SmartThinkerConfig` (``correct_threshold``,
    ``optimal_length``, ``penalty``, ``coefficient``, ``fixed_coefficient``), checked by it."""
    config = SmartThinkerConfig(**options)
    batch = GroupedBatch.build(lengths, scores, group_ids, num_groups, correct_threshold=config.correct_threshold)
    return calibrate_batch(batch, config)


def step_statistics(result: CalibrationResult) -> dict[str, torch.Tensor]:
    """:data:`STATISTICS` of a :class:`CalibrationResult` (0-d float64 tensors).

    ``optimal_length`` and ``coefficient`` are means over the mixed groups (some but not all responses correct: the
    only groups where l_opt means something); NaN on a step without one.
    """
    groups, batch = result.groups, result.batch
    return {
        "optimal_length/mean": masked_mean(groups.optimal_length, batch.mixed),
        "coefficient/mean": masked_mean(groups.coefficient, batch.mixed),
        "shaped_group_frac": groups.shaped.double().mean(),
        "penalized_frac": (result.coefficient * result.penalty > 0).double().mean(),
        "all_correct_group_frac": (batch.num_correct == batch.size).double().mean(),
        "all_wrong_group_frac": (batch.num_correct == 0).double().mean(),
    }


@shaping_method(
    SmartThinkerConfig,
    statistics=STATISTICS,
    formula="r = score - coef * max(0, len - l_opt) for correct responses; l_opt and coef calibrated per group",
    aliases=("grpo_smartthinker",),
)
def shape(batch: GroupedBatch, options: SmartThinkerConfig) -> ShapingOutput:
    """SmartThinker's shaped rewards (eq. 4) for ``batch``; ``detail`` is the :class:`CalibrationResult`."""
    result = calibrate_batch(batch, options)
    return ShapingOutput(
        rewards=result.shaped_reward, shaped=result.groups.shaped, statistics=step_statistics(result), detail=result
    )
