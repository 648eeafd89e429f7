"""verl adapter: the reward-loop manager ``smartthinker``, verl's ``naive`` manager plus SmartThinker's extras.

verl's naive manager decodes, builds the scorer's ``extra_info`` and calls the scorer; this manager adds, for every
response: ``acc``, ``think_closed``, ``grading_timed_out``, ``response_length`` (valid tokens) and ``truncated``
(hit the response length limit). The scorer is SmartThinker's (:func:`scoring.grade` in the grading pool, options
under ``reward.smartthinker`` so they reach reward workers on every node) unless
``reward.custom_reward_function.path`` is set; options the chosen route would ignore are errors naming the fix.
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

from smartthinker_verl import grading_pool, scoring, task_grading
from smartthinker_verl.errors import ConfigError, DataError
from smartthinker_verl.options import select

MANAGER_NAME = "smartthinker"
#: Keys of ``reward_extra_info`` for every response (a custom function's own keys come on top).
EXTRA_KEYS = ("score", "acc", "think_closed", "grading_timed_out", "response_length", "truncated")
OPTIONS_KEY = "reward.smartthinker"
_REWARD_KWARGS_GATE = "reward.custom_reward_function.reward_kwargs.require_think_close"


@dataclass(frozen=True)
class ManagerOptions:
    """``reward.smartthinker`` (null: the default): the ``</think>`` gate, seconds per answer and grading processes
    per reward worker (None: ``SMARTTHINKER_GRADE_TIMEOUT_S`` / ``SMARTTHINKER_GRADER_PROCESSES`` or built-ins)."""

    require_think_close: bool = True
    grade_timeout_s: float | None = None
    grader_processes: int | None = None

    @classmethod
    def from_config(cls, config: Any) -> ManagerOptions:
        """Read ``reward.smartthinker`` of verl's full config; bad or unknown keys are :class:`ConfigError`."""
        raw = select(config, OPTIONS_KEY)
        if raw is not None and not isinstance(raw, Mapping):
            raise ConfigError(f"{OPTIONS_KEY} must be a mapping of options, got {type(raw).__name__}")
        checks: dict[str, Callable[[Any, str], Any]] = {
            "require_think_close": lambda value, _name: scoring.parse_bool(value),
            "grade_timeout_s": grading_pool.positive_seconds,
            "grader_processes": grading_pool.positive_int,
        }
        values = {key: value for key, value in dict(raw or {}).items() if value is not None}
        if unknown := sorted(set(values) - set(checks)):
            raise ConfigError(
                f"unknown key(s) {', '.join(f'{OPTIONS_KEY}.{key}' for key in unknown)}: the options are "
                f"{', '.join(checks)}"
            )
        try:
            return cls(**{key: checks[key](value, f"{OPTIONS_KEY}.{key}") for key, value in values.items()})
        except ConfigError as error:
            raise ConfigError(f"{error}, or null for the default") from error


def user_score_function(compute_score: Any) -> Any:
    """The user's scoring function, or None: without a custom function verl still passes its generic
    ``default_compute_score`` (possibly in a ``functools.partial``), which is not a user's choice."""
    from verl.utils.reward_score import default_compute_score

    target = compute_score.func if isinstance(compute_score, functools.partial) else compute_score
    return None if compute_score is None or target is default_compute_score else compute_score


def check_one_route(config: Any, options: ManagerOptions, custom: bool) -> None:
    """Refuse options that the chosen grading route would silently ignore."""
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
    """A custom function's result carrying every key SmartThinker's scorer returns."""
    out = dict(out) if isinstance(out, Mapping) else {"score": out}
    out["acc"] = float(out.get("acc", out["score"]))
    out["think_closed"] = bool(out.get("think_closed", scoring.THINK_CLOSE in solution_str))
    out["grading_timed_out"] = bool(out.get("grading_timed_out", False))
    return out


def _custom_scorer(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` returning :func:`_with_extras` of its result; async stays async (naive awaits it then)."""
    if inspect.iscoroutinefunction(function):

        async def score_async(**kwargs: Any) -> dict[str, Any]:
            return _with_extras(await function(**kwargs), kwargs["solution_str"])

        return score_async
    return lambda **kwargs: _with_extras(function(**kwargs), kwargs["solution_str"])


@register(MANAGER_NAME)
class SmartThinkerRewardManager(NaiveRewardManager):
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
        # resolved here, so a malformed SMARTTHINKER_* default fails when the worker starts
        self.pool_settings = grading_pool.pool_settings(self.options.grader_processes, self.options.grade_timeout_s)
        self.max_response_length = select(config, "actor_rollout_ref.rollout.response_length", None)
        scorer = self._grade if custom is None else _custom_scorer(custom)
        super().__init__(config, tokenizer, scorer, reward_router_address, reward_model_tokenizer)

    def _grade(self, solution_str: str, ground_truth: Any, data_source: Any = None, **kwargs: Any) -> dict[str, Any]:
        pool = grading_pool.get_pool(*self.pool_settings)
        gate = self.options.require_think_close
        if task_grading.is_task_source(data_source):
            return task_grading.grade(
                solution_str, str(ground_truth), kwargs.get("extra_info"), require_think_close=gate, pool=pool
            ).as_reward()
        return scoring.grade(solution_str, str(ground_truth), require_think_close=gate, pool=pool).as_reward()

    async def run_single(self, data: DataProto) -> dict:
        item = data[-1]  # as naive: the last sequence carries the final answer
        reward_model = item.non_tensor_batch.get("reward_model")
        if not isinstance(reward_model, Mapping) or reward_model.get("ground_truth") is None:
            raise DataError(
                f"a row of data_source {item.non_tensor_batch.get('data_source')!r} has no reward_model.ground_truth: "
                "prepare the data with data_preprocess/ (smartthinker_verl.data.build_row)"
            )
        result = await super().run_single(data)
        width = item.batch["responses"].shape[-1]
        valid_length = int(item.batch["attention_mask"][-width:].sum())
        limit = width if self.max_response_length is None else int(self.max_response_length)
        result["reward_score"] = float(result["reward_score"])
        result["reward_extra_info"].update(response_length=valid_length, truncated=valid_length >= limit)
        return result
