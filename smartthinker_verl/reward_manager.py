"""verl adapter: the reward-loop manager ``smartthinker``, verl's ``naive`` manager plus SmartThinker's extras.

It adds ``acc``, ``think_closed``, ``grading_timed_out``, ``response_length``, ``truncated`` and ``grading_errors``
for every response. ``grading_errors`` is 1 when the row's ground truth is missing or math-verify cannot parse it: the
response then scores 0 and is counted (:mod:`grading_report`) instead of raising into verl, which would drop it from its
group without a word; a grading pool that cannot start is reported there too. The scorer is SmartThinker's
(:func:`scoring.grade`, options under ``reward.smartthinker``) unless ``reward.custom_reward_function.path`` is set;
options the chosen route would ignore are errors naming the fix.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from verl import DataProto
from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

from smartthinker_verl.errors import ConfigError, DataError, SetupError
from smartthinker_verl.options import RewardOptions, select

MANAGER_NAME = "smartthinker"
OPTIONS_KEY = RewardOptions.prefix
_REWARD_KWARGS_GATE = "reward.custom_reward_function.reward_kwargs.require_think_close"


def user_score_function(compute_score: Any) -> Any:
    """The user's scoring function, or None: without a custom function verl still passes its generic
    ``default_compute_score`` (possibly in a ``functools.partial``), which is not a user's choice."""
    from verl.utils.reward_score import default_compute_score

    target = compute_score.func if isinstance(compute_score, functools.partial) else compute_score
    return None if compute_score is None or target is default_compute_score else compute_score


def check_one_route(config: Any, options: RewardOptions, custom: bool) -> None:
    """Refuse options that the chosen grading route would silently ignore."""
    stray_gate = select(config, _REWARD_KWARGS_GATE)
    if not custom and stray_gate is not None:
        raise ConfigError(
            f"{_REWARD_KWARGS_GATE} is set but reward.custom_reward_function.path is not: the smartthinker reward "
            f"manager grades with its own scorer and reads the gate from {OPTIONS_KEY}.require_think_close. Fix: "
            f"set +{OPTIONS_KEY}.require_think_close={str(stray_gate).lower()} and drop the reward_kwargs key"
        )
    if custom and options != RewardOptions():
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
    from smartthinker_verl.scoring import THINK_CLOSE

    out["think_closed"] = bool(out.get("think_closed", THINK_CLOSE in solution_str))
    out["grading_timed_out"] = bool(out.get("grading_timed_out", False))
    out["grading_errors"] = int(out.get("grading_errors", 0))
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
        self.options = RewardOptions.from_mapping(select(config, OPTIONS_KEY))
        custom = user_score_function(compute_score)
        check_one_route(config, self.options, custom=custom is not None)
        # resolved here, so a malformed SMARTTHINKER_* default fails when the worker starts
        # The grader loads here, in reward workers only: trainer, rollout and FSDP processes never grade.
        from smartthinker_verl import grading_pool

        self.pool_settings = grading_pool.pool_settings(self.options)
        self.max_response_length = select(config, "actor_rollout_ref.rollout.response_length", None)
        scorer = self._grade if custom is None else _custom_scorer(custom)
        super().__init__(config, tokenizer, scorer, reward_router_address, reward_model_tokenizer)
        if custom is None:  # a broken grading environment shows when the worker starts, not at the first answer
            from smartthinker_verl import grading_report

            try:
                grading_pool.get_pool(*self.pool_settings).start()
            except SetupError as error:  # raising here would only kill this actor: verl goes on without it
                grading_report.setup_failure(error)

    def _grade(self, data_source: Any, solution_str: str, ground_truth: Any, extra_info: Any = None, **_: Any) -> dict:
        from smartthinker_verl import grading_pool, grading_report, scoring, task_grading

        pool = grading_pool.get_pool(*self.pool_settings)
        gate = self.options.require_think_close
        truth = None if ground_truth is None else str(ground_truth)
        try:
            if task_grading.is_task_source(data_source):  # reasoning-gym rows: the task's own scorer
                result = scoring.grade_task(solution_str, truth, extra_info, require_think_close=gate, pool=pool)
            else:
                result = scoring.grade(solution_str, truth, require_think_close=gate, pool=pool)
        except DataError as error:
            grading_report.data_error(error, data_source, extra_info)
            closed = scoring.THINK_CLOSE in solution_str
            return {**scoring.GradeResult(0.0, False, closed, "").as_reward(), "grading_errors": 1}
        except SetupError as error:
            grading_report.setup_failure(error)
            raise
        return {**result.as_reward(), "grading_errors": 0}

    async def run_single(self, data: DataProto) -> dict:
        data = data[-1:]  # as naive: the last sequence carries the final answer
        item = data[0]
        reward_model = item.non_tensor_batch.get("reward_model")
        if not isinstance(reward_model, Mapping) or "ground_truth" not in reward_model:
            # naive would raise a KeyError; _grade scores the response 0 and counts it
            reward_model = {**(reward_model if isinstance(reward_model, Mapping) else {}), "ground_truth": None}
            data.non_tensor_batch["reward_model"] = np.array([reward_model], dtype=object)
        result = await super().run_single(data)
        width = item.batch["responses"].shape[-1]
        valid_length = int(item.batch["attention_mask"][-width:].sum())
        limit = width if self.max_response_length is None else int(self.max_response_length)
        result["reward_score"] = float(result["reward_score"])
        result["reward_extra_info"].update(response_length=valid_length, truncated=valid_length >= limit)
        return result
