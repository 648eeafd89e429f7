"""Ground truths the grader cannot read, found before training instead of at every response.

A ground truth that math-verify cannot parse (``}`` and ``\\$`` are two) makes every response to its prompt score
0 and count in ``grading_errors``. :func:`unparseable` parses ground truths exactly as the scorer does
(:func:`smartthinker_verl.grading_pool.parse_gold`), in worker processes whose main thread runs math-verify's time
limits; ``data_preprocess/`` drops such rows (naming them) and marks its files as checked (:func:`checked_mark`),
and :func:`ground_truth_problems` names them in other parquet files (``check-config`` / ``--dry-run``).

Speed: plain numbers (:data:`PLAIN_NUMBER`, most of DeepScaleR's answers) always parse and are not sent to
math-verify; each other distinct text is parsed once. A parse that fails is tried :data:`ATTEMPTS` times, so a
time limit hit on a loaded machine is not taken for an unparseable answer.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

#: Schema metadata key of the parquet files data_preprocess/ wrote after this check; its value: math-verify's version.
CHECKED_KEY = "smartthinker.ground_truths_parse_with_math_verify"
PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
ATTEMPTS = 3


def checked_mark() -> dict[str, str]:
    """The parquet schema metadata that says every ground truth of the file parses with this math-verify."""
    from importlib.metadata import version

    return {CHECKED_KEY: version("math-verify")}


def _parses(ground_truth: str) -> bool:
    from smartthinker_verl.grading_pool import parse_gold

    for _ in range(ATTEMPTS):
        try:
            parse_gold(ground_truth)
            return True
        except BaseException:  # DataError, or math-verify's timeout (a BaseException)
            continue
    return False


def unparseable(ground_truths: Sequence[Any], processes: int | None = None) -> list[int]:
    """Positions in ``ground_truths`` of those the grader cannot parse (missing and empty ones included).

    Texts other than plain numbers go, once each, to ``processes`` spawned workers (default: min(8, CPU count));
    like any spawned worker they import the caller's ``__main__``, so a script calls this under its main guard.
    """
    texts = {truth.strip() for truth in ground_truths if isinstance(truth, str) and truth.strip()}
    readable = {text for text in texts if PLAIN_NUMBER.fullmatch(text)}
    distinct = sorted(texts - readable)
    if distinct:
        processes = max(1, min(processes or min(8, os.cpu_count() or 1), len(distinct)))
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
            verdicts = pool.map(_parses, distinct, chunksize=max(1, len(distinct) // (processes * 8)))
            readable |= {text for text, ok in zip(distinct, verdicts, strict=True) if ok}
    return [i for i, truth in enumerate(ground_truths) if not (isinstance(truth, str) and truth.strip() in readable)]


def describe(row: dict[str, Any], where: str) -> str:
    """One line naming an unparseable row: where, its data_source, extra_info.index and ground truth."""
    extra = row.get("extra_info") if isinstance(row.get("extra_info"), dict) else {}
    truth = (row.get("reward_model") or {}).get("ground_truth")
    return (
        f"{where} (data_source {row.get('data_source')!r}, extra_info.index {extra.get('index')!r}): ground truth "
        f"{truth!r} cannot be parsed by math-verify, so every response to it would score 0; fix the answer in the "
        "source or drop the row (data_preprocess/ drops such rows)"
    )


def ground_truth_problems(parquet_paths: Iterable[str | Path], processes: int | None = None) -> list[str]:
    """One line per row of the parquet files whose ground truth the grader cannot parse (see :func:`describe`);
    files that data_preprocess/ marked as checked with the installed math-verify are not read."""
    import pandas as pd
    import pyarrow.parquet as pq

    from smartthinker_verl.task_grading import is_task_source

    mark = {key.encode(): value.encode() for key, value in checked_mark().items()}
    rows: list[tuple[str, dict[str, Any]]] = []
    for path in parquet_paths:
        if mark.items() <= (pq.read_schema(path).metadata or {}).items():
            continue
        table = pd.read_parquet(path, columns=["data_source", "reward_model", "extra_info"])
        rows += [
            (f"{path} row {position}", row)
            for position, row in enumerate(table.to_dict("records"))
            if not is_task_source(row.get("data_source"))  # graded by their task's scorer, not math-verify
        ]
    truths = [(row.get("reward_model") or {}).get("ground_truth") for _where, row in rows]
    return [describe(rows[position][1], rows[position][0]) for position in unparseable(truths, processes)]
