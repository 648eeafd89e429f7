"""LASER-DE: dynamic, difficulty-aware length reward with exploration (Liu et al. 2025, "Learn to Reason
Efficiently with Adaptive Length-based Reward Shaping", arXiv 2505.15612).

The rules are those of the authors' released code; docs/baselines.md ("LASER-DE") says where this differs and why.

Difficulty. A group's accuracy p = k / G puts its prompt in a band: ``high`` (easy) when p >= 2/3, ``medium`` when
1/3 <= p < 2/3, ``low`` (hard) when p < 1/3.

Adaptive target per band (the "D"). Candidate lengths L_j = lower, lower + interval, ..., up to and including the
first one >= upper. The coverage of a band at L is the fraction of ALL that band's responses (right or wrong) whose
length is <= L. With n the group size, a band's minimal group keeps m_low = 1, m_medium = floor(n/3),
m_high = floor(2n/3) correct answers, and the band's candidate is the smallest L_j with

    floor(coverage(band, L_j) * m_band) >= expected_correct.

The candidates are recomputed from the responses accumulated since the last update, at the first training step and
then every ``update_interval`` steps; the training batches are the monitor set. A band with no qualifying candidate
takes, on every step, the longest response of the CURRENT batch. The candidates and the accumulated coverage are
the method's state across steps, saved with every checkpoint (:mod:`smartthinker_verl.shaping_state`).

Reward (the "E": exploration). With T = the target of the response's band,

    r_i = score_i + alpha * 1[ correct_i and l_i <= T ]                      (concise and right)
                  + alpha * 1[ wrong_i and l_i > T and l_i < truncation ]     (explore: a long, finished wrong attempt)

A wrong answer that reached the response limit (``truncation_length``, default the run's response limit) is cut off,
not a long attempt, and earns nothing, as in the released code (whose scorer gives truncated answers a score of their
own).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from smartthinker_verl.errors import ConfigError
from smartthinker_verl.options import MethodOptions, RunContext
from smartthinker_verl.shaping.groups import DTYPE, GroupedBatch
from smartthinker_verl.shaping.registry import ShapingOutput, shaping_method

logger = logging.getLogger(__name__)

#: Difficulty bands, in index order (hard to easy).
LEVELS: tuple[str, ...] = ("low", "medium", "high")
#: Accuracy edges between the bands: p < 1/3 low, 1/3 <= p < 2/3 medium, p >= 2/3 high.
LEVEL_BOUNDS: tuple[float, float] = (1.0 / 3.0, 2.0 / 3.0)


@dataclass(frozen=True, kw_only=True)
class LaserDEConfig(MethodOptions):
    """Options under ``algorithm.laser_de`` (defaults: the authors' released LASER-DE 1.5B script).

    Attributes:
        alpha: the length reward (``length_reward_scalar``; 0.5).
        length_lower_bound, length_interval: the first candidate target and the grid step (4096, 1024).
        length_upper_bound: the grid ends at the first candidate >= this (None: the run's response limit, as the
            authors' scripts set it).
        expected_correct: correct answers a band's minimal group must keep within the target (1).
        update_interval: training steps between target updates (20, the authors' monitor frequency).
        truncation_length: a wrong response this long is truncated and earns no exploration bonus (None: the run's
            response limit, ``actor_rollout_ref.rollout.response_length``).
    """

    config_key: ClassVar[str] = "laser_de"
    positive: ClassVar[tuple[str, ...]] = (
        *MethodOptions.positive,
        "length_lower_bound",
        "length_interval",
        "length_upper_bound",
        "expected_correct",
        "update_interval",
        "truncation_length",
    )
    non_negative: ClassVar[tuple[str, ...]] = ("alpha",)

    alpha: float = 0.5
    length_lower_bound: int = 4096
    length_interval: int = 1024
    length_upper_bound: int | None = None
    expected_correct: int = 1
    update_interval: int = 20
    truncation_length: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.length_upper_bound is not None and self.length_upper_bound < self.length_lower_bound:
            raise ConfigError(
                f"algorithm.{self.config_key}.length_upper_bound={self.length_upper_bound} is below length_lower_bound="
                f"{self.length_lower_bound}: no candidate target. Fix: leave length_upper_bound null (the response "
                "limit) or set it above length_lower_bound"
            )

    def for_run(self, run: RunContext) -> LaserDEConfig:
        """Fill the options left null with the run's response limit (``run.response_limit``)."""
        unset = [key for key in ("length_upper_bound", "truncation_length") if getattr(self, key) is None]
        missing = {key: run.response_limit for key in unset}
        if not missing:
            return self
        if run.response_limit is None:
            raise ConfigError(
                f"{self.prefix}.{' and '.join(missing)} default to the run's response limit, which this config does "
                f"not hold ({RunContext.prefix}.response_limit, set by the recipe yaml). Fix: set them, e.g. "
                f"+{self.prefix}.truncation_length=8000, or +{RunContext.prefix}.response_limit="
                "${actor_rollout_ref.rollout.response_length}"
            )
        return dataclasses.replace(self, **missing)

    def thresholds(self) -> list[int]:
        """The candidate target lengths L_j: lower, lower + interval, ... up to the first >= upper."""
        if self.length_upper_bound is None:
            raise ConfigError(f"algorithm.{self.config_key}.length_upper_bound is not resolved (see for_run)")
        step = self.length_interval
        return list(range(self.length_lower_bound, self.length_upper_bound + step, step))


def difficulty_levels(batch: GroupedBatch) -> torch.Tensor:
    """``[num_groups]`` int64 band index (0 low, 1 medium, 2 high) from the group accuracy k / G."""
    accuracy = batch.num_correct.to(DTYPE) / batch.size.to(DTYPE)
    return (accuracy >= LEVEL_BOUNDS[0]).to(torch.int64) + (accuracy >= LEVEL_BOUNDS[1]).to(torch.int64)


def coverage_counts(
    batch: GroupedBatch, levels: torch.Tensor, thresholds: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(responses [3], within [3, T])`` int64: each band's responses, and those (right or wrong) of length <= L_j."""
    level_i = batch.per_group(levels)
    device = batch.lengths.device
    responses = torch.bincount(level_i, minlength=len(LEVELS))
    within = (batch.lengths[:, None] <= thresholds.to(device=device, dtype=DTYPE)[None, :]).to(torch.int64)
    counts = torch.zeros(len(LEVELS), len(thresholds), dtype=torch.int64, device=device).index_add_(0, level_i, within)
    return responses, counts


def choose_candidates(
    responses: torch.Tensor, within: torch.Tensor, thresholds: torch.Tensor, group_size: int, expected_correct: int
) -> list[int | None]:
    """Per band, the smallest L_j with floor(coverage * m_band) >= expected_correct, or None when none qualifies.

    ``floor(within / responses * m)`` is evaluated exactly, as ``(within * m) // responses`` in integers; a band with
    no responses has coverage 0 (the released code's convention).
    """
    m_band = [1, group_size // 3, (2 * group_size) // 3]  # correct answers a band's minimal group keeps
    m = torch.tensor(m_band, dtype=torch.int64, device=within.device)[:, None]
    qualifies = (within * m) // responses.clamp(min=1)[:, None] >= expected_correct
    qualifies &= (responses > 0)[:, None]
    first = torch.where(qualifies.any(dim=1), qualifies.to(torch.int8).argmax(dim=1), -1).tolist()
    grid = thresholds.tolist()
    return [None if j < 0 else int(grid[j]) for j in first]


@dataclass
class LaserDEState:
    """LASER-DE's state across steps: the band candidates and the coverage accumulated since the last update.

    One instance per run, owned by :mod:`smartthinker_verl.run_state` in the process where verl computes advantages
    (the TaskRunner) and checkpointed by :mod:`smartthinker_verl.shaping_state`; its fields round-trip through JSON.
    """

    candidates: list[int | None] | None = None
    thresholds: list[int] = field(default_factory=list)
    responses: list[int] = field(default_factory=lambda: [0] * len(LEVELS))
    within: list[list[int]] = field(default_factory=lambda: [[] for _ in LEVELS])
    steps_since_update: int = 0
    calls_in_step: int = 0
    updates: int = 0

    def state_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in self.state_dict():
            setattr(self, key, state[key])

    def _restart_statistics(self, thresholds: list[int]) -> None:
        self.thresholds = thresholds
        self.responses = [0] * len(LEVELS)
        self.within = [[0] * len(thresholds) for _ in LEVELS]

    def step(
        self, batch: GroupedBatch, options: LaserDEConfig, levels: torch.Tensor, calls_per_step: int = 1
    ) -> tuple[torch.Tensor, bool]:
        """Accumulate this batch's coverage, update the candidates when due; ``(targets [3] float64, updated)``.

        An update happens at the first advantage computation of training step 1, 1 + I, 1 + 2I, ... (I =
        ``update_interval``), from the responses accumulated since the previous update, this batch included.
        ``calls_per_step`` advantage computations make one training step (verl's ``separate_async`` trainer: its
        ``parameter_sync_step``); the schedule counts training steps.
        """
        thresholds = options.thresholds()
        if thresholds != self.thresholds:
            if self.thresholds:
                logger.warning("laser_de: candidate target lengths changed; coverage statistics restart")
            self._restart_statistics(thresholds)
        grid = torch.tensor(thresholds, dtype=torch.int64)
        responses, within = coverage_counts(batch, levels, grid)
        responses = responses.cpu() + torch.tensor(self.responses, dtype=torch.int64)  # small: kept on CPU
        within = within.cpu() + torch.tensor(self.within, dtype=torch.int64).reshape(len(LEVELS), len(thresholds))
        new_step = self.calls_in_step == 0
        self.calls_in_step = (self.calls_in_step + 1) % calls_per_step
        if new_step:
            self.steps_since_update += 1
        updated = self.candidates is None or (new_step and self.steps_since_update > options.update_interval)
        if updated:
            group_size = int(round(float(batch.size.to(DTYPE).mean())))
            self.candidates = choose_candidates(responses, within, grid, group_size, options.expected_correct)
            self._restart_statistics(thresholds)
            self.steps_since_update = 1
            self.updates += 1
            logger.info("laser_de: target candidates (low, medium, high) = %s", self.candidates)
        else:
            self.responses = responses.tolist()
            self.within = within.tolist()
        longest = float(batch.lengths.max()) if batch.lengths.numel() else 0.0
        targets = [longest if c is None else float(c) for c in self.candidates]
        return torch.tensor(targets, dtype=DTYPE, device=batch.lengths.device), updated


def rewards_for_targets(
    batch: GroupedBatch, levels: torch.Tensor, targets: torch.Tensor, options: LaserDEConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(r [B], concise_correct [B] bool, explored [B] bool)`` for per-band ``targets [3]``."""
    target_i = targets[batch.per_group(levels)]
    concise = batch.correct & (batch.lengths <= target_i)
    explored = ~batch.correct & (batch.lengths > target_i)
    if options.truncation_length is not None:
        explored &= batch.lengths < options.truncation_length
    rewards = batch.scores + options.alpha * (concise | explored).to(DTYPE)
    return rewards, concise, explored


@shaping_method(
    LaserDEConfig,
    statistics=(
        "target_length/low",
        "target_length/medium",
        "target_length/high",
        "target_updated",
        "concise_correct_frac",
        "exploration_frac",
        "group_frac/low",
        "group_frac/medium",
        "group_frac/high",
    ),
    formula="r = score + alpha * 1[correct & len <= T_band or wrong & T_band < len < limit], T adaptive per band",
    state_type=LaserDEState,
)
def shape(
    batch: GroupedBatch, options: LaserDEConfig, state: LaserDEState | None = None, calls_per_step: int = 1
) -> ShapingOutput:
    """LASER-DE's rewards ``[B]`` for ``batch``, advancing the run's ``state`` (None: a fresh one, a first step)."""
    state = LaserDEState() if state is None else state
    levels = difficulty_levels(batch)
    targets, updated = state.step(batch, options, levels, calls_per_step)
    rewards, concise, explored = rewards_for_targets(batch, levels, targets, options)
    statistics = {
        "target_length/low": targets[0],
        "target_length/medium": targets[1],
        "target_length/high": targets[2],
        "target_updated": torch.tensor(float(updated), dtype=DTYPE),
        "concise_correct_frac": concise.double().mean(),
        "exploration_frac": explored.double().mean(),
        **{f"group_frac/{name}": (levels == i).double().mean() for i, name in enumerate(LEVELS)},
    }
    detail = {"levels": levels, "targets": targets, "updated": updated}
    return ShapingOutput(rewards=rewards, statistics=statistics, detail=detail)
