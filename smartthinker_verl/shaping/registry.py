"""The shaping methods the verl adapter registers as advantage estimators (pure torch; never imports verl).

Every method has the same shape, "group statistics -> shaped reward -> GRPO normalisation": it receives a
:class:`~smartthinker_verl.shaping.groups.GroupedBatch` and its options and returns a :class:`ShapingOutput`; the
adapter (:mod:`smartthinker_verl.advantage`) does the rest (unpacking verl's tensors, GRPO normalisation, the
metrics hand-off). A method is selected with ``algorithm.adv_estimator=<name>`` and configured under
``algorithm.<name>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from smartthinker_verl.shaping.groups import GroupedBatch


@dataclass(frozen=True)
class ShapingOutput:
    """What a shaping method returns for one batch.

    Attributes:
        rewards: ``[B]`` float64 shaped rewards r_i (before GRPO normalisation).
        shaped: ``[num_groups]`` bool, groups whose rewards the length term changed. Their pivot advantages may sit
            at the group mean in exact arithmetic, so the adapter zeroes rounding noise there (and only there).
        statistics: the step's statistics, 0-d tensors keyed by metric name (logged as ``<method>/<name>``).
        detail: the method's own intermediate results (e.g. SmartThinker's ``CalibrationResult``), for examples and
            tests.
    """

    rewards: torch.Tensor
    shaped: torch.Tensor
    statistics: dict[str, torch.Tensor]
    detail: Any = None


@dataclass(frozen=True)
class ShapingMethod:
    """A registered shaping method.

    Attributes:
        name: the verl estimator name and the options key (``algorithm.<name>``).
        options_type: a frozen options dataclass (``smartthinker_verl.config.MethodOptions``) built from that key.
        shape: ``(batch, options) -> ShapingOutput``.
        metric_names: the names in ``ShapingOutput.statistics``, in logging order (a contract: see the README).
        aliases: further estimator names for the same method.
        formula: one line for docs and ``--help`` texts.
    """

    name: str
    options_type: type
    shape: Callable[[GroupedBatch, Any], ShapingOutput]
    metric_names: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    formula: str = ""
    extras: dict[str, Any] = field(default_factory=dict)


METHODS: dict[str, ShapingMethod] = {}


def register_method(method: ShapingMethod) -> ShapingMethod:
    """Add ``method`` to :data:`METHODS` (idempotent for the same object; a different one under a taken name is an
    error)."""
    for name in (method.name, *method.aliases):
        existing = METHODS.get(name)
        if existing is not None and existing is not method:
            raise ValueError(f"a shaping method named {name!r} is already registered")
        METHODS[name] = method
    return method


def get_method(name: str) -> ShapingMethod:
    """The method registered as ``name``; an error listing the known names otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(
            f"unknown length-shaping method {name!r}: choose one of {', '.join(sorted(METHODS))} "
            "(or verl's own estimators such as grpo)"
        ) from None
