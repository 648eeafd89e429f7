"""Group bookkeeping shared by every shaping method. A *group* is the responses to one prompt (verl's ``uid``), of
any size, interleaved in any order: every statistic is a segment reduction over dense group ids, no Python loop.
:class:`GroupedBatch` is what a shaping method receives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

DTYPE = torch.float64


def group_ids_from_index(index: np.ndarray | list | torch.Tensor) -> tuple[torch.Tensor, int]:
    """Map verl's per-response group keys (uid strings, ints, ...) to dense ids.

    Args:
        index: ``[B]`` group key per response (any hashable values).

    Returns:
        ``(group_ids [B] int64 in [0, num_groups), num_groups)``; ids follow first appearance in the batch.
    """
    import pandas as pd  # here, not at the top: the shaping maths imports with torch alone (benchmarks/gpu_check.sh)

    if isinstance(index, torch.Tensor):
        keys = index.detach().cpu().numpy()
    else:
        keys = np.asarray(index, dtype=object) if not isinstance(index, np.ndarray) else index
    if keys.ndim != 1:
        raise ValueError(f"index must be 1-D (one group key per response), got shape {keys.shape}")
    codes, uniques = pd.factorize(keys)  # -1 marks a missing key
    if len(codes) and int(codes.min()) < 0:
        raise ValueError("index holds a missing group key (None/NaN): every response needs its prompt's uid")
    return torch.from_numpy(codes.astype(np.int64, copy=False)), len(uniques)


def segment_sum(values: torch.Tensor, group_ids: torch.Tensor, num_groups: int) -> torch.Tensor:
    """``[num_groups]`` sums of ``values [B]`` per group."""
    return torch.zeros(num_groups, dtype=values.dtype, device=values.device).index_add_(0, group_ids, values)


def incomplete_groups(group_ids: torch.Tensor, num_groups: int, group_size: int) -> int:
    """How many groups hold fewer than ``group_size`` responses (the rollout's ``n``).

    Args:
        group_ids: ``[B]`` dense group id per real response (:func:`group_ids_from_index` of the rows left after
            dropping verl's padding rows, so a group of padding only is no group).
        num_groups: number of groups.
        group_size: responses sampled per prompt.
    """
    return int((torch.bincount(group_ids, minlength=num_groups) < group_size).sum())


def segment_extreme(values: torch.Tensor, group_ids: torch.Tensor, num_groups: int, reduce: str) -> torch.Tensor:
    """``[num_groups]`` minimum (``reduce="amin"``) or maximum (``"amax"``) of ``values [B]`` per group; +-inf for
    a group with no value (only possible when ``values`` was masked by the caller)."""
    fill = float("inf") if reduce == "amin" else float("-inf")
    out = torch.full((num_groups,), fill, dtype=values.dtype, device=values.device)
    return out.scatter_reduce_(0, group_ids, values, reduce=reduce, include_self=True)


def gather(per_group: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """``[num_groups]`` values broadcast to ``[B]`` responses: ``per_group[group_ids]``."""
    return per_group.index_select(0, group_ids)


def divide_where(numerator: torch.Tensor, denominator: torch.Tensor, where: torch.Tensor, fill: float = 0.0):
    """``numerator / denominator`` where ``where`` holds, ``fill`` elsewhere, never dividing by the masked-out
    denominators (a zero spread, an empty class); all three broadcast together."""
    safe = torch.where(where, denominator, torch.ones_like(denominator))
    return torch.where(where, numerator / safe, torch.full_like(numerator / safe, fill))


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over ``mask`` (same shape) as a 0-d float64 tensor; NaN when the mask is empty (a gap in
    plots). The one masked mean of the package."""
    return (values.double() * mask).sum() / mask.sum()  # 0 / 0 = NaN


#: The statistics every method logs, in logging order (:func:`outcome_statistics`).
OUTCOME_METRIC_NAMES: tuple[str, ...] = ("accuracy/mean", "length_correct/mean", "length_incorrect/mean")


def outcome_statistics(batch: GroupedBatch) -> dict[str, torch.Tensor]:
    """:data:`OUTCOME_METRIC_NAMES` as 0-d float64 tensors (a length is NaN on a step without such a response)."""
    correct = batch.correct
    return {
        "accuracy/mean": correct.double().mean(),
        "length_correct/mean": masked_mean(batch.lengths, correct),
        "length_incorrect/mean": masked_mean(batch.lengths, ~correct),
    }


@dataclass(frozen=True)
class GroupedBatch:
    """One batch of responses, validated, with per-group sizes. Every per-response tensor is ``[B]``.

    Attributes:
        lengths: float64 response lengths in tokens (``response_mask.sum(-1)``).
        scores: float64 outcome scores (the reward manager's score; 1/0 for the paper's scorer).
        correct: bool, ``scores >= correct_threshold``.
        group_ids: int64 dense group ids in ``[0, num_groups)``.
        num_groups: number of groups.
        size: ``[num_groups]`` int64 responses per group (each >= 1).
        num_correct: ``[num_groups]`` int64 correct responses per group.
    """

    lengths: torch.Tensor
    scores: torch.Tensor
    correct: torch.Tensor
    group_ids: torch.Tensor
    num_groups: int
    size: torch.Tensor
    num_correct: torch.Tensor

    @classmethod
    def build(
        cls,
        lengths: torch.Tensor,
        scores: torch.Tensor,
        group_ids: torch.Tensor,
        num_groups: int | None = None,
        *,
        correct_threshold: float = 0.5,
    ) -> GroupedBatch:
        """Validate and convert the per-response inputs.

        Args:
            lengths: ``[B]`` response lengths (any real dtype; finite, non-negative).
            scores: ``[B]`` outcome scores (any real dtype; finite). A bool tensor is read as 1/0 scores.
            group_ids: ``[B]`` int64 dense group ids (see :func:`group_ids_from_index`).
            num_groups: number of groups (default ``group_ids.max() + 1``); every id below it must occur.
            correct_threshold: a response is correct when its score >= this.
        """
        if lengths.ndim != 1 or scores.shape != lengths.shape or group_ids.shape != lengths.shape:
            raise ValueError(
                f"lengths, scores and group_ids must be 1-D of the same length, got shapes {tuple(lengths.shape)}, "
                f"{tuple(scores.shape)}, {tuple(group_ids.shape)}"
            )
        device = lengths.device
        length = lengths.to(DTYPE)
        if length.numel() and not (bool(length.min() >= 0) and bool(length.max() < float("inf"))):  # NaN fails
            raise ValueError("lengths must be finite and non-negative (number of valid response tokens)")
        score = scores.to(device=device, dtype=DTYPE)
        if score.numel() and not bool(torch.isfinite(score).all()):
            raise ValueError("scores must be finite: check the reward manager / scorer output")
        group_ids = group_ids.to(device=device, dtype=torch.int64)
        if num_groups is None:
            num_groups = int(group_ids.max()) + 1 if group_ids.numel() else 0
        if group_ids.numel() and not (int(group_ids.min()) >= 0 and int(group_ids.max()) < num_groups):
            raise ValueError(f"group_ids must lie in [0, {num_groups})")
        size = torch.bincount(group_ids, minlength=num_groups)
        if bool((size == 0).any()):
            raise ValueError("every group id in [0, num_groups) must have at least one response")
        correct = score >= correct_threshold
        num_correct = segment_sum(correct.to(torch.int64), group_ids, num_groups)
        return cls(length, score, correct, group_ids, num_groups, size, num_correct)

    @property
    def mixed(self) -> torch.Tensor:
        """``[num_groups]`` bool: some but not all responses correct."""
        return (self.num_correct > 0) & (self.num_correct < self.size)

    def per_group(self, values: torch.Tensor) -> torch.Tensor:
        """``[num_groups]`` broadcast back to ``[B]``."""
        return gather(values, self.group_ids)

    def group_sum(self, values: torch.Tensor) -> torch.Tensor:
        """``[B]`` -> ``[num_groups]`` sums."""
        return segment_sum(values, self.group_ids, self.num_groups)

    def group_mean(self, values: torch.Tensor) -> torch.Tensor:
        """``[B]`` float64 -> ``[num_groups]`` means over every response of the group."""
        return self.group_sum(values) / self.size.to(values.dtype)

    def group_min(self, values: torch.Tensor) -> torch.Tensor:
        """``[B]`` -> ``[num_groups]`` minima."""
        return segment_extreme(values, self.group_ids, self.num_groups, "amin")

    def group_max(self, values: torch.Tensor) -> torch.Tensor:
        """``[B]`` -> ``[num_groups]`` maxima."""
        return segment_extreme(values, self.group_ids, self.num_groups, "amax")

    def moments(self, values: torch.Tensor, mask: torch.Tensor | None = None):
        """Count, mean and population variance of ``values [B]`` per group over the responses where ``mask [B]``
        holds (all when None): ``(count [num_groups] int64, mean, var)``, mean and var NaN where count is 0. Two
        passes (mean, then squared deviations) for accuracy."""
        mask = torch.ones_like(self.correct) if mask is None else mask
        weight = mask.to(values.dtype)
        count = self.group_sum(mask.to(torch.int64))
        count_safe = count.clamp(min=1).to(values.dtype)
        mean = self.group_sum(values * weight) / count_safe
        var = self.group_sum((values - self.per_group(mean)) ** 2 * weight) / count_safe
        nan = torch.full_like(mean, float("nan"))
        return count, torch.where(count == 0, nan, mean), torch.where(count == 0, nan, var)
