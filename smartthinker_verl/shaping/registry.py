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

from smartthinker_verl.errors import ConfigError
from smartthinker_verl.options import MethodOptions, select
from smartthinker_verl.shaping.groups import GroupedBatch


@dataclass(frozen=True)
class ShapingOutput:
    """What a shaping method returns for one batch.

    Attributes:
        rewards: ``[B]`` float64 shaped rewards r_i (before GRPO normalisation).
        shaped: ``[num_groups]`` bool, groups whose pivot response sits at the group mean in exact arithmetic
            (SmartThinker's eq. 3), so the adapter zeroes the rounding noise of its advantage there (and only there);
            None (the baselines): no such group.
        statistics: the step's statistics, 0-d tensors keyed by metric name (logged as ``<method>/<name>``).
        detail: the method's own intermediate results (e.g. SmartThinker's ``CalibrationResult``), for examples and
            tests.
    """

    rewards: torch.Tensor
    statistics: dict[str, torch.Tensor]
    shaped: torch.Tensor | None = None
    detail: Any = None


@dataclass(frozen=True)
class ShapingMethod:
    """A registered shaping method.

    Attributes:
        name: the verl estimator name and the options key (``algorithm.<name>``).
        options_type: a frozen options dataclass (``smartthinker_verl.options.MethodOptions``) built from that key.
        shape: ``(batch, options) -> ShapingOutput``.
        metric_names: the names in ``ShapingOutput.statistics``, in logging order (a contract: see the README).
        aliases: further estimator names for the same method.
        formula: one line for docs and ``--help`` texts.
        state: for a method with state across steps (LASER-DE's adaptive targets), an object with
            ``state_dict() -> dict`` (JSON-serialisable), ``load_state_dict(dict)`` and ``reset()``; saved into every
            checkpoint and restored on resume by :mod:`smartthinker_verl.shaping_state`. None for stateless methods.
    """

    name: str
    options_type: type
    shape: Callable[[GroupedBatch, Any], ShapingOutput]
    metric_names: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    formula: str = ""
    extras: dict[str, Any] = field(default_factory=dict)
    state: Any = None


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
        raise ConfigError(
            f"unknown length-shaping method {name!r}: set algorithm.adv_estimator to one of "
            f"{', '.join(sorted(METHODS))} (or verl's own estimators such as grpo)"
        ) from None


def primary_methods() -> list[ShapingMethod]:
    """Every registered method once (aliases folded), in registration order."""
    return list({id(m): m for m in METHODS.values()}.values())


def foreign_option_errors(algorithm_config: Any, active: str) -> list[str]:
    """Options set for a method other than the active estimator ``active`` (``algorithm.adv_estimator``).

    The rule: a block ``algorithm.<name>`` of a registered method that is not the active one may exist (the recipe
    yaml lists every method's options with their defaults), but every value in it must equal that method's default.
    A changed value there has no effect on training, so it is a mistake (a typo in the method name, or an override
    meant for another run) and is reported, with the fix. Aliases count as their method (``grpo_smartthinker``
    activates ``algorithm.smartthinker``). Unknown keys inside the inactive block are reported too.

    Returns:
        One message per offending key (empty when the config is consistent).
    """
    active_method = METHODS.get(str(active))
    problems: list[str] = []
    for method in primary_methods():
        if method is active_method:
            continue
        block = select(algorithm_config, method.name)
        if block is None:
            continue
        try:
            options = method.options_type.from_algorithm_config(algorithm_config)
        except ConfigError as error:
            problems.append(
                f"{error} (and algorithm.adv_estimator={active} does not use algorithm.{method.name} at all). "
                f"Fix: remove the override, or select that method with algorithm.adv_estimator={method.name}"
            )
            continue
        defaults = method.options_type()
        for key in method.options_type.option_names():
            value, default = getattr(options, key), getattr(defaults, key)
            if value != default:
                problems.append(
                    f"algorithm.{method.name}.{key}={value!r} is set, but algorithm.adv_estimator={active} does not "
                    f"read algorithm.{method.name}: the option would have no effect. Fix: select that method with "
                    f"algorithm.adv_estimator={method.name}, or drop the override (its default is {default!r})"
                )
    return problems


def check_foreign_options(algorithm_config: Any, active: str) -> None:
    """Raise :class:`~smartthinker_verl.options.ConfigError` listing :func:`foreign_option_errors`."""
    problems = foreign_option_errors(algorithm_config, active)
    if problems:
        raise ConfigError("; ".join(problems))


__all__ = [
    "METHODS",
    "MethodOptions",
    "ShapingMethod",
    "ShapingOutput",
    "check_foreign_options",
    "foreign_option_errors",
    "get_method",
    "primary_methods",
    "register_method",
]
