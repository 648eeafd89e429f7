"""Every option of the package, declared once as a frozen dataclass and validated by its field types
(:class:`Options`): the length-shaping methods' (``algorithm.<estimator>``; :class:`MethodOptions`, SmartThinker's
:class:`SmartThinkerConfig` here, the baselines' beside their maths in ``shaping/``), the run context they read
(``algorithm.run_context``) and the reward manager's (``reward.smartthinker``). The defaults are the papers'; the
recipe yaml repeats none of them, so a key it does not define is set with a leading ``+``:
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

CONFIG_KEY = "smartthinker"
#: The normaliser every method uses unless told otherwise: GRPO's group normalisation (shaping/grpo.py).
DEFAULT_NORMALIZER = "grpo"
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True, kw_only=True)
class Options:
    """Options of one block of verl's config (``prefix``), validated by their field types on construction:
    ``float``/``int`` (optionally ``| None``, the default) take finite numbers or numeric strings (``int`` whole ones;
    ``positive``/``non_negative`` name those > 0, >= 0), ``Literal`` one of its strings, ``bool`` true/false/yes/no/1/0.
    Every error names the key and the fix."""

    #: Where the options live in verl's config, for error messages.
    prefix: ClassVar[str] = ""
    positive: ClassVar[tuple[str, ...]] = ()
    non_negative: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for key in self.field_types():
            value = getattr(self, key)
            checked = self.check_value(key, value)
            if checked is not value:
                object.__setattr__(self, key, checked)

    @classmethod
    @functools.cache
    def field_types(cls) -> dict[str, tuple[Any, ...]]:
        """``{field: its types}``: ``(float,)``, ``(int, NoneType)`` for ``int | None``, a ``Literal``'s strings."""
        hints = typing.get_type_hints(cls)
        return {f.name: typing.get_args(hints[f.name]) or (hints[f.name],) for f in dataclasses.fields(cls)}

    @classmethod
    def check_value(cls, key: str, value: Any, where: str | None = None) -> Any:
        """``value`` of field ``key`` converted to its type, or a :class:`ConfigError` naming ``where`` (default
        ``<prefix>.<key>``) and the fix."""
        where = f"{where or f'{cls.prefix}.{key}'}={value!r}"
        kinds = cls.field_types()[key]
        if value is None and type(None) in kinds:
            return None
        if all(isinstance(kind, str) for kind in kinds):
            if value not in kinds:
                raise ConfigError(f"{where} is not valid: use one of {', '.join(kinds)}")
            return value
        if bool in kinds:
            parsed = _BOOLEANS.get(str(value).strip().lower()) if not isinstance(value, bool) else value
            if parsed is None:
                raise ConfigError(f"{where}: use true or false")
            return parsed
        if int in kinds or float in kinds:
            return cls._check_number(key, value, int if int in kinds else float, where)
        if str in kinds and not (isinstance(value, str) and value.strip()):
            raise ConfigError(f"{where} must be a non-empty string")
        return value

    @classmethod
    def _check_number(cls, key: str, value: Any, kind: type, where: str) -> int | float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{where} is not a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number")
        if kind is int and value != int(value):
            raise ConfigError(f"{where} must be a whole number")
        bound = ">" if key in cls.positive else ">=" if key in cls.non_negative else None
        if bound and (value <= 0 if bound == ">" else value < 0):
            default = next(f.default for f in dataclasses.fields(cls) if f.name == key)
            fix = f"e.g. +{cls.prefix}.{key}={default}" if default is not None else "a number, or null for the default"
            raise ConfigError(f"{where} must be {bound} 0. Fix: {fix}")
        return kind(value)

    @classmethod
    def from_mapping(cls, options: Any) -> Options:
        """Build from a mapping (a dict or an OmegaConf node); None or empty means defaults; None values too."""
        if options is None:
            return cls()
        options = plain(options)
        if not isinstance(options, Mapping):
            raise ConfigError(f"{cls.prefix} must be a mapping of options, got {type(options).__name__}")
        unknown = sorted(set(options) - set(cls.field_types()))
        if unknown:
            raise ConfigError(
                f"unknown key(s) {', '.join(f'{cls.prefix}.{key}' for key in unknown)}: "
                f"the options are {', '.join(cls.field_types())}"
            )
        return cls(**{key: value for key, value in options.items() if value is not None})


@dataclass(frozen=True, kw_only=True)
class RunContext(Options):
    """What the methods need of the run beyond their options: ``algorithm.run_context``, which the recipe yaml
    fills by interpolation from the rest of the config (a plain verl config lacks it: all None / 1).

    Attributes:
        response_limit: the most tokens a response may have (``actor_rollout_ref.rollout.response_length``).
        group_size: responses per prompt (``actor_rollout_ref.rollout.n``).
        calls_per_step: advantage computations per training step (verl's ``separate_async`` trainer:
            ``trainer.v1.separate_async.parameter_sync_step``; 1 otherwise).
    """

    prefix: ClassVar[str] = "algorithm.run_context"
    positive: ClassVar[tuple[str, ...]] = ("response_limit", "group_size", "calls_per_step")

    response_limit: int | None = None
    group_size: int | None = None
    calls_per_step: int = 1

    @classmethod
    def from_algorithm(cls, algorithm: Any) -> RunContext:
        """Read ``run_context`` of verl's ``config.algorithm``."""
        return cls.from_mapping(select(algorithm, "run_context"))


@dataclass(frozen=True, kw_only=True)
class MethodOptions(Options):
    """Options every length-shaping method has; a method's options subclass this and set ``config_key``.

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
    positive: ClassVar[tuple[str, ...]] = ("epsilon",)

    correct_threshold: float = 0.5
    epsilon: float = 1e-6
    normalizer: str = DEFAULT_NORMALIZER

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.prefix = f"algorithm.{cls.config_key}"

    def for_run(self, run: RunContext) -> MethodOptions:
        """The options with run-dependent defaults filled in (a method whose defaults depend on the run overrides
        this; most return themselves)."""
        return self

    @classmethod
    def from_algorithm_config(cls, algorithm_config: Any) -> MethodOptions:
        """Build from verl's ``config.algorithm`` (an OmegaConf DictConfig, a dict, a dataclass, or None)."""
        return cls.from_mapping(select(algorithm_config, cls.config_key))


@dataclass(frozen=True, kw_only=True)
class RewardOptions(Options):
    """``reward.smartthinker``, read by the ``smartthinker`` reward manager on every reward worker: the
    ``</think>`` gate, seconds per answer and grading processes per reward worker (None:
    ``SMARTTHINKER_GRADE_TIMEOUT_S`` / ``SMARTTHINKER_GRADER_PROCESSES`` or built-ins)."""

    prefix: ClassVar[str] = "reward.smartthinker"
    positive: ClassVar[tuple[str, ...]] = ("grade_timeout_s", "grader_processes")

    require_think_close: bool = True
    grade_timeout_s: float | None = None
    grader_processes: int | None = None


@dataclass(frozen=True, kw_only=True)
class ScorerOptions(RewardOptions):
    """The same options as ``reward_kwargs`` of SmartThinker's ``compute_score`` under verl's other managers."""

    prefix: ClassVar[str] = "reward.custom_reward_function.reward_kwargs"


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
    """

    config_key: ClassVar[str] = CONFIG_KEY
    positive: ClassVar[tuple[str, ...]] = (*MethodOptions.positive, "fixed_coefficient")

    optimal_length: Literal["reference", "argmax"] = "reference"
    penalty: Literal["one_sided", "symmetric"] = "one_sided"
    coefficient: Literal["dynamic", "fixed"] = "dynamic"
    fixed_coefficient: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.coefficient == "fixed" and self.fixed_coefficient is None:
            raise ConfigError(
                f"algorithm.{CONFIG_KEY}.coefficient=fixed needs algorithm.{CONFIG_KEY}.fixed_coefficient: "
                f"set it to a positive number (reward per token of excess length), e.g. 1e-4"
            )


def plain(node: Any) -> Any:
    """An OmegaConf node as plain containers (interpolations resolved); anything else unchanged."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


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
