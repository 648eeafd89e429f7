"""Math grading: the ``</think>`` gate, then math-verify on the final answer in a pool with time limits.

math-verify runs in worker processes (:mod:`smartthinker_verl.grading_pool`), so every function here is safe to call
from verl's reward-loop threads. Grading rules (the paper's):

- ``require_think_close`` (default): a response that never closes its thinking (e.g. cut at the length limit)
  scores 0. R1-Distill puts ``<think>`` in the prompt, so only the closing tag is looked for.
- The graded text is what follows the LAST ``</think>`` (the whole response when there is none and the gate is
  off); math-verify extracts the final answer (``\\boxed{}`` first, then LaTeX / plain expressions).
- An empty answer scores 0 without a grading call; an answer past the time limit scores 0 (``timed_out``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from smartthinker_verl import task_grading
from smartthinker_verl.errors import DataError
from smartthinker_verl.grading_pool import GradingPool, get_pool, pool_settings
from smartthinker_verl.options import ScorerOptions

logger = logging.getLogger(__name__)

THINK_CLOSE = "</think>"


@dataclass(frozen=True)
class GradeResult:
    """One response's grade; ``answer`` is the text graded (empty when none was), ``timed_out`` that grading hit a
    time limit or its worker crashed (scored 0)."""

    score: float
    correct: bool
    think_closed: bool
    answer: str
    timed_out: bool = False

    def as_reward(self) -> dict[str, Any]:
        """verl's per-response dict: ``{"score", "acc", "think_closed", "grading_timed_out"}``."""
        return {
            "score": self.score,
            "acc": self.score,
            "think_closed": self.think_closed,
            "grading_timed_out": self.timed_out,
        }


def split_answer(response: str, require_think_close: bool = True) -> tuple[bool, str | None]:
    """Return ``(think_closed, text to grade)``; the text is None when the response must score 0 ungraded."""
    think_closed = THINK_CLOSE in response
    if require_think_close and not think_closed:
        return False, None
    answer = response.rsplit(THINK_CLOSE, 1)[-1]
    return think_closed, (answer if answer.strip() else None)


def grade(
    response: str, ground_truth: str, *, require_think_close: bool = True, pool: GradingPool | None = None
) -> GradeResult:
    """Grade one response against its ground truth (thread-safe; math-verify runs in ``pool``, default
    :func:`~smartthinker_verl.grading_pool.get_pool`)."""
    if not isinstance(ground_truth, str) or not ground_truth.strip():
        raise DataError(f"ground truth {ground_truth!r} is empty or not a string; fix the dataset row")
    think_closed, answer = split_answer(response or "", require_think_close)
    if answer is None:
        return GradeResult(score=0.0, correct=False, think_closed=think_closed, answer="")
    correct, timed_out = (pool or get_pool()).verify(answer, ground_truth.strip())
    return GradeResult(
        score=1.0 if correct else 0.0, correct=correct, think_closed=think_closed, answer=answer, timed_out=timed_out
    )


def grade_task(
    response: str,
    ground_truth: str,
    extra_info: Mapping[str, Any] | None,
    *,
    require_think_close: bool = True,
    pool: GradingPool | None = None,
) -> GradeResult:
    """Grade one response to a reasoning-gym row (``data_source`` ``reasoning_gym/...``) by its task's own scorer in
    ``pool`` (:mod:`smartthinker_verl.task_grading`: the answer extraction, the supported tasks and their guards)."""
    entry = task_grading.entry_of(ground_truth, extra_info)
    think_closed, text = split_answer(response or "", require_think_close)
    answer = task_grading.extract_answer(text) if text is not None else None
    if not answer:
        return GradeResult(score=0.0, correct=False, think_closed=think_closed, answer="")
    correct, timed_out = (pool or get_pool()).verify(answer, entry, grader=task_grading.score_in_worker)
    return GradeResult(float(correct), correct, think_closed, answer, timed_out)


def grade_batch(
    responses: Sequence[str],
    ground_truths: Sequence[str],
    *,
    require_think_close: bool = True,
    pool: GradingPool | None = None,
) -> list[GradeResult]:
    """Grade many responses in parallel (as many at once as the pool has processes). Order is preserved."""
    if len(responses) != len(ground_truths):
        raise ValueError(f"{len(responses)} responses but {len(ground_truths)} ground truths: pass one per response")
    if not responses:
        return []
    pool = pool or get_pool()
    with ThreadPoolExecutor(max_workers=pool.num_processes) as threads:
        return list(
            threads.map(
                lambda pair: grade(pair[0], pair[1], require_think_close=require_think_close, pool=pool),
                zip(responses, ground_truths, strict=True),
            )
        )


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: dict | None = None,
    require_think_close: bool = True,
    grade_timeout_s: float | None = None,
    grader_processes: int | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """verl's ``custom_reward_function`` contract, for reward managers other than ``smartthinker``.

    Use ``reward.custom_reward_function.path=pkg://smartthinker_verl.scoring``, ``name=compute_score``; the gate and
    the pool settings come as ``+reward.custom_reward_function.reward_kwargs.<key>=...`` (None: the defaults).
    Rows of data source ``reasoning_gym/...`` are graded by :func:`grade_task`.
    Returns :meth:`GradeResult.as_reward`.
    """
    options = ScorerOptions(
        require_think_close=require_think_close, grade_timeout_s=grade_timeout_s, grader_processes=grader_processes
    )
    pool = get_pool(*pool_settings(options))
    gate = options.require_think_close
    if task_grading.is_task_source(data_source):
        return grade_task(solution_str, ground_truth, extra_info, require_think_close=gate, pool=pool).as_reward()
    return grade(solution_str, ground_truth, require_think_close=gate, pool=pool).as_reward()
