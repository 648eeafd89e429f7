"""Options of the length-shaping estimators (``MethodOptions`` and ``SmartThinkerConfig``), their defaults (the
papers') and their validation.

Set under ``algorithm.smartthinker`` in verl's config (absent means all defaults)::

    algorithm:
      adv_estimator: smartthinker
      norm_adv_by_std_in_grpo: true     # verl's own key, honoured (false = Dr. GRPO style, no division by std)
      smartthinker:
        optimal_length: reference       # reference | argmax
        penalty: one_sided              # one_sided | symmetric
        coefficient: dynamic            # dynamic | fixed
        fixed_coefficient: null         # required (> 0) when coefficient=fixed
        correct_threshold: 0.5          # a response is correct when its score >= this
        epsilon: 1.0e-6                 # added to the group std in the GRPO normalisation
        normalizer: grpo                # the verl outcome estimator that turns shaped rewards into advantages

On the command line, keys the recipe yaml does not define need a leading ``+``:
``+algorithm.smartthinker.penalty=symmetric``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from smartthinker_verl.errors import ConfigError

OptimalLengthRule = Literal["reference", "argmax"]
PenaltyRule = Literal["one_sided", "symmetric"]
CoefficientRule = Literal["dynamic", "fixed"]

CONFIG_KEY = "smartthinker"


#: The normaliser every method uses unless told otherwise: GRPO's group normalisation (shaping/grpo.py).
DEFAULT_NORMALIZER = "grpo"


@dataclass(frozen=True)
class RunContext:
    """What a method may need to know of the run beyond its own options, read from verl's full config by the adapter.

    Attributes:
        response_limit: the most tokens a response may have (``actor_rollout_ref.rollout.response_length``, else
            ``data.max_response_length``); None when the config does not hold it.
        calls_per_step: advantage computations per training step (verl's ``separate_async`` trainer:
            ``parameter_sync_step``; 1 otherwise).
        group_size: responses sampled per prompt (``actor_rollout_ref.rollout.n``); None when unknown.
    """

    response_limit: int | None = None
    calls_per_step: int = 1
    group_size: int | None = None


@dataclass(frozen=True, kw_only=True)
class MethodOptions:
    """Options every length-shaping method has; a method's options subclass this and set ``config_key``.

    Fields typed ``float`` or ``int`` (optionally ``| None``) are validated as finite numbers, ``int`` ones as whole
    numbers; ``positive`` and ``non_negative`` name the fields that must also be > 0, resp. >= 0. Fields typed
    ``Literal[...]`` take one of its strings.

    Attributes:
        correct_threshold: a response is correct when its outcome score >= this.
        epsilon: added to the group std in the GRPO normalisation (verl's default 1e-6).
        normalizer: the verl outcome estimator that turns the shaped rewards into advantages: ``grpo`` (GRPO's
            group normalisation, bit-compatible with verl's) or any estimator in verl's registry that takes only
            outcome rewards (``rloo``, ``reinforce_plus_plus_baseline``, ``opo``, ...; see
            ``smartthinker_verl.advantage.usable_normalizers``).
    """

    #: The key under ``algorithm`` that holds the options (the method's estimator name).
    config_key: ClassVar[str] = ""
    #: Numeric fields that must be > 0, resp. >= 0 (None values are skipped).
    positive: ClassVar[tuple[str, ...]] = ("epsilon",)
    non_negative: ClassVar[tuple[str, ...]] = ()

    correct_threshold: float = 0.5
    epsilon: float = 1e-6
    normalizer: str = DEFAULT_NORMALIZER

    def __post_init__(self) -> None:
        if not isinstance(self.normalizer, str) or not self.normalizer.strip():
            raise ConfigError(
                f"algorithm.{self.config_key}.normalizer={self.normalizer!r} must name a verl advantage estimator, "
                f"e.g. {DEFAULT_NORMALIZER} or rloo"
            )
        for key, choices in self.choice_fields().items():
            value = getattr(self, key)
            if value not in choices:
                raise ConfigError(
                    f"algorithm.{self.config_key}.{key}={value!r} is not valid: use one of {', '.join(choices)}"
                )
        for key, kind in self.numeric_fields().items():
            value = getattr(self, key)
            if value is not None:
                self._check_number(key, value, kind)

    def _check_number(self, key: str, value: Any, kind: type) -> None:
        where = f"algorithm.{self.config_key}.{key}={value!r}"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number")
        if kind is int:
            if value != int(value):
                raise ConfigError(f"{where} must be a whole number")
            object.__setattr__(self, key, int(value))
        if key in self.positive and value <= 0:
            raise ConfigError(f"{where} must be > 0")
        if key in self.non_negative and value < 0:
            default = getattr(type(self)(), key)
            raise ConfigError(f"{where} must be >= 0. Fix: e.g. algorithm.{self.config_key}.{key}={default}")

    @classmethod
    @functools.cache
    def choice_fields(cls) -> dict[str, tuple[str, ...]]:
        """``{field: its strings}`` for the fields typed ``Literal[...]``."""
        hints = typing.get_type_hints(cls)
        return {
            f.name: typing.get_args(hints[f.name])
            for f in dataclasses.fields(cls)
            if typing.get_origin(hints[f.name]) is Literal
        }

    @classmethod
    @functools.cache
    def numeric_fields(cls) -> dict[str, type]:
        """``{field: float or int}`` for the fields typed ``float``/``int`` (optionally ``| None``)."""
        hints = typing.get_type_hints(cls)
        out = {}
        for field in dataclasses.fields(cls):
            kinds = set(typing.get_args(hints[field.name])) or {hints[field.name]}
            for kind in (int, float):
                if kind in kinds:
                    out[field.name] = kind
        return out

    def replace(self, **changes: Any) -> MethodOptions:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def for_run(self, run: RunContext) -> MethodOptions:
        """The options with run-dependent defaults filled in (a method whose defaults depend on the run overrides
        this; most return themselves)."""
        return self

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The option keys (the dataclass fields), in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any] | None) -> MethodOptions:
        """Build from a plain mapping (e.g. ``config.algorithm.<key>``); None or empty means defaults."""
        if options is None:
            return cls()
        if not isinstance(options, Mapping):
            raise ConfigError(f"algorithm.{cls.config_key} must be a mapping of options, got {type(options).__name__}")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(
                f"unknown key(s) {', '.join(f'algorithm.{cls.config_key}.{key}' for key in unknown)}: "
                f"the options are {', '.join(sorted(known))}"
            )
        values = dict(options)
        for key in cls.numeric_fields():
            if values.get(key) is not None:
                try:
                    values[key] = float(values[key])
                except (TypeError, ValueError) as error:
                    raise ConfigError(f"algorithm.{cls.config_key}.{key}={values[key]!r} is not a number") from error
        return cls(**values)

    @classmethod
    def from_algorithm_config(cls, algorithm_config: Any) -> MethodOptions:
        """Build from verl's ``config.algorithm`` (an OmegaConf DictConfig, a dict, a dataclass, or None)."""
        if algorithm_config is None:
            return cls()
        options = select(algorithm_config, cls.config_key)
        if options is not None and not isinstance(options, Mapping):
            try:  # OmegaConf DictConfig -> plain dict
                from omegaconf import OmegaConf

                options = OmegaConf.to_container(options, resolve=True)
            except ValueError as error:
                raise ConfigError(
                    f"algorithm.{cls.config_key} could not be read as a mapping of options ({error})"
                ) from error
        return cls.from_mapping(options)


@dataclass(frozen=True, kw_only=True)
class SmartThinkerConfig(MethodOptions):
    """Options of the SmartThinker estimator. The defaults reproduce the paper (arXiv 2603.08000).

    Attributes:
        optimal_length: ``reference`` — the paper's case table for l_opt (docs/algorithm.md, section 1);
            ``argmax`` — the exact argmax of the fitted log-ratio log N(l; m2, v2) - log N(l; m1, v1) on
            [min(l), max(l)].
        penalty: ``one_sided`` — s_i = max(0, l_i - l_opt) for correct responses (the paper);
            ``symmetric`` — s_i = |l_i - l_opt| for correct responses (ablation).
        coefficient: ``dynamic`` — coef = p_err / (max_{correct} s - mean s) (the paper); ``fixed`` — a constant
            ``fixed_coefficient`` (ablation), applied to mixed groups only.
        fixed_coefficient: the constant coefficient when ``coefficient == "fixed"`` (per token of excess length).
        correct_threshold: a response is correct when its outcome score >= this.
        epsilon: added to the group std in the GRPO normalisation (verl's default 1e-6).
    """

    config_key: ClassVar[str] = CONFIG_KEY
    positive: ClassVar[tuple[str, ...]] = (*MethodOptions.positive, "fixed_coefficient")

    optimal_length: OptimalLengthRule = "reference"
    penalty: PenaltyRule = "one_sided"
    coefficient: CoefficientRule = "dynamic"
    fixed_coefficient: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.coefficient == "fixed" and self.fixed_coefficient is None:
            raise ConfigError(
                f"algorithm.{CONFIG_KEY}.coefficient=fixed needs algorithm.{CONFIG_KEY}.fixed_coefficient: "
                f"set it to a positive number (reward per token of excess length), e.g. 1e-4"
            )


def select(config: Any, dotted_key: str, default: Any = None) -> Any:
    """``config.a.b.c`` for ``dotted_key="a.b.c"`` on OmegaConf configs, dicts or dataclasses; ``default`` when a
    level is missing or the value is None."""
    node = config
    for part in dotted_key.split("."):
        if node is None:
            return default
        getter = getattr(node, "get", None)
        try:
            node = getter(part, None) if callable(getter) else getattr(node, part, None)
        except (TypeError, ValueError):  # dataclass-like objects whose .get has other semantics
            node = getattr(node, part, None)
    return default if node is None else node
