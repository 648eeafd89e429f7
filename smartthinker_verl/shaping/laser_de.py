"""LASER-DE: dynamic, difficulty-aware length reward with exploration (Liu et al. 2025, "Learn to Reason
Efficiently with Adaptive Length-based Reward Shaping", arXiv 2505.15612), for a whole batch (pure torch).

Difficulty. A group's accuracy p = k / G puts its prompt in a level: ``high`` (easy) when p >= 2/3, ``medium`` when
1/3 <= p < 2/3, ``low`` (hard) when p < 1/3.

Adaptive target per level (the "D"). Candidate lengths L_j = lower, lower + interval, ..., <= upper. For each
level, the coverage c(level, L) = (correct responses of that level's groups with length <= L) / (responses of that
level's groups). With n the group size, the level's minimum number of correct answers is n_high = floor(2n/3),
n_medium = floor(n/3), n_low = 1, and the level's target is the smallest L_j with

    floor(c(level, L_j) * n_level) >= expected_correct,

or, if no candidate qualifies, the longest response of the batch. Targets are recomputed from the statistics
accumulated over ``update_interval`` steps (the authors evaluate a monitor set every 20 steps; here the training
batches themselves are the monitor), and at the first step. They are the method's state across steps: saved with
every checkpoint and restored on resume (:mod:`smartthinker_verl.checkpoint`).

Reward (the "E": exploration). With T = the target of the response's level,

    r_i = score_i + alpha * 1[ correct_i and l_i <= T ]                      (LASER step reward: concise and right)
                  + alpha * 1[ wrong_i and l_i > T and not truncated_i ]      (explore: a long wrong attempt)

The authors' released defaults (their LASER-DE 1.5B script): alpha (``length_reward_scalar``) 0.5, candidates from
4096 to 16384 every 1024, expected_correct 1, floor rounding, a new target every 20 steps. Their code skips the
exploration bonus for responses that repeat themselves (an n-gram detector over the tokens); verl's estimator only
sees lengths and rewards, so here a wrong response is excluded from exploration when it is truncated: its length
reaches ``truncation_length`` (set it to ``data.max_response_length``; None: no exclusion). Their scorer gives wrong
answers -0.5 where ours gives 0: after GRPO normalisation only reward differences matter, and the gap between a
right and a wrong answer is then 1 here instead of 1.5.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from smartthinker_verl.config import MethodOptions, SmartThinkerConfigError
from smartthinker_verl.shaping.groups import DTYPE, GroupedBatch
from smartthinker_verl.shaping.registry import ShapingMethod, ShapingOutput, register_method

logger = logging.getLogger(__name__)

NAME = "laser_de"
#: Difficulty levels, in index order (hard to easy).
LEVELS: tuple[str, ...] = ("low", "medium", "high")
#: Accuracy bounds between the levels: p < 1/3 low, 1/3 <= p < 2/3 medium, p >= 2/3 high.
LEVEL_BOUNDS: tuple[float, float] = (1.0 / 3.0, 2.0 / 3.0)
#: Slack in floor(c * n) so that e.g. 0.2 * 5 = 0.99999... still counts as 1.
_FLOOR_SLACK = 1e-9

#: Per-step statistics, logged as ``laser_de/<name>``.
METRIC_NAMES: tuple[str, ...] = (
    "target_length/low",
    "target_length/medium",
    "target_length/high",
    "target_updated",
    "concise_correct_frac",
    "exploration_frac",
    "group_frac/low",
    "group_frac/medium",
    "group_frac/high",
    "accuracy/mean",
    "length_correct/mean",
    "length_incorrect/mean",
)


@dataclass(frozen=True, kw_only=True)
class LaserDEConfig(MethodOptions):
    """Options under ``algorithm.laser_de`` (defaults: the authors' released LASER-DE 1.5B script).

    Attributes:
        alpha: the length reward (``length_reward_scalar``; 0.5).
        length_lower_bound, length_interval, length_upper_bound: candidate target lengths (4096, 1024, 16384).
        expected_correct: correct answers a level's minimal group must keep within the target (1).
        update_interval: training steps between target updates (20, the authors' monitor frequency).
        truncation_length: a wrong response this long is truncated and earns no exploration bonus (None: none is).
        correct_threshold, epsilon: see :class:`~smartthinker_verl.config.MethodOptions`.
    """

    config_key: ClassVar[str] = NAME
    numeric_fields: ClassVar[dict[str, bool]] = {
        **MethodOptions.numeric_fields,
        "alpha": False,
        "length_lower_bound": True,
        "length_interval": True,
        "length_upper_bound": True,
        "expected_correct": True,
        "update_interval": True,
        "truncation_length": True,
    }

    alpha: float = 0.5
    length_lower_bound: int = 4096
    length_interval: int = 1024
    length_upper_bound: int = 16384
    expected_correct: int = 1
    update_interval: int = 20
    truncation_length: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("length_lower_bound", "length_interval", "length_upper_bound", "expected_correct"):
            value = getattr(self, key)
            if float(value) != int(value):
                raise SmartThinkerConfigError(f"algorithm.{NAME}.{key}={value!r} must be a whole number")
            object.__setattr__(self, key, int(value))
        object.__setattr__(self, "update_interval", int(self.update_interval))
        if self.truncation_length is not None:
            object.__setattr__(self, "truncation_length", int(self.truncation_length))
        if self.length_upper_bound < self.length_lower_bound:
            raise SmartThinkerConfigError(
                f"algorithm.{NAME}.length_upper_bound={self.length_upper_bound} is below length_lower_bound="
                f"{self.length_lower_bound}: no candidate target. Fix: set length_upper_bound to the response limit "
                "(data.max_response_length) and length_lower_bound below it"
            )
        if self.alpha < 0:
            raise SmartThinkerConfigError(f"algorithm.{NAME}.alpha={self.alpha!r} must be >= 0")

    def thresholds(self) -> list[int]:
        """The candidate target lengths L_j."""
        return list(range(self.length_lower_bound, self.length_upper_bound + 1, self.length_interval))


def difficulty_levels(batch: GroupedBatch) -> torch.Tensor:
    """``[num_groups]`` int64 level index (0 low, 1 medium, 2 high) from the group accuracy k / G."""
    accuracy = batch.num_correct.to(DTYPE) / batch.size.to(DTYPE)
    return (accuracy >= LEVEL_BOUNDS[0]).to(torch.int64) + (accuracy >= LEVEL_BOUNDS[1]).to(torch.int64)


def coverage_counts(batch: GroupedBatch, levels: torch.Tensor, thresholds: torch.Tensor):
    """``(responses [3], covered [3, T])``: responses of each level's groups, and the correct ones with length <= L_j
    (float64 counts)."""
    level_i = batch.per_group(levels)
    device = batch.lengths.device
    thresholds = thresholds.to(device=device, dtype=DTYPE)
    responses = torch.zeros(len(LEVELS), dtype=DTYPE, device=device).index_add_(
        0, level_i, torch.ones_like(batch.lengths)
    )
    within = (batch.correct[:, None] & (batch.lengths[:, None] <= thresholds[None, :])).to(DTYPE)
    covered = torch.zeros(len(LEVELS), len(thresholds), dtype=DTYPE, device=device).index_add_(0, level_i, within)
    return responses, covered


def minimum_correct(group_size: int) -> torch.Tensor:
    """``[3]`` the minimal number of correct answers of a group per level: 1, floor(n/3), floor(2n/3)."""
    return torch.tensor([1.0, math.floor(group_size / 3), math.floor(group_size * 2 / 3)], dtype=DTYPE)


def choose_targets(
    responses: torch.Tensor,
    covered: torch.Tensor,
    thresholds: torch.Tensor,
    group_size: int,
    expected_correct: int,
    fallback: float,
) -> torch.Tensor:
    """``[3]`` target per level: the smallest L_j with floor(c * n_level) >= expected_correct, else ``fallback``."""
    coverage = covered / responses.clamp(min=1.0)[:, None]
    enough = torch.floor(coverage * minimum_correct(group_size)[:, None] + _FLOOR_SLACK) >= expected_correct
    candidates = torch.where(enough, thresholds[None, :].to(DTYPE), torch.full_like(coverage, float("inf")))
    best = candidates.min(dim=1).values if candidates.shape[1] else torch.full((len(LEVELS),), float("inf"))
    return torch.where(torch.isinf(best), torch.full_like(best, float(fallback)), best)


def rewards_for_targets(
    batch: GroupedBatch, levels: torch.Tensor, targets: torch.Tensor, options: LaserDEConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(r [B], concise_correct [B] bool, explored [B] bool)`` for per-level ``targets [3]``."""
    target_i = targets.to(device=batch.lengths.device, dtype=DTYPE)[batch.per_group(levels)]
    concise = batch.correct & (batch.lengths <= target_i)
    explored = ~batch.correct & (batch.lengths > target_i)
    if options.truncation_length is not None:
        explored = explored & (batch.lengths < options.truncation_length)
    rewards = batch.scores + options.alpha * (concise | explored).to(DTYPE)
    return rewards, concise, explored


class LaserDEState:
    """LASER-DE's state across steps: the current targets and the coverage statistics since the last update.

    One instance per process (:data:`STATE`), in the process where verl computes advantages (the TaskRunner).
    ``state_dict()`` / ``load_state_dict()`` round-trip through JSON.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.targets: list[float] | None = None
        self.thresholds: list[int] = []
        self.responses: list[float] = [0.0] * len(LEVELS)
        self.covered: list[list[float]] = [[] for _ in LEVELS]
        self.steps_since_update = 0
        self.updates = 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "targets": self.targets,
            "thresholds": list(self.thresholds),
            "responses": list(self.responses),
            "covered": [list(row) for row in self.covered],
            "steps_since_update": self.steps_since_update,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.targets = None if state["targets"] is None else [float(t) for t in state["targets"]]
        self.thresholds = [int(t) for t in state["thresholds"]]
        self.responses = [float(x) for x in state["responses"]]
        self.covered = [[float(x) for x in row] for row in state["covered"]]
        self.steps_since_update = int(state["steps_since_update"])
        self.updates = int(state["updates"])

    def step(self, batch: GroupedBatch, options: LaserDEConfig, levels: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """Accumulate this batch's coverage, update the targets when due; ``(targets [3], updated)``."""
        thresholds = options.thresholds()
        if thresholds != self.thresholds:
            if self.thresholds:
                logger.warning("laser_de: candidate target lengths changed; coverage statistics restart")
            self.thresholds = thresholds
            self.responses = [0.0] * len(LEVELS)
            self.covered = [[0.0] * len(thresholds) for _ in LEVELS]
        grid = torch.tensor(thresholds, dtype=torch.int64)
        responses, covered = coverage_counts(batch, levels, grid)
        responses = responses.cpu() + torch.tensor(self.responses, dtype=DTYPE)  # the state is small: kept on CPU
        covered = covered.cpu() + torch.tensor(self.covered, dtype=DTYPE).reshape(len(LEVELS), len(thresholds))
        self.steps_since_update += 1
        updated = self.targets is None or self.steps_since_update >= options.update_interval
        if updated:
            group_size = int(round(float(batch.size.to(DTYPE).mean())))
            fallback = float(batch.lengths.max())
            targets = choose_targets(responses, covered, grid, group_size, options.expected_correct, fallback)
            self.targets = targets.tolist()
            self.responses = [0.0] * len(LEVELS)
            self.covered = [[0.0] * len(thresholds) for _ in LEVELS]
            self.steps_since_update = 0
            self.updates += 1
            logger.info("laser_de: targets (low, medium, high) = %s", self.targets)
        else:
            self.responses = responses.tolist()
            self.covered = covered.tolist()
        return torch.tensor(self.targets, dtype=DTYPE, device=batch.lengths.device), updated


#: The process's LASER-DE state (saved into checkpoints by smartthinker_verl.checkpoint).
STATE = LaserDEState()


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values.double() * mask).sum() / mask.sum()  # NaN when the mask is empty


def shape(batch: GroupedBatch, options: LaserDEConfig, state: LaserDEState | None = None) -> ShapingOutput:
    """The registered method: LASER-DE's rewards for ``batch``, advancing ``state`` (default :data:`STATE`)."""
    state = STATE if state is None else state
    levels = difficulty_levels(batch)
    targets, updated = state.step(batch, options, levels)
    rewards, concise, explored = rewards_for_targets(batch, levels, targets, options)
    correct = batch.correct
    statistics = {
        "target_length/low": targets[0],
        "target_length/medium": targets[1],
        "target_length/high": targets[2],
        "target_updated": torch.tensor(float(updated), dtype=DTYPE),
        "concise_correct_frac": concise.double().mean(),
        "exploration_frac": explored.double().mean(),
        **{f"group_frac/{name}": (levels == i).double().mean() for i, name in enumerate(LEVELS)},
        "accuracy/mean": correct.double().mean(),
        "length_correct/mean": _masked_mean(batch.lengths, correct),
        "length_incorrect/mean": _masked_mean(batch.lengths, ~correct),
    }
    shaped = torch.zeros(batch.num_groups, dtype=torch.bool, device=batch.lengths.device)
    detail = {"levels": levels, "targets": targets, "updated": updated}
    return ShapingOutput(rewards=rewards, shaped=shaped, statistics=statistics, detail=detail)


METHOD = register_method(
    ShapingMethod(
        name=NAME,
        options_type=LaserDEConfig,
        shape=shape,
        metric_names=METRIC_NAMES,
        formula="r = score + alpha * 1[correct & len <= T_level or wrong & len > T_level], T adaptive per difficulty",
        state=STATE,
    )
)
