"""verl adapter: the reward-loop manager ``smartthinker``, verl's ``naive`` manager with SmartThinker's scorer.

verl 0.9.1's reward loop builds one manager per RewardLoopWorker and calls ``run_single`` once per trajectory.
verl's naive manager does the decoding and builds the scorer's ``extra_info`` (the row's ``extra_info`` plus
``tool_extra_fields``, ``num_turns``, ``rollout_reward_scores``), so a user's ``custom_reward_function`` sees
exactly what it sees under ``naive``. This manager adds, with the same keys for every response: ``score`` and
``acc`` (float), ``think_closed`` (bool), ``grading_timed_out`` (bool), ``response_length`` (valid tokens) and
``truncated`` (hit the response length limit). Group shaping is not done here (a manager never sees the group).

Grading, one route per configuration:

- ``reward.custom_reward_function.path`` unset (the recipes): SmartThinker's scorer (:func:`scoring.grade`: the
  ``</think>`` gate, then math-verify in a process pool; 1.0 or 0.0) with the options of :class:`ManagerOptions`,
  read from ``reward.smartthinker`` so they reach reward workers on every node with the config.
- ``reward.custom_reward_function.path/name`` set: that function scores (verl's contract, ``reward_kwargs`` bound by
  verl); a non-default ``reward.smartthinker`` option would be ignored then, and is an error naming the fix.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from verl import DataProto
from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

from smartthinker_verl import grading_pool, scoring
from smartthinker_verl.errors import ConfigError, DataError
from smartthinker_verl.options import select

MANAGER_NAME = "smartthinker"

#: Keys of ``reward_extra_info`` for every response (a custom function's own keys come on top).
EXTRA_KEYS: tuple[str, ...] = (
    "score",
    "acc",
    "think_closed",
    "grading_timed_out",
    "response_length",
    "truncated",
)
#: Where the manager's options live in verl's config.
OPTIONS_KEY = "reward.smartthinker"
#: Where the gate belongs when a custom reward function scores.
_REWARD_KWARGS_GATE = "reward.custom_reward_function.reward_kwargs.require_think_close"


@dataclass(frozen=True)
class ManagerOptions:
    """Options of the ``smartthinker`` reward manager, under ``reward.smartthinker`` (null: the default).

    Attributes:
        require_think_close: a response that never closes its thinking with ``</think>`` scores 0 (the paper).
        grade_timeout_s: wall-clock seconds per answer, past which it scores 0 and counts in ``grading_timed_out``;
            None: ``SMARTTHINKER_GRADE_TIMEOUT_S`` or 15.
        grader_processes: math-verify processes per reward worker; None: ``SMARTTHINKER_GRADER_PROCESSES`` or
            min(4, CPUs).
    """

    require_think_close: bool = True
    grade_timeout_s: float | None = None
    grader_processes: int | None = None

    @classmethod
    def from_config(cls, config: Any) -> ManagerOptions:
        """Read ``reward.smartthinker`` of verl's full config (absent: defaults); bad or unknown keys are errors."""
        raw = select(config, OPTIONS_KEY)
        if raw is not None and not isinstance(raw, Mapping):
            raise ConfigError(f"{OPTIONS_KEY} must be a mapping of options, got {type(raw).__name__}")
        values = {key: value for key, value in dict(raw or {}).items() if value is not None}
        known = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown key(s) {', '.join(f'{OPTIONS_KEY}.{key}' for key in unknown)}: the options are "
                f"{', '.join(known)}"
            )
        checks: dict[str, Callable[[Any, str], Any]] = {
            "require_think_close": lambda value, _name: scoring.parse_bool(value),
            "grade_timeout_s": grading_pool.positive_seconds,
            "grader_processes": grading_pool.positive_int,
        }
        try:
            return cls(**{key: checks[key](value, f"{OPTIONS_KEY}.{key}") for key, value in values.items()})
        except ConfigError as error:
            raise ConfigError(f"{error}, or null for the default") from error


def user_score_function(compute_score: Any) -> Any:
    """The user's scoring function, or None when verl passed none of its own.

    Without ``reward.custom_reward_function.path`` verl 0.9.1 still hands every manager its generic
    ``verl.utils.reward_score.default_compute_score`` (possibly in a ``functools.partial``); not a user's choice.
    """
    from verl.utils.reward_score import default_compute_score

    target = compute_score.func if isinstance(compute_score, functools.partial) else compute_score
    return None if compute_score is None or target is default_compute_score else compute_score


def check_one_route(config: Any, options: ManagerOptions, custom: bool) -> None:
    """Refuse options that the chosen grading route would silently ignore (see the module docstring)."""
    stray_gate = select(config, _REWARD_KWARGS_GATE)
    if not custom and stray_gate is not None:
        raise ConfigError(
            f"{_REWARD_KWARGS_GATE} is set but reward.custom_reward_function.path is not: the smartthinker reward "
            f"manager grades with its own scorer and reads the gate from {OPTIONS_KEY}.require_think_close. Fix: "
            f"set {OPTIONS_KEY}.require_think_close={str(scoring.parse_bool(stray_gate)).lower()} (with a leading + "
            "where the config does not define it) and drop the reward_kwargs key"
        )
    if custom and options != ManagerOptions():
        raise ConfigError(
            f"{OPTIONS_KEY} sets {dataclasses.asdict(options)}, but reward.custom_reward_function.path is set, so that "
            "function scores and these options would be ignored. Fix: pass them to your function with "
            "+reward.custom_reward_function.reward_kwargs.<key>=..., or unset reward.custom_reward_function.path to "
            "grade with SmartThinker's scorer"
        )


def _with_extras(out: Any, solution_str: str) -> dict[str, Any]:
    """A custom function's result as a dict carrying every key SmartThinker's scorer returns."""
    out = dict(out) if isinstance(out, Mapping) else {"score": out}
    out["acc"] = float(out.get("acc", out["score"]))
    out["think_closed"] = bool(out.get("think_closed", scoring.THINK_CLOSE in solution_str))
    out["grading_timed_out"] = bool(out.get("grading_timed_out", False))
    return out


def _custom_scorer(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (sync or async) returning :func:`_with_extras` of its result."""
    if inspect.iscoroutinefunction(function):

        async def score_async(**kwargs: Any) -> dict[str, Any]:
            return _with_extras(await function(**kwargs), kwargs["solution_str"])

        return score_async

    def score(**kwargs: Any) -> dict[str, Any]:
        return _with_extras(function(**kwargs), kwargs["solution_str"])

    return score


@register(MANAGER_NAME)
class SmartThinkerRewardManager(NaiveRewardManager):
    """verl's naive manager with SmartThinker's scorer (or the user's) and the extras of the module docstring."""

    def __init__(
        self,
        config: Any,
        tokenizer: Any,
        compute_score: Any = None,
        reward_router_address: str | None = None,
        reward_model_tokenizer: Any = None,
    ) -> None:
        self.options = ManagerOptions.from_config(config)
        custom = user_score_function(compute_score)
        check_one_route(config, self.options, custom=custom is not None)
        # Resolved here, so a malformed SMARTTHINKER_* default fails when the worker starts, naming the fix.
        self.pool_settings = (
            self.options.grader_processes or grading_pool.default_num_processes(),
            self.options.grade_timeout_s or grading_pool.default_time_limit_s(),
        )
        self.max_response_length = select(config, "actor_rollout_ref.rollout.response_length", None)
        scorer = self._grade if custom is None else _custom_scorer(custom)
        super().__init__(config, tokenizer, scorer, reward_router_address, reward_model_tokenizer)

    def _grade(self, data_source: str, solution_str: str, ground_truth: Any, **_: Any) -> dict[str, Any]:
        pool = grading_pool.get_pool(*self.pool_settings)
        result = scoring.grade(
            solution_str, str(ground_truth), require_think_close=self.options.require_think_close, pool=pool
        )
        return result.as_reward()

    async def run_single(self, data: DataProto) -> dict:
        item = data[-1]  # multi-turn outputs: the last sequence carries the final answer (as in naive)
        reward_model = item.non_tensor_batch.get("reward_model")
        if not isinstance(reward_model, Mapping) or reward_model.get("ground_truth") is None:
            raise DataError(
                f"a row of data_source {item.non_tensor_batch.get('data_source')!r} has no reward_model.ground_truth: "
                "prepare the data with data_preprocess/ (smartthinker_verl.data.build_row)"
            )
        result = await super().run_single(data)
        width = item.batch["responses"].shape[-1]
        valid_length = int(item.batch["attention_mask"][-width:].sum())
        limit = self.max_response_length if self.max_response_length is not None else width
        result["reward_score"] = float(result["reward_score"])
        result["reward_extra_info"].update(response_length=valid_length, truncated=valid_length >= int(limit))
        return result
