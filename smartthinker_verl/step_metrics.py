"""The shaping methods' per-step statistics, waiting for verl's next logged step.

The estimator runs inside verl's ``compute_advantage``, which cannot hand metrics to the trainer: it stores its
scalars in this process's :data:`PENDING` buffer, which the ``Tracking.log`` wrapper of
:mod:`smartthinker_verl.verl_patches` merges into each logged step. When several advantage computations make one
logged step (verl's ``separate_async`` trainer), each statistic is their mean weighted by responses, as verl's
``MetricsAggregator`` weights sub-step metrics; a NaN ("no incorrect response") counts as absent.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping

import torch

from smartthinker_verl.options import CONFIG_KEY
from smartthinker_verl.shaping import get_method

#: SmartThinker's metric prefix and names (a contract: see the README's metrics table). Other shaping methods log
#: under ``<method>/``, with the names their ``ShapingMethod.metric_names`` lists.
PREFIX = f"{CONFIG_KEY}/"
METRIC_NAMES: tuple[str, ...] = get_method(CONFIG_KEY).metric_names


def as_floats(statistics: Mapping[str, torch.Tensor], prefix: str = PREFIX) -> dict[str, float]:
    """A method's step statistics (0-d tensors) as ``{prefix + name: float}``, with one device-to-host copy."""
    names = list(statistics)  # never empty: every method logs the outcome statistics
    scalars = torch.stack([statistics[name].double().reshape(()) for name in names]).tolist()
    return {prefix + name: value for name, value in zip(names, scalars, strict=True)}


class _PendingMetrics:
    """Thread-safe, per-process accumulator of the statistics not yet logged: per key, the response-weighted sum of
    its finite values and their weight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sums: dict[str, list[float]] = {}  # key -> [weighted sum, weight]

    def record(self, values: Mapping[str, float], weight: float = 1.0) -> None:
        with self._lock:
            for key, value in values.items():
                total = self._sums.setdefault(key, [0.0, 0.0])
                if math.isfinite(value) and weight > 0:
                    total[0] += weight * value
                    total[1] += weight

    def pop(self) -> dict[str, float]:
        """The weighted means since the last pop (NaN for a key that had no finite value), and a fresh start."""
        with self._lock:
            sums, self._sums = self._sums, {}
        return {key: (total / weight if weight > 0 else math.nan) for key, (total, weight) in sums.items()}


PENDING = _PendingMetrics()
