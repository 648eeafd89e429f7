"""GRPO's group normalisation of shaped rewards (pure torch; never imports verl).

    A_i = (r_i - mean_g r) / (std_g r + epsilon)        or, with ``norm_by_std=False`` (Dr. GRPO),  r_i - mean_g r

Unbiased std (N - 1), as verl's GRPO; a group of one response gets mean 0 and std 1 (verl's convention). The
arithmetic mirrors verl's ``grpo`` on CPU (mean in the rewards' dtype, std accumulated in float64 then rounded), so
rewards that no shaping changed give bit-identical advantages.

One deliberate difference: a group whose rewards are all equal (zero spread) gets advantage exactly 0. verl's
float32 mean of equal rewards that float32 cannot represent exactly (0.95, 1 - alpha/2, ...) is off by an ulp, and
dividing that by std + epsilon = 1e-6 turns it into an advantage near +-0.5 for every response of the group
(:func:`zero_spread_groups`).
"""

from __future__ import annotations

import torch

from smartthinker_verl.shaping.groups import DTYPE, gather, segment_extreme, segment_sum

#: A shaped group's advantage whose magnitude is below this many units of rounding (see :func:`rounding_tolerance`)
#: is rounding noise and is set to exactly 0.
ROUNDING_ULPS = 8.0


def group_std(rewards: torch.Tensor, group_ids: torch.Tensor, num_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-group mean (in the rewards' dtype) and unbiased std (float64 accumulation, rounded to the rewards' dtype),
    ``[num_groups]`` each, with verl's convention for groups of one (mean 0, std 1)."""
    size = torch.bincount(group_ids, minlength=num_groups)
    mean = segment_sum(rewards, group_ids, num_groups) / size.to(rewards.dtype)
    rewards64 = rewards.to(DTYPE)
    mean64 = segment_sum(rewards64, group_ids, num_groups) / size.to(DTYPE)
    var64 = segment_sum((rewards64 - gather(mean64, group_ids)) ** 2, group_ids, num_groups) / (size - 1).clamp(min=1)
    single = size == 1
    mean = torch.where(single, torch.zeros_like(mean), mean)
    std = torch.where(single, torch.ones_like(mean), var64.sqrt().to(rewards.dtype))
    return mean, std


def zero_spread_groups(
    rewards: torch.Tensor, group_ids: torch.Tensor, num_groups: int, dtype: torch.dtype
) -> torch.Tensor:
    """``[num_groups]`` bool: groups of two or more responses whose rewards are equal up to the resolution of
    ``dtype`` (the advantages' dtype). A group of one keeps verl's convention (mean 0, std 1: A = r).

    The spread max - min is taken in float64 and compared with ``ROUNDING_ULPS`` units of ``dtype`` at the group's
    largest |r|: a reward difference below it does not survive the cast to ``dtype`` as information, only as noise.
    """
    rewards64 = rewards.to(DTYPE)
    spread = segment_extreme(rewards64, group_ids, num_groups, "amax") - segment_extreme(
        rewards64, group_ids, num_groups, "amin"
    )
    scale = segment_extreme(rewards64.abs(), group_ids, num_groups, "amax")
    several = torch.bincount(group_ids, minlength=num_groups) > 1
    return several & (spread <= ROUNDING_ULPS * torch.finfo(dtype).eps * scale)


def grpo_normalize(
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    num_groups: int,
    *,
    norm_by_std: bool = True,
    epsilon: float = 1e-6,
    stats: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """GRPO advantages per response.

    Args:
        rewards: ``[B]`` rewards, in the dtype the advantages should have (verl: float32).
        group_ids: ``[B]`` int64 dense group ids in ``[0, num_groups)``.
        num_groups: number of groups.
        norm_by_std: divide by the group std (GRPO) or not (Dr. GRPO).
        epsilon: added to the std.
        stats: ``group_std(rewards, group_ids, num_groups)`` when the caller already has it.

    Returns:
        ``[B]`` advantages, dtype of ``rewards``.
    """
    mean, std = stats if stats is not None else group_std(rewards, group_ids, num_groups)
    centered = rewards - gather(mean, group_ids)
    return centered / (gather(std, group_ids) + epsilon) if norm_by_std else centered


def rounding_tolerance(
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    num_groups: int,
    *,
    norm_by_std: bool = True,
    epsilon: float = 1e-6,
    stats: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """``[B]`` size of the rounding noise in each response's advantage.

    Computing a group mean of G rewards in a dtype with machine epsilon u errs by about G * u * max_g |r|; the
    advantage carries that error divided by (std_g + epsilon) when normalised. The tolerance is ``ROUNDING_ULPS``
    times that bound: far below any advantage a real reward difference produces, far above what rounding leaves.
    """
    unit = torch.finfo(rewards.dtype).eps
    size = torch.bincount(group_ids, minlength=num_groups).to(DTYPE)
    largest = segment_extreme(rewards.to(DTYPE).abs(), group_ids, num_groups, "amax")
    bound = ROUNDING_ULPS * unit * size * largest
    if norm_by_std:
        _, std = stats if stats is not None else group_std(rewards, group_ids, num_groups)
        bound = bound / (std.to(DTYPE) + epsilon)
    return gather(bound, group_ids)


def zero_rounding_noise(advantages: torch.Tensor, tolerance: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Set advantages with ``|A| <= tolerance`` to exactly 0 where ``where`` holds (``[B]`` each); nothing else
    changes. Used on shaped groups, whose pivot response sits at the group mean in exact arithmetic."""
    noise = where & (advantages.abs().to(DTYPE) <= tolerance)
    return torch.where(noise, torch.zeros_like(advantages), advantages)
