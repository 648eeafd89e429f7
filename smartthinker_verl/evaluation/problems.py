"""Benchmark parquet files (verl's RL rows, see :mod:`smartthinker_verl.data`) -> problems to sample.

A benchmark is named ``NAME`` when given as ``NAME=PATH``; otherwise after its file: ``aime25.parquet`` ->
``aime25``, and a file named after a split takes its folder's name (``data/aime25/test.parquet`` -> ``aime25``, the
layout ``data_preprocess/`` writes). A problem's id is its ``extra_info.index`` (the row position if one repeats).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from smartthinker_verl.data import read_parquet
from smartthinker_verl.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """One benchmark problem: the chat messages to send and the answer to grade against."""

    id: int | str
    benchmark: str
    data_source: str
    ground_truth: str
    messages: list[dict[str, str]] = field(hash=False, compare=False)


#: File names (without ``.parquet``) that name a split rather than a benchmark.
SPLIT_NAMES = frozenset({"test", "train", "validation", "val", "valid", "dev", "eval"})


def benchmark_name(path: str | Path) -> str:
    """The benchmark a parquet file holds: its name without ``.parquet``, or its folder's for a split's name."""
    path = Path(path)
    return path.parent.name if path.stem.lower() in SPLIT_NAMES and path.parent.name else path.stem


def parse_data_arg(value: str) -> tuple[str, Path]:
    """``NAME=PATH`` or ``PATH`` -> ``(benchmark name, path)``."""
    name, sep, rest = value.partition("=")
    if sep and name and "/" not in name and rest:
        return name, Path(rest)
    return benchmark_name(value), Path(value)


def load_problems(path: str | Path, *, name: str | None = None, limit: int | None = None) -> list[Problem]:
    """The problems of one benchmark parquet file (validated verl rows), the first ``limit`` only if given."""
    rows, name = read_parquet(path)[:limit], name or benchmark_name(path)
    ids = [row["extra_info"]["index"] for row in rows]  # integers (read_parquet validates the rows)
    if len(set(ids)) != len(ids):
        logger.warning("%s: extra_info.index is repeated; using row positions as problem ids", path)
        ids = list(range(len(rows)))
    return [
        Problem(
            id=pid,
            benchmark=name,
            data_source=row["data_source"],
            ground_truth=row["reward_model"]["ground_truth"],
            messages=[{"role": m["role"], "content": m["content"]} for m in row["prompt"]],
        )
        for pid, row in zip(ids, rows, strict=True)
    ]


def load_benchmarks(specs: Sequence[str | Path], *, limit: int | None = None) -> dict[str, list[Problem]]:
    """Benchmark name -> problems, for each ``PATH`` or ``NAME=PATH`` in order; a repeated name is refused."""
    benchmarks: dict[str, list[Problem]] = {}
    for spec in specs:
        name, path = parse_data_arg(str(spec))
        if name in benchmarks:
            raise ConfigError(
                f"two --data files are both benchmark {name!r}; name them explicitly: --data {name}=PATH other=PATH"
            )
        benchmarks[name] = load_problems(path, name=name, limit=limit)
        logger.info("benchmark %s: %d problems from %s", name, len(benchmarks[name]), path)
    return benchmarks
