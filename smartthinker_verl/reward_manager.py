"""verl adapter: the reward-loop manager ``smartthinker`` around :mod:`smartthinker_verl.scoring`.

verl 0.9.1's reward loop builds the manager once per RewardLoopWorker and calls ``run_single`` once per trajectory,
from several workers at once; grading runs in this process's grading pool (math-verify in worker processes), so
it is correct from threads. Group-level shaping is NOT done here (a manager never sees the group): the estimator
does it from the score this manager returns.

Returns ``{"reward_score": float, "reward_extra_info": {...}}`` with the same keys for every response:
``acc`` (float), ``response_length`` (valid tokens), ``think_closed`` (bool), ``truncated`` (hit the response length
limit), ``grading_timed_out`` (bool).

Grading, one route per configuration:

- ``reward.custom_reward_function.path`` unset (the recipes): the manager grades with SmartThinker's scorer
  (:func:`smartthinker_verl.scoring.grade`: the ``</think>`` gate, then math-verify; 1.0 or 0.0). Its options are
  read from one place, ``reward.smartthinker`` (:class:`ManagerOptions`): ``require_think_close`` (default true, the
  paper's rule; off for models that do not think in tags: ``reward.smartthinker.require_think_close=false``, with a
  leading ``+`` where the config does not define the key).
- ``reward.custom_reward_function.path/name`` set: that function scores instead (verl's contract
  ``fn(data_source, solution_str, ground_truth, extra_info, **reward_kwargs)`` returning a float or a dict with
  ``score``; verl binds ``reward_kwargs`` to it); every extra above is still added, from the function's dict where
  it gives one. ``reward.smartthinker`` is not used then, and a non-default value there is an error naming the fix.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from verl import DataProto
from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from smartthinker_verl import scoring
from smartthinker_verl.config import SmartThinkerConfigError, select
from smartthinker_verl.errors import DataError

logger = logging.getLogger(__name__)

MANAGER_NAME = "smartthinker"

#: Keys of ``reward_extra_info``; verl requires the same keys for every response of a batch.
EXTRA_KEYS: tuple[str, ...] = ("acc", "response_length", "think_closed", "truncated", "grading_timed_out")
#: Where the manager's options live in verl's config.
OPTIONS_KEY = "reward.smartthinker"
#: Where the gate was read from before; now it belongs to a custom reward function's keyword arguments only.
_REWARD_KWARGS_GATE = "reward.custom_reward_function.reward_kwargs.require_think_close"


@dataclass(frozen=True)
class ManagerOptions:
    """Options of the ``smartthinker`` reward manager, under ``reward.smartthinker``.

    Attributes:
        require_think_close: a response that never closes its thinking with ``</think>`` scores 0 (the paper).
    """

    require_think_close: bool = True

    @classmethod
    def from_config(cls, config: Any) -> ManagerOptions:
        """Read ``reward.smartthinker`` of verl's full config (absent: defaults); unknown keys are errors."""
        raw = select(config, OPTIONS_KEY)
        if raw is not None and not isinstance(raw, Mapping):
            from omegaconf import OmegaConf

            if OmegaConf.is_config(raw):
                raw = OmegaConf.to_container(raw, resolve=True)
        if raw is not None and not isinstance(raw, Mapping):
            raise SmartThinkerConfigError(f"{OPTIONS_KEY} must be a mapping of options, got {type(raw).__name__}")
        values = {key: value for key, value in dict(raw or {}).items() if value is not None}
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SmartThinkerConfigError(
                f"unknown key(s) {', '.join(f'{OPTIONS_KEY}.{key}' for key in unknown)}: the options are "
                f"{', '.join(sorted(known))}"
            )
        if "require_think_close" in values:
            values["require_think_close"] = scoring.parse_bool(values["require_think_close"])
        return cls(**values)


def user_score_function(compute_score: Any) -> Any:
    """The user's scoring function, or None when verl passed none of its own.

    Without ``reward.custom_reward_function.path`` verl 0.9.1 still hands every manager its generic
    ``verl.utils.reward_score.default_compute_score`` (possibly wrapped in a ``functools.partial`` for its sandbox);
    that is not a user's choice, so the manager grades with SmartThinker's scorer then.
    """
    from verl.utils.reward_score import default_compute_score

    target = compute_score.func if isinstance(compute_score, functools.partial) else compute_score
    return None if compute_score is None or target is default_compute_score else compute_score


def check_one_route(config: Any, options: ManagerOptions, custom: bool) -> None:
    """Refuse options that the chosen grading route would silently ignore (see the module docstring)."""
    stray_gate = select(config, _REWARD_KWARGS_GATE)
    if not custom and stray_gate is not None:
        raise SmartThinkerConfigError(
            f"{_REWARD_KWARGS_GATE} is set but reward.custom_reward_function.path is not: the smartthinker reward "
            f"manager grades with its own scorer and reads the gate from {OPTIONS_KEY}.require_think_close. Fix: "
            f"set {OPTIONS_KEY}.require_think_close={str(scoring.parse_bool(stray_gate)).lower()} (with a leading + "
            "where the config does not define it) and drop the reward_kwargs key"
        )
    if custom and options != ManagerOptions():
        raise SmartThinkerConfigError(
            f"{OPTIONS_KEY} sets {dataclasses.asdict(options)}, but reward.custom_reward_function.path is set, so that "
            "function scores and these options would be ignored. Fix: pass them to your function with "
            "+reward.custom_reward_function.reward_kwargs.<key>=..., or unset reward.custom_reward_function.path to "
            "grade with SmartThinker's scorer"
        )


@register(MANAGER_NAME)
class SmartThinkerRewardManager(RewardManagerBase):
    """Scores one trajectory: decode the valid response tokens, grade the final answer, report the extras."""

    def __init__(
        self,
        config: Any,
        tokenizer: Any,
        compute_score: Any = None,
        reward_router_address: str | None = None,
        reward_model_tokenizer: Any = None,
    ) -> None:
        super().__init__(config, tokenizer, compute_score)
        # With no custom function configured, verl passes None: grade with ours, with the options read here.
        self.options = ManagerOptions.from_config(config)
        custom = user_score_function(compute_score)
        check_one_route(config, self.options, custom=custom is not None)
        self.custom_score_fn = custom
        self.is_async_score_fn = custom is not None and inspect.iscoroutinefunction(custom)
        self.max_response_length = select(config, "actor_rollout_ref.rollout.response_length", None)

    def _score(self, data_source: str, response: str, ground_truth: str, extra_info: dict) -> dict[str, Any]:
        if self.custom_score_fn is None:
            result = scoring.grade(response, ground_truth, require_think_close=self.options.require_think_close)
            return {
                "score": result.score,
                "think_closed": result.think_closed,
                "grading_timed_out": result.timed_out,
            }
        out = self.custom_score_fn(
            data_source=data_source, solution_str=response, ground_truth=ground_truth, extra_info=extra_info
        )
        return out if isinstance(out, dict) else {"score": out}

    async def run_single(self, data: DataProto) -> dict:
        item = data[-1]  # multi-turn outputs: the last sequence carries the final answer
        response_ids = item.batch["responses"]
        width = response_ids.shape[-1]
        valid_length = int(item.batch["attention_mask"][-width:].sum())
        valid_ids = response_ids[:valid_length]
        data_source = item.non_tensor_batch.get("data_source", "")
        reward_model = item.non_tensor_batch.get("reward_model") or {}
        ground_truth = reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
        if ground_truth is None:
            raise DataError(
                f"a row of data_source {data_source!r} has no reward_model.ground_truth: prepare the data with "
                "data_preprocess/ (smartthinker_verl.data.build_row)"
            )
        extra_info = dict(item.non_tensor_batch.get("extra_info") or {})

        response = await self.loop.run_in_executor(
            None, lambda: self.tokenizer.decode(valid_ids, skip_special_tokens=True)
        )
        if self.is_async_score_fn:
            out = await self.custom_score_fn(
                data_source=data_source, solution_str=response, ground_truth=str(ground_truth), extra_info=extra_info
            )
            out = out if isinstance(out, dict) else {"score": out}
        else:
            out = await self.loop.run_in_executor(
                None, lambda: self._score(data_source, response, str(ground_truth), extra_info)
            )
        score = float(out["score"])
        limit = self.max_response_length if self.max_response_length is not None else width
        extra = {
            "acc": float(out.get("acc", score)),
            "response_length": valid_length,
            "think_closed": bool(out.get("think_closed", scoring.THINK_CLOSE in response)),
            "truncated": valid_length >= int(limit),
            "grading_timed_out": bool(out.get("grading_timed_out", False)),
        }
        return {"reward_score": score, "reward_extra_info": extra}
