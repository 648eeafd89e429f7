"""Grading of reasoning-gym rows (``data_source`` ``reasoning_gym/<task>/<level>``) by the task's own scorer.

A response is graded like a math one (the ``</think>`` gate of :func:`smartthinker_verl.scoring.split_answer`, the
grading pool's time limit), then its answer (:func:`extract_answer`: the last ``\\boxed{}``, else the last number)
goes to the task's ``score_answer`` in a pool worker. reasoning-gym gives partial credit ("77" for 7 scores 0.5);
SmartThinker's accuracy reward is 1/0, so a response is correct only at score 1.0.

Model text never reaches Python's ``eval``: every supported task's scorer was read (reasoning-gym 0.1.25) and is
either pure string / ``Decimal`` comparison, or is given the answer only after :data:`ARITHMETIC_ANSWER` accepts it
(digits, ``+ - * / ( )`` and spaces: sympy's ``parse_expr``, which evaluates, sees nothing but integer arithmetic).
Tasks not listed in :data:`SUPPORTED_TASKS` are refused, those known to execute answers with the reason.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from smartthinker_verl.errors import ConfigError, DataError

SOURCE_PREFIX = "reasoning_gym/"
LAST_NUMBER = re.compile(r"(?<![\w.)])-?\d+(?:,\d{3})*(?:\.\d+)?")
#: No names, no ``**`` (a power tower would stall the grader): integer arithmetic only.
ARITHMETIC_ANSWER = re.compile(r"(?!.*\*\*)[0-9+\-*/() ]{1,200}")
#: task -> the check an answer must pass before its scorer sees it (None: the scorer cannot execute it).
SUPPORTED_TASKS: dict[str, re.Pattern[str] | None] = {
    "chain_sum": None,  # utils.compute_decimal_reward: Decimal() and substring comparison
    "basic_arithmetic": None,  # ProceduralDataset.score_answer: equality and substring comparison
    "countdown": ARITHMETIC_ANSWER,  # sympy parse_expr(answer), which evaluates Python
    "puzzle24": ARITHMETIC_ANSWER,  # sympy parse_expr(answer), which evaluates Python
}
#: Tasks whose score_answer calls eval() on the answer and for which no grammar is given here.
EXECUTING_TASKS = ("string_insertion", "spiral_matrix", "binary_matrix", "n_queens")


def is_task_source(data_source: Any) -> bool:
    """Whether a row's ``data_source`` routes it to this module."""
    return isinstance(data_source, str) and data_source.startswith(SOURCE_PREFIX)


def check_supported(task: str) -> None:
    """Raise :class:`ConfigError` naming the reason and the supported tasks unless ``task`` can be graded safely."""
    if task in SUPPORTED_TASKS:
        return
    reason = "calls eval() on" if task in EXECUTING_TASKS else "has not been checked for executing"
    raise ConfigError(
        f"reasoning-gym task {task!r} is refused: its score_answer {reason} the answer. Fix: use one of "
        f"{', '.join(SUPPORTED_TASKS)} (smartthinker_verl/task_grading.py lists why each is safe)"
    )


def extract_answer(text: str) -> str | None:
    """The content of the last ``\\boxed{}``; without one, the last number in ``text`` (as math-verify falls back
    to the last expression for math rows; small models often end "... so the answer is 3." unboxed)."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    numbers = LAST_NUMBER.findall(text)
    return numbers[-1] if numbers else None


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (braces matched), or None when there is no closed one."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 0, start + len("\\boxed{")
    for position in range(begin, len(text)):
        depth += {"{": 1, "}": -1}.get(text[position], 0)
        if depth < 0:
            return text[begin:position].strip()
    return None


@functools.lru_cache(maxsize=64)
def _dataset(task: str, config_json: str) -> Any:
    import reasoning_gym

    return reasoning_gym.create_dataset(task, **json.loads(config_json))


def score_in_worker(answer: str, entry: tuple[str, str, str, str]) -> tuple[bool, bool]:
    """``(correct, timed_out)`` in a grading-pool worker: ``entry`` is (task, config JSON, ground truth, metadata
    JSON) as :func:`entry_of` builds it; correct only at the task's full score."""
    task, config_json, answer_key, metadata_json = entry
    check_supported(task)
    grammar = SUPPORTED_TASKS[task]
    if grammar is not None and not grammar.fullmatch(answer):
        return False, False
    item = {"answer": answer_key, "metadata": json.loads(metadata_json)}
    return _dataset(task, config_json).score_answer(answer, item) == 1.0, False


def entry_of(ground_truth: str, extra_info: Mapping[str, Any] | None) -> tuple[str, str, str, str]:
    """What the scorer needs, from a row written by :mod:`smartthinker_verl.data.reasoning_gym`."""
    info = extra_info or {}
    if not isinstance(ground_truth, str) or not ground_truth.strip():
        raise DataError(f"ground truth {ground_truth!r} is empty or not a string; fix the dataset row")
    missing = [key for key in ("task", "task_config", "task_metadata") if not isinstance(info.get(key), str)]
    if missing:
        raise DataError(
            f"a reasoning_gym row lacks extra_info {missing}: write it with data_preprocess/reasoning_gym_tasks.py"
        )
    check_supported(info["task"])
    return info["task"], info["task_config"], ground_truth, info["task_metadata"]
