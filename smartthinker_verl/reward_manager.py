"""verl adapter: the reward-loop manager ``smartthinker`` around :mod:`smartthinker_verl.scoring`.

verl 0.9.1's reward loop builds the manager once per RewardLoopWorker and calls ``run_single`` once per trajectory,
from several workers at once; grading runs in this process's grading pool (math-verify in worker processes), so
it is correct from threads. Group-level shaping is NOT done here (a manager never sees the group): the estimator
``smartthinker`` does it from the score this manager returns.

Returns ``{"reward_score": 1.0 | 0.0, "reward_extra_info": {...}}`` with the same keys for every response:
``acc`` (float), ``response_length`` (valid tokens), ``think_closed`` (bool), ``truncated`` (hit the response length
limit), ``grading_timed_out`` (bool).

Options (verl config):
- ``reward.custom_reward_function.reward_kwargs.require_think_close`` (default true): the ``</think>`` gate; turn it
  off for models that do not think in tags: ``+reward.custom_reward_function.reward_kwargs.require_think_close=false``.
- ``reward.custom_reward_function.path/name``: if set, that function scores instead of ours (verl's contract
  ``fn(data_source, solution_str, ground_truth, extra_info, **reward_kwargs)`` returning a float or a dict with
  ``score``); the extras above are still added.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from verl import DataProto
from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from smartthinker_verl import scoring
from smartthinker_verl.config import select

logger = logging.getLogger(__name__)

MANAGER_NAME = "smartthinker"

#: Keys of ``reward_extra_info``; verl requires the same keys for every response of a batch.
EXTRA_KEYS: tuple[str, ...] = ("acc", "response_length", "think_closed", "truncated", "grading_timed_out")


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
        self.require_think_close = scoring.parse_bool(
            select(config, "reward.custom_reward_function.reward_kwargs.require_think_close", True)
        )
        # With no custom function configured, verl passes None: grade with ours (the gate is read above).
        self.custom_score_fn = compute_score
        self.is_async_score_fn = compute_score is not None and inspect.iscoroutinefunction(compute_score)
        self.max_response_length = select(config, "actor_rollout_ref.rollout.response_length", None)

    def _score(self, data_source: str, response: str, ground_truth: str, extra_info: dict) -> dict[str, Any]:
        if self.custom_score_fn is None:
            result = scoring.grade(response, ground_truth, require_think_close=self.require_think_close)
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
            raise ValueError(
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
