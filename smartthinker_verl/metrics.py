"""SmartThinker's per-step statistics and their hand-off to verl's logged metrics.

The estimator runs inside verl's ``compute_advantage`` (the TaskRunner process), which has no access to the
trainer's ``metrics`` dict. Hand-off, without forking verl's training loop:

1. the estimator reduces its per-response and per-group tensors to scalars (:func:`step_metrics`) and stores them
   in this process's :data:`PENDING` buffer (:func:`record`);
2. :func:`install_tracking_hook` wraps ``verl.utils.tracking.Tracking.log`` once per process; every call merges
   (and clears) the pending statistics into the logged dict, so they reach every configured backend (console,
   wandb, tensorboard, file) with the step's other metrics.

verl logs once per training step, after the advantage; the statistics therefore land on the step that produced
them. Anything recorded but never logged is simply replaced by the next step's values.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

import torch

logger = logging.getLogger(__name__)

PREFIX = "smartthinker/"

#: Metric names (without the prefix), one row per training step. A contract: see the README's metrics table.
METRIC_NAMES: tuple[str, ...] = (
    "optimal_length/mean",
    "coefficient/mean",
    "shaped_group_frac",
    "penalized_frac",
    "length_correct/mean",
    "length_incorrect/mean",
    "accuracy/mean",
    "all_correct_group_frac",
    "all_wrong_group_frac",
)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values[mask]`` as a 0-d float64 tensor; NaN when the mask is empty (e.g. no incorrect response)."""
    return (values.double() * mask).sum() / mask.sum()  # 0 / 0 = NaN


def step_metrics(result: Any) -> dict[str, float]:
    """Reduce a :class:`smartthinker_verl.calibration.CalibrationResult` to the step's ``smartthinker/...`` scalars.

    Group-level means (``optimal_length``, ``coefficient``) are taken over the mixed groups (some but not all
    responses correct: the only groups where l_opt means something); NaN on a step without one (a gap in plots).
    """
    groups = result.groups
    mixed = groups.mixed
    correct = result.correct
    values = {
        "optimal_length/mean": _masked_mean(groups.optimal_length, mixed),
        "coefficient/mean": _masked_mean(groups.coefficient, mixed),
        "shaped_group_frac": groups.shaped.double().mean(),
        "penalized_frac": (result.coefficient * result.penalty > 0).double().mean(),
        "length_correct/mean": _masked_mean(result.lengths, correct),
        "length_incorrect/mean": _masked_mean(result.lengths, ~correct),
        "accuracy/mean": correct.double().mean(),
        "all_correct_group_frac": (groups.num_correct == groups.size).double().mean(),
        "all_wrong_group_frac": (groups.num_correct == 0).double().mean(),
    }
    scalars = torch.stack([values[name] for name in METRIC_NAMES]).tolist()  # one device-to-host copy
    return {PREFIX + name: value for name, value in zip(METRIC_NAMES, scalars, strict=True)}


class _PendingMetrics:
    """Thread-safe, per-process buffer of the latest statistics not yet logged."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = {}

    def record(self, values: dict[str, float]) -> None:
        with self._lock:
            if self._values:
                logger.debug("SmartThinker statistics of an earlier batch were not logged; replacing them")
            self._values = dict(values)

    def pop(self) -> dict[str, float]:
        with self._lock:
            values, self._values = self._values, {}
            return values


PENDING = _PendingMetrics()


def record(values: dict[str, float]) -> None:
    """Store a step's statistics for the next ``Tracking.log`` call of this process."""
    PENDING.record(values)


def install_tracking_hook() -> bool:
    """Wrap ``verl.utils.tracking.Tracking.log`` so it merges pending statistics. Idempotent; returns True if new."""
    from verl.utils.tracking import Tracking

    original = Tracking.log
    if getattr(original, "_smartthinker_hook", False):
        return False

    @functools.wraps(original)
    def log_with_smartthinker(self, data, step, backend=None):
        pending = PENDING.pop()
        if pending:
            data = {**data, **pending}
        return original(self, data=data, step=step, backend=backend)

    log_with_smartthinker._smartthinker_hook = True  # type: ignore[attr-defined]
    Tracking.log = log_with_smartthinker
    return True


install_tracking_hook()
