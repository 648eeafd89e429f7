"""The registry of shaping methods, which the verl adapter (:mod:`smartthinker_verl.advantage`) registers as
advantage estimators (pure torch; never imports verl).

A method is its options dataclass (a :class:`~smartthinker_verl.options.MethodOptions` whose ``config_key`` is the
estimator name) and its shaped-reward formula, registered with :func:`shaping_method`::

    @shaping_method(MyOptions, statistics=("my_stat",), formula="r = ...")
    def shape(batch: GroupedBatch, options: MyOptions) -> ShapingOutput: ...

The registry adds the statistics every method logs (:func:`~smartthinker_verl.shaping.groups.outcome_statistics`);
the adapter does the rest (verl's tensors, the normaliser, zero-spread groups, the metrics hand-off).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from smartthinker_verl.errors import ConfigError
from smartthinker_verl.options import MethodOptions, select
from smartthinker_verl.shaping.groups import OUTCOME_METRIC_NAMES, GroupedBatch, outcome_statistics


@dataclass(frozen=True)
class ShapingOutput:
    """What a shaping method returns for one batch.

    Attributes:
        rewards: ``[B]`` float64 shaped rewards r_i (before normalisation).
        statistics: the step's statistics, 0-d tensors keyed by metric name (logged as ``<method>/<name>``).
        shaped: ``[num_groups]`` bool, groups whose most-penalised correct response sits at the group mean in exact
            arithmetic (SmartThinker's eq. 3), where the adapter zeroes the rounding noise of that advantage; None:
            no such group.
        detail: the method's intermediate results (SmartThinker's ``CalibrationResult``, ...), for examples and tests.
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
        options_type: the frozen options dataclass read from that key.
        shape: ``(batch, options) -> ShapingOutput``, the statistics every method logs included.
        metric_names: the names in ``ShapingOutput.statistics``, in logging order (a contract: see the README).
        aliases: further estimator names for the same method.
        formula: one line for docs and ``--help`` texts.
        state: for a method with state across steps (LASER-DE), an object with ``state_dict() -> dict``
            (JSON-serialisable), ``load_state_dict(dict)`` and ``reset()``, saved with every checkpoint by
            :mod:`smartthinker_verl.shaping_state`; None for stateless methods.
    """

    name: str
    options_type: type
    shape: Callable[..., ShapingOutput]
    metric_names: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    formula: str = ""
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


def shaping_method(
    options_type: type[MethodOptions],
    *,
    statistics: tuple[str, ...],
    formula: str,
    aliases: tuple[str, ...] = (),
    state: Any = None,
) -> Callable[[Callable[..., ShapingOutput]], Callable[..., ShapingOutput]]:
    """Register the decorated ``shape(batch, options, **kwargs) -> ShapingOutput`` as the method
    ``options_type.config_key``, logging ``statistics`` (the names its output holds) and the outcome statistics.

    Returns the decorator; it returns ``shape`` with the outcome statistics added (what :data:`METHODS` holds).
    """

    def register(shape: Callable[..., ShapingOutput]) -> Callable[..., ShapingOutput]:
        @functools.wraps(shape)
        def with_outcome_statistics(batch: GroupedBatch, options: Any, **kwargs: Any) -> ShapingOutput:
            output = shape(batch, options, **kwargs)
            return dataclasses.replace(output, statistics={**output.statistics, **outcome_statistics(batch)})

        register_method(
            ShapingMethod(
                name=options_type.config_key,
                options_type=options_type,
                shape=with_outcome_statistics,
                metric_names=(*statistics, *OUTCOME_METRIC_NAMES),
                aliases=aliases,
                formula=formula,
                state=state,
            )
        )
        return with_outcome_statistics

    return register


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

    A block ``algorithm.<name>`` of an inactive method may exist (the recipe yaml lists every method's defaults), but
    a changed or unknown key there would have no effect on training: a mistake, reported with the fix. Aliases count
    as their method (``grpo_smartthinker`` activates ``algorithm.smartthinker``).

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
    "shaping_method",
]
