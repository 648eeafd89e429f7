"""The generations JSONL: one line per sample, append-only, so an interrupted run resumes where it stopped.

A line as ``eval`` writes it (grading needs only ``id``, ``ground_truth``, ``response`` and ``response_tokens`` or a
tokenizer; without ``sample``, a problem's lines are numbered in file order, see :func:`number_samples`)::

    {"id": 17, "sample": 3, "benchmark": "aime25", "data_source": "math-ai/aime25", "ground_truth": "70",
     "response": "...</think> ... \\boxed{70}", "response_tokens": 8123, "finish_reason": "stop",
     "prompt_tokens": 96}

A run killed mid-write leaves at most one partial last line; :func:`read_records` with ``repair=True`` cuts it off
(it is regenerated), while a malformed line anywhere else is an error, since silently dropping data would bias
the metrics.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from smartthinker_verl.data.sources import read_jsonl
from smartthinker_verl.errors import DataError, MissingFileError

logger = logging.getLogger(__name__)


def number_samples(records: list[dict[str, Any]], source: str) -> None:
    """Give every record of one group (``source``: its files, named in errors) a ``sample`` number, in place, so
    that ``(id, sample)`` identifies it.

    Files from elsewhere may carry only ``id``, ``ground_truth``, ``response`` and ``response_tokens``, with several
    lines per problem. A line without ``sample`` gets the next number not yet taken for its problem, in the order the
    lines are given (file order; files in the order passed). An explicit ``sample`` given twice for one problem is an
    error: that is a duplicate line, and counting it twice would bias pass@k.
    """
    taken: dict[str, set[int]] = defaultdict(set)
    for record in records:
        if record.get("sample") is not None:
            problem_id, sample = record_key(record)
            if sample in taken[problem_id]:
                raise DataError(
                    f"{source}: problem {problem_id!r} has sample {sample} twice; remove the duplicate line, or drop "
                    "the `sample` field everywhere to have lines numbered in file order"
                )
            taken[problem_id].add(sample)
    for record in records:
        if record.get("sample") is None:
            used = taken[str(record["id"])]
            record["sample"] = next(n for n in itertools.count() if n not in used)
            used.add(record["sample"])


def record_key(record: dict[str, Any]) -> tuple[str, int]:
    """The identity of a sample: ``(str(id), sample)``; ``sample`` defaults to 0 for files without it."""
    return str(record["id"]), int(record.get("sample", 0))


def _repair_tail(path: Path) -> None:
    """Make ``path`` end with a complete line: drop a partial last line, or add the missing newline."""
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    start = data.rfind(b"\n") + 1
    try:
        json.loads(data[start:])
    except json.JSONDecodeError:
        logger.warning("%s: dropping a partial last line (%d bytes) of an interrupted run", path, len(data) - start)
        os.truncate(path, start)
    else:
        with path.open("ab") as f:
            f.write(b"\n")


def read_records(path: str | Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """The records of a generations JSONL file (:func:`~smartthinker_verl.data.sources.read_jsonl`). ``repair``: cut a
    partial last line left by a killed run off the file itself; without it such a line is skipped with a warning."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist; pass a generations JSONL written by `smartthinker-verl eval`")
    if repair:
        _repair_tail(path)
    return read_jsonl(path, allow_partial_tail=True)


def validate_for_grading(records: Iterable[dict[str, Any]], path: str | Path) -> None:
    """Check that every record has what grading needs; raise :class:`DataError` naming the first gap."""
    for number, record in enumerate(records, start=1):
        missing = [f for f in ("id", "ground_truth", "response", "response_tokens") if record.get(f) is None]
        if missing:
            hint = " (or pass --tokenizer to count response tokens)" if "response_tokens" in missing else ""
            raise DataError(f"{path}: record {number} lacks {missing}{hint}")
        if not isinstance(record["response"], str):
            raise DataError(f"{path}: record {number}: response must be a string")


def append_records(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Append ``records`` to a JSONL file (made with its folder if missing), one line each; the lines are flushed
    and synced to disk when this returns, so that a killed run loses only what it had not handed over yet."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        file.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        file.flush()
        os.fsync(file.fileno())
