"""reasoning-gym tasks as verl rows: one ``data_source`` per difficulty level, training and validation disjoint.

reasoning-gym builds item ``i`` of a dataset from ``Random(seed + i)``, so datasets of nearby seeds are shifted
copies of each other, and easy levels repeat questions within one dataset. Both splits therefore come from ONE
dataset per level, read in order with repeated questions skipped: the first ``val`` distinct questions are the
validation set, the next ``train`` the training set (the validation set does not depend on ``train``).

Row (see :func:`smartthinker_verl.data.build_row`): ``data_source`` ``reasoning_gym/<task>/<level>`` (verl's
validation metrics come per data source, hence per level), ``ability`` ``"reasoning"``, the task's answer as
ground truth, and in ``extra_info`` what :mod:`smartthinker_verl.task_grading` rebuilds the scorer's entry from:
``task``, ``level``, ``task_config`` (the dataset's keyword arguments, JSON) and ``task_metadata`` (JSON).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from smartthinker_verl.data.rows import build_row
from smartthinker_verl.errors import ConfigError, DataError
from smartthinker_verl.task_grading import SOURCE_PREFIX, check_supported

#: Items read per wanted row before giving up on finding enough distinct questions at a level.
TRIES_PER_ROW = 50


def parse_settings(text: str) -> dict[str, Any]:
    """``"min_terms=2,max_terms=2"`` -> ``{"min_terms": 2, "max_terms": 2}`` (values read as JSON, else strings)."""
    settings: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{part!r} is not KEY=VALUE: write e.g. min_terms=2,max_terms=2")
        try:
            settings[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            settings[key.strip()] = value.strip()
    return settings


def task_splits(
    task: str, levels: Mapping[str, Mapping[str, Any]], *, train: int, val: int, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(train rows, validation rows)``: ``train`` and ``val`` rows per level; no question is in both splits (nor
    twice in one). ``levels`` maps a level's name to the dataset's keyword arguments at that level."""
    import reasoning_gym

    check_supported(task)
    if train < 0 or val < 0 or train + val < 1 or not levels:
        raise ConfigError(f"need at least one level and one row (got {len(levels)} levels, train={train}, val={val})")
    seen: set[str] = set()
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    for level, config in levels.items():
        size = TRIES_PER_ROW * (train + val)
        try:
            dataset = reasoning_gym.create_dataset(task, seed=seed, size=size, **config)
        except (AssertionError, TypeError, ValueError) as error:
            raise ConfigError(f"reasoning-gym task {task!r} rejects level {level} {dict(config)}: {error}") from error
        wanted = ["test"] * val + ["train"] * train
        for index in range(size):
            if not wanted:
                break
            item = dataset[index]
            if item["question"] not in seen:
                seen.add(item["question"])
                split = wanted.pop(0)
                row = build_row(
                    data_source=f"{SOURCE_PREFIX}{task}/{level}",
                    problem=item["question"],
                    ground_truth=str(item["answer"]),
                    split=split,
                    index=index,
                    ability="reasoning",
                    task=task,
                    level=level,
                    task_config=json.dumps(dict(config), sort_keys=True),
                    task_metadata=json.dumps(item["metadata"], sort_keys=True, default=str),
                )
                splits[split].append(row)
        if wanted:
            raise DataError(
                f"{task} level {level}: fewer than {train + val} distinct questions in {size} items. "
                "Fix: ask for fewer rows or a harder level"
            )
    return splits["train"], splits["test"]
