"""GRPO's group normalisation of shaped rewards.

    A_i = (r_i - mean_g r) / (std_g r + epsilon)        or, with ``norm_by_std=False`` (Dr. GRPO),  r_i - mean_g r

Unbiased std (N - 1); a group of one response gets mean 0 and std 1. The arithmetic is verl's ``grpo`` on CPU (mean
in the rewards' dtype, std accumulated in float64 then rounded), so unshaped rewards give bit-identical advantages.
Two exceptions, where verl's float32 rounding would be the whole advantage, get exactly 0 in the adapter:
:func:`zero_spread_groups` and, for SmartThinker's pivot response, :func:`zero_rounding_noise`.
"""

from __future__ import annotations

import torch

from smartthinker_verl.shaping.groups import DTYPE, gather, segment_extreme, segment_sum

#: A shaped group's advantage below this many units of rounding (:func:`rounding_tolerance`) is noise.
ROUNDING_ULPS = 8.0


def group_std(rewards: torch.Tensor, group_ids: torch.Tensor, num_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-group mean (in the rewards' dtype) and unbiased std (float64 accumulation, rounded to the rewards' dtype),
    ``[num_groups]`` each; mean 0 and std 1 for a group of one."""
    size = torch.bincount(group_ids, minlength=num_groups)
    mean = segment_sum(rewards, group_ids, num_groups) / size.to(rewards.dtype)
    rewards64 = rewards.to(DTYPE)
    mean64 = segment_sum(rewards64, group_ids, num_groups) / size.to(DTYPE)
    var64 = segment_sum((rewards64 - gather(mean64, group_ids)) ** 2, group_ids, num_groups) / (size - 1).clamp(min=1)
    single = size == 1
    mean = torch.where(single, torch.zeros_like(mean), mean)
    std = torch.where(single, torch.ones_like(mean), var64.sqrt().to(rewards.dtype))
    return mean, std


def zero_spread_groups(rewards: torch.Tensor, group_ids: torch.Tensor, num_groups: int) -> torch.Tensor:
    """``[num_groups]`` bool: groups of two or more responses whose ``rewards [B]`` (in the advantages' dtype) are all
    equal. Their float32 mean can be an ulp off, which std + epsilon = 1e-6 would turn into an advantage near +-0.5."""
    spread = segment_extreme(rewards, group_ids, num_groups, "amax") - segment_extreme(
        rewards, group_ids, num_groups, "amin"
    )
    return (torch.bincount(group_ids, minlength=num_groups) > 1) & (spread == 0)


def grpo_normalize(
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    num_groups: int,
    *,
    norm_by_std: bool = True,
    epsilon: float = 1e-6,
    stats: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """``[B]`` GRPO advantages of ``[B]`` rewards (in the advantages' dtype, verl: float32) over dense group ids;
    ``stats``: :func:`group_std` when the caller already has it."""
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

    A group mean of G rewards in a dtype with machine epsilon u errs by about G * u * max_g |r|, and the advantage by
    that over (std_g + epsilon) when normalised; the tolerance is ``ROUNDING_ULPS`` times that bound, far below any
    advantage a real reward difference produces.
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
    """Advantages with ``|A| <= tolerance`` set to exactly 0 where ``where`` holds (``[B]`` each): the shaped groups,
    whose pivot response sits at the group mean in exact arithmetic, so that no correct answer gets a negative
    advantage from rounding."""
    noise = where & (advantages.abs().to(DTYPE) <= tolerance)
    return torch.where(noise, torch.zeros_like(advantages), advantages)
