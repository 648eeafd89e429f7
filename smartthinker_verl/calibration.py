"""SmartThinker's length calibration for a whole batch at once (pure torch; never imports verl).

Notation (ALGORITHM.md): a group is the responses to one prompt; for response i, ``l_i`` is its length in tokens and
``a_i`` in {0, 1} its correctness; per group G = size, k = number correct, p_err = 1 - k / G.

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
4. Shaped reward: r_i = a_i - coef * s_i.                                                (eq. 4)

With the dynamic coefficient the most-penalised correct response gets exactly the group's mean reward, so no correct
answer is pushed below the mean. Groups may be of any size, in any order, interleaved in the batch: every group
statistic is a segment reduction over group ids (``index_add_`` / ``scatter_reduce``), in float64, with no Python
loop over responses or groups. Unlike a float32 implementation, a group whose correct responses all share one
length (e.g. a single correct response) is never penalised: excesses below ``LENGTH_TOLERANCE`` count as zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

#: Excess lengths (tokens) below this are rounding noise, not a penalty.
LENGTH_TOLERANCE = 1e-6
#: Relative tolerance under which the two fitted variances count as equal (the paper's v2 == v1 cases).
VARIANCE_RTOL = 1e-12

DTYPE = torch.float64


@dataclass(frozen=True)
class GroupStats:
    """Per-group statistics, each of shape ``[num_groups]`` (float64 unless stated)."""

    size: torch.Tensor  # int64, G
    num_correct: torch.Tensor  # int64, k
    mean_length: torch.Tensor  # m1
    var_length: torch.Tensor  # v1 (population)
    mean_correct_length: torch.Tensor  # m2 (NaN when k = 0)
    var_correct_length: torch.Tensor  # v2 (population; NaN when k = 0)
    min_length: torch.Tensor
    max_length: torch.Tensor
    optimal_length: torch.Tensor  # l_opt (eq. 1)
    coefficient: torch.Tensor  # coef (eq. 3)
    max_correct_penalty: torch.Tensor  # max_{i: a_i = 1} s_i (0 when k = 0)
    mean_penalty: torch.Tensor  # mean_i s_i
    mixed: torch.Tensor  # bool: 0 < k < G
    shaped: torch.Tensor  # bool: the length penalty changed at least one reward of the group


@dataclass(frozen=True)
class CalibrationResult:
    """Per-response tensors of shape ``[B]`` (float64 unless stated) and the per-group statistics."""

    lengths: torch.Tensor
    correct: torch.Tensor  # bool
    group_ids: torch.Tensor  # int64 in [0, num_groups)
    optimal_length: torch.Tensor  # l_opt of the response's group
    penalty: torch.Tensor  # s_i (eq. 2)
    coefficient: torch.Tensor  # coef of the response's group
    shaped_reward: torch.Tensor  # r_i (eq. 4)
    groups: GroupStats


def group_ids_from_index(index: np.ndarray | list | torch.Tensor) -> tuple[torch.Tensor, int]:
    """Map verl's per-response group keys (uid strings, ints, ...) to dense ids.

    Args:
        index: ``[B]`` group key per response (any hashable values).

    Returns:
        ``(group_ids [B] int64 in [0, num_groups), num_groups)``; ids follow first appearance in the batch.
    """
    if isinstance(index, torch.Tensor):
        keys = index.detach().cpu().numpy()
    else:
        keys = np.asarray(index, dtype=object) if not isinstance(index, np.ndarray) else index
    if keys.ndim != 1:
        raise ValueError(f"index must be 1-D (one group key per response), got shape {keys.shape}")
    codes, uniques = pd.factorize(keys)  # hash-based, in C; -1 marks a missing key
    if len(codes) and int(codes.min()) < 0:
        raise ValueError("index holds a missing group key (None/NaN): every response needs its prompt's uid")
    return torch.from_numpy(codes.astype(np.int64, copy=False)), len(uniques)


def _segment_sum(values: torch.Tensor, group_ids: torch.Tensor, num_groups: int) -> torch.Tensor:
    return torch.zeros(num_groups, dtype=values.dtype, device=values.device).index_add_(0, group_ids, values)


def _all_finite_non_negative(values: torch.Tensor) -> bool:
    lowest, highest = torch.aminmax(values)
    return bool(lowest >= 0) and bool(highest < float("inf"))  # NaN fails both comparisons


def _all_in_range(ids: torch.Tensor, upper: int) -> bool:
    lowest, highest = (int(x) for x in torch.aminmax(ids))
    return lowest >= 0 and highest < upper


def _gather(per_group: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """Per-group values broadcast to responses: ``per_group[group_ids]`` (index_select is the fast path)."""
    return per_group.index_select(0, group_ids)


def _segment_extreme(values: torch.Tensor, group_ids: torch.Tensor, num_groups: int, reduce: str) -> torch.Tensor:
    fill = float("inf") if reduce == "amin" else float("-inf")
    out = torch.full((num_groups,), fill, dtype=values.dtype, device=values.device)
    return out.scatter_reduce_(0, group_ids, values, reduce=reduce, include_self=True)


def _log_ratio(length: torch.Tensor, m1, v1, m2, v2) -> torch.Tensor:
    """log N(l; m2, v2) - log N(l; m1, v1), for v1, v2 > 0 (up to nothing: the constants are kept)."""
    return -((length - m2) ** 2) / (2 * v2) + ((length - m1) ** 2) / (2 * v1) - 0.5 * torch.log(v2 / v1)


def optimal_lengths(
    rule: str,
    num_correct: torch.Tensor,
    size: torch.Tensor,
    m1: torch.Tensor,
    v1: torch.Tensor,
    m2: torch.Tensor,
    v2: torch.Tensor,
    min_length: torch.Tensor,
    max_length: torch.Tensor,
) -> torch.Tensor:
    """l_opt per group ``[num_groups]`` by the ``reference`` or ``argmax`` rule (see the module docstring)."""
    all_correct = num_correct == size
    none_correct = num_correct == 0
    m2_safe = torch.where(none_correct, m1, m2)
    v2_safe = torch.where(none_correct, v1, v2)
    denominator = v1 - v2_safe
    closed_form = (v1 * m2_safe - v2_safe * m1) / torch.where(denominator == 0, torch.ones_like(v1), denominator)
    closed_form = torch.minimum(torch.maximum(closed_form, min_length), max_length)
    equal_var = torch.isclose(v2_safe, v1, rtol=VARIANCE_RTOL, atol=0.0)

    if rule == "reference":
        l_opt = torch.where(v2_safe < v1, closed_form, min_length)
        l_opt = torch.where(equal_var & (m2_safe < m1), max_length, l_opt)
        l_opt = torch.where(equal_var & ~(m2_safe < m1), min_length, l_opt)
    elif rule == "argmax":
        positive = (v1 > 0) & (v2_safe > 0)
        v1_pos = torch.where(positive, v1, torch.ones_like(v1))
        v2_pos = torch.where(positive, v2_safe, torch.ones_like(v1))
        at_min = _log_ratio(min_length, m1, v1_pos, m2_safe, v2_pos)
        at_max = _log_ratio(max_length, m1, v1_pos, m2_safe, v2_pos)
        best_end = torch.where(at_max > at_min, max_length, min_length)
        interior = (v2_safe < v1) & ~equal_var  # concave log-ratio: eq. 1 (clipped) is the argmax
        l_opt = torch.where(interior, closed_form, best_end)
        # v2 = 0: the correct lengths are all m2 and the fitted ratio peaks there (a point mass).
        l_opt = torch.where(~positive, m2_safe, l_opt)
    else:
        raise ValueError(f"optimal_length rule {rule!r}: use 'reference' or 'argmax'")

    l_opt = torch.where(all_correct, min_length, l_opt)
    return torch.where(none_correct, max_length, l_opt)


def calibrate(
    lengths: torch.Tensor,
    correct: torch.Tensor,
    group_ids: torch.Tensor,
    num_groups: int | None = None,
    *,
    optimal_length: str = "reference",
    penalty: str = "one_sided",
    coefficient: str = "dynamic",
    fixed_coefficient: float | None = None,
) -> CalibrationResult:
    """SmartThinker's shaped rewards (eqs. 1-4) for a batch of groups.

    Args:
        lengths: ``[B]`` response lengths in tokens (any real dtype; non-negative, finite).
        correct: ``[B]`` bool correctness a_i.
        group_ids: ``[B]`` int64 dense group ids in ``[0, num_groups)`` (see :func:`group_ids_from_index`).
        num_groups: number of groups (default ``group_ids.max() + 1``); every id below it must occur.
        optimal_length, penalty, coefficient, fixed_coefficient: the rules (see ``SmartThinkerConfig``).

    Returns:
        :class:`CalibrationResult` with float64 ``[B]`` tensors and ``[num_groups]`` group statistics.
    """
    if lengths.ndim != 1 or correct.shape != lengths.shape or group_ids.shape != lengths.shape:
        raise ValueError(
            f"lengths, correct and group_ids must be 1-D of the same length, got shapes {tuple(lengths.shape)}, "
            f"{tuple(correct.shape)}, {tuple(group_ids.shape)}"
        )
    if penalty not in ("one_sided", "symmetric"):
        raise ValueError(f"penalty rule {penalty!r}: use 'one_sided' or 'symmetric'")
    if coefficient not in ("dynamic", "fixed"):
        raise ValueError(f"coefficient rule {coefficient!r}: use 'dynamic' or 'fixed'")
    if coefficient == "fixed" and (fixed_coefficient is None or not fixed_coefficient > 0):
        raise ValueError("coefficient='fixed' needs fixed_coefficient > 0")
    device = lengths.device
    length = lengths.to(DTYPE)
    if length.numel() and not _all_finite_non_negative(length):
        raise ValueError("lengths must be finite and non-negative (number of valid response tokens)")
    correct = correct.to(torch.bool)
    group_ids = group_ids.to(device=device, dtype=torch.int64)
    if num_groups is None:
        num_groups = int(group_ids.max()) + 1 if group_ids.numel() else 0
    if group_ids.numel() and not _all_in_range(group_ids, num_groups):
        raise ValueError(f"group_ids must lie in [0, {num_groups})")

    accuracy = correct.to(DTYPE)
    size = torch.bincount(group_ids, minlength=num_groups)
    if bool((size == 0).any()):
        raise ValueError("every group id in [0, num_groups) must have at least one response")
    num_correct = _segment_sum(correct.to(torch.int64), group_ids, num_groups)
    size_f, k_f = size.to(DTYPE), num_correct.to(DTYPE)

    # Gaussian fits (population variances, two-pass for accuracy).
    m1 = _segment_sum(length, group_ids, num_groups) / size_f
    v1 = _segment_sum((length - _gather(m1, group_ids)) ** 2, group_ids, num_groups) / size_f
    k_safe = k_f.clamp(min=1)
    m2 = _segment_sum(length * accuracy, group_ids, num_groups) / k_safe
    v2 = _segment_sum(((length - _gather(m2, group_ids)) ** 2) * accuracy, group_ids, num_groups) / k_safe
    none_correct = num_correct == 0
    m2 = torch.where(none_correct, torch.full_like(m2, float("nan")), m2)
    v2 = torch.where(none_correct, torch.full_like(v2, float("nan")), v2)
    min_length = _segment_extreme(length, group_ids, num_groups, "amin")
    max_length = _segment_extreme(length, group_ids, num_groups, "amax")

    l_opt = optimal_lengths(optimal_length, num_correct, size, m1, v1, m2, v2, min_length, max_length)

    # Penalty (eq. 2): correct responses only; rounding noise is no penalty.
    excess = length - _gather(l_opt, group_ids)
    s = excess.clamp(min=0) if penalty == "one_sided" else excess.abs()
    s = torch.where(correct & (s > LENGTH_TOLERANCE), s, torch.zeros_like(s))

    # Coefficient (eq. 3).
    max_correct_s = _segment_extreme(torch.where(correct, s, torch.zeros_like(s)), group_ids, num_groups, "amax")
    mean_s = _segment_sum(s, group_ids, num_groups) / size_f
    mixed = (num_correct > 0) & (num_correct < size)
    if coefficient == "dynamic":
        gap = max_correct_s - mean_s
        usable = mixed & (gap > LENGTH_TOLERANCE)
        p_err = 1.0 - k_f / size_f
        coef = torch.where(usable, p_err / torch.where(usable, gap, torch.ones_like(gap)), torch.zeros_like(gap))
    else:
        coef = torch.where(mixed, torch.full_like(m1, float(fixed_coefficient)), torch.zeros_like(m1))

    coef_i = _gather(coef, group_ids)
    shaped_reward = accuracy - coef_i * s  # eq. 4
    shaped = (coef > 0) & (max_correct_s > 0)

    groups = GroupStats(
        size=size,
        num_correct=num_correct,
        mean_length=m1,
        var_length=v1,
        mean_correct_length=m2,
        var_correct_length=v2,
        min_length=min_length,
        max_length=max_length,
        optimal_length=l_opt,
        coefficient=coef,
        max_correct_penalty=max_correct_s,
        mean_penalty=mean_s,
        mixed=mixed,
        shaped=shaped,
    )
    return CalibrationResult(
        lengths=length,
        correct=correct,
        group_ids=group_ids,
        optimal_length=_gather(l_opt, group_ids),
        penalty=s,
        coefficient=coef_i,
        shaped_reward=shaped_reward,
        groups=groups,
    )


def grpo_normalize(
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    num_groups: int,
    *,
    norm_by_std: bool = True,
    epsilon: float = 1e-6,
) -> torch.Tensor:
    """GRPO advantages per response: A_i = (r_i - mean_g r) / (std_g r + eps), or r_i - mean_g r.

    Unbiased std (N - 1), as verl's GRPO; a group of one response gets mean 0 and std 1 (verl's convention). The
    arithmetic mirrors verl's ``grpo`` on CPU (mean in the rewards' dtype, std accumulated in float64 then rounded),
    so unshaped rewards give bit-identical advantages.

    Args:
        rewards: ``[B]`` rewards, in the dtype the advantages should have (verl: float32).
        group_ids: ``[B]`` int64 dense group ids.

    Returns:
        ``[B]`` advantages, dtype of ``rewards``.
    """
    size = torch.bincount(group_ids, minlength=num_groups)
    mean = _segment_sum(rewards, group_ids, num_groups) / size.to(rewards.dtype)
    rewards64 = rewards.to(DTYPE)
    mean64 = _segment_sum(rewards64, group_ids, num_groups) / size.to(DTYPE)
    var64 = _segment_sum((rewards64 - _gather(mean64, group_ids)) ** 2, group_ids, num_groups) / (size - 1).clamp(min=1)
    single = size == 1
    mean = torch.where(single, torch.zeros_like(mean), mean)
    std = torch.where(single, torch.ones_like(mean), var64.sqrt().to(rewards.dtype))
    centered = rewards - _gather(mean, group_ids)
    return centered / (_gather(std, group_ids) + epsilon) if norm_by_std else centered
