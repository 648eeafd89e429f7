"""Ground truths the grader cannot read, found before training instead of at every response.

A ground truth that math-verify cannot parse (``}`` and ``\\$`` are two) makes every response to its prompt score
0 and count in ``grading_errors``. :func:`unparseable` parses each distinct ground truth exactly as the scorer does
(:func:`smartthinker_verl.grading_pool.parse_gold`), in worker processes whose main thread runs math-verify's time
limits; ``data_preprocess/`` drops such rows (naming them) and :func:`ground_truth_problems` names them in written
parquet files (``check-config`` / ``--dry-run``).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

FIX = "fix the answer in the source or drop the row (data_preprocess/ drops such rows)"


def _parses(ground_truth: Any) -> bool:
    from smartthinker_verl.grading_pool import parse_gold

    if not isinstance(ground_truth, str) or not ground_truth.strip():
        return False
    try:
        parse_gold(ground_truth.strip())
    except BaseException:  # DataError, or math-verify's timeout (a BaseException)
        return False
    return True


def unparseable(ground_truths: Sequence[Any], processes: int | None = None) -> list[int]:
    """Positions in ``ground_truths`` of those the grader cannot parse (missing and empty ones included).

    Each distinct text is parsed once, in ``processes`` spawned worker processes (default: min(8, CPU count)).
    """
    distinct = sorted({truth for truth in ground_truths if isinstance(truth, str) and truth.strip()})
    processes = max(1, min(processes or min(8, os.cpu_count() or 1), len(distinct) or 1))
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        chunk = max(1, len(distinct) // (processes * 8))
        readable = {
            truth for truth, ok in zip(distinct, pool.map(_parses, distinct, chunksize=chunk), strict=True) if ok
        }
    return [
        position for position, truth in enumerate(ground_truths) if not (isinstance(truth, str) and truth in readable)
    ]


def describe(row: dict[str, Any], where: str) -> str:
    """One line naming an unparseable row: where, its data_source, extra_info.index and ground truth."""
    extra = row.get("extra_info") if isinstance(row.get("extra_info"), dict) else {}
    truth = (row.get("reward_model") or {}).get("ground_truth")
    return (
        f"{where} (data_source {row.get('data_source')!r}, extra_info.index {extra.get('index')!r}): ground truth "
        f"{truth!r} cannot be parsed by math-verify, so every response to it would score 0; {FIX}"
    )


def ground_truth_problems(parquet_paths: Iterable[str | Path], processes: int | None = None) -> list[str]:
    """One line per row of the parquet files whose ground truth the grader cannot parse (see :func:`describe`)."""
    import pandas as pd

    rows: list[tuple[str, dict[str, Any]]] = []
    for path in parquet_paths:
        table = pd.read_parquet(path, columns=["data_source", "reward_model", "extra_info"])
        rows += [(f"{path} row {position}", row) for position, row in enumerate(table.to_dict("records"))]
    truths = [(row.get("reward_model") or {}).get("ground_truth") for _where, row in rows]
    return [describe(rows[position][1], rows[position][0]) for position in unparseable(truths, processes)]
