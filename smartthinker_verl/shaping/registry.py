"""The one table of shaping methods (:data:`METHODS`), from which the verl adapter registers its estimators.

A method is its options dataclass (whose ``config_key`` is the estimator name) and its shaped-reward formula::

    @shaping_method(MyOptions, statistics=("my_stat",), formula="r = ...")
    def shape(batch: GroupedBatch, options: MyOptions) -> ShapingOutput: ...
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from smartthinker_verl.errors import ConfigError
from smartthinker_verl.options import MethodOptions, plain, select
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
        state_type: the class of a stateful method's state across steps (LASER-DE), with JSON-serialisable
            ``state_dict()`` and ``load_state_dict(dict)``; the run's instance (:mod:`smartthinker_verl.run_state`)
            is passed to ``shape`` as ``state``.
    """

    name: str
    options_type: type
    shape: Callable[..., ShapingOutput]
    metric_names: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    formula: str = ""
    state_type: type | None = None


#: The registered methods by estimator name (aliases are an attribute): the one table the verl adapter registers
#: estimators from.
METHODS: dict[str, ShapingMethod] = {}


def shaping_method(
    options_type: type[MethodOptions],
    *,
    statistics: tuple[str, ...],
    formula: str,
    aliases: tuple[str, ...] = (),
    state_type: type | None = None,
) -> Callable[[Callable[..., ShapingOutput]], Callable[..., ShapingOutput]]:
    """Register the decorated ``shape(batch, options, **kwargs) -> ShapingOutput`` as the method
    ``options_type.config_key``, logging ``statistics`` and (added here) the outcome statistics."""

    def register(shape: Callable[..., ShapingOutput]) -> Callable[..., ShapingOutput]:
        @functools.wraps(shape)
        def with_outcome_statistics(batch: GroupedBatch, options: Any, **kwargs: Any) -> ShapingOutput:
            output = shape(batch, options, **kwargs)
            return dataclasses.replace(output, statistics={**output.statistics, **outcome_statistics(batch)})

        for name in (options_type.config_key, *aliases):
            if find_method(name) is not None:
                raise ValueError(f"a shaping method named {name!r} is already registered")
        METHODS[options_type.config_key] = ShapingMethod(
            name=options_type.config_key,
            options_type=options_type,
            shape=with_outcome_statistics,
            metric_names=(*statistics, *OUTCOME_METRIC_NAMES),
            aliases=aliases,
            formula=formula,
            state_type=state_type,
        )
        return with_outcome_statistics

    return register


def find_method(name: str) -> ShapingMethod | None:
    """The method registered as ``name`` or with ``name`` as an alias; None when there is none."""
    return METHODS.get(name) or next((m for m in METHODS.values() if name in m.aliases), None)


def get_method(name: str) -> ShapingMethod:
    """:func:`find_method`, or an error listing the known names."""
    method = find_method(name)
    if method is None:
        raise ConfigError(
            f"unknown length-shaping method {name!r}: set algorithm.adv_estimator to one of "
            f"{', '.join(estimator_names())} (or verl's own estimators such as grpo)"
        )
    return method


def estimator_names() -> list[str]:
    """Every estimator name of the registered methods, aliases included, sorted."""
    return sorted(name for m in METHODS.values() for name in (m.name, *m.aliases))


def foreign_option_errors(algorithm_config: Any, active: str) -> list[str]:
    """Options set for a method other than the active estimator ``active`` (``algorithm.adv_estimator``; an alias
    counts as its method): they would have no effect, so each is reported with the fix.

    Returns:
        One message per offending key (empty when the config is consistent).
    """
    active_method = find_method(str(active))
    problems: list[str] = []
    for method in METHODS.values():
        block = plain(select(algorithm_config, method.name))
        if method is active_method or block is None:
            continue
        for key, value in block.items() if isinstance(block, Mapping) else [("", block)]:
            problems.append(
                f"algorithm.{method.name}{'.' if key else ''}{key}={value!r} is set, but algorithm.adv_estimator="
                f"{active} does not read algorithm.{method.name}: the option would have no effect. Fix: select that "
                f"method with algorithm.adv_estimator={method.name}, or drop the override"
            )
    return problems
