"""``res.json``: the metrics of an evaluation, per benchmark and overall.

Layout::

    {"model": ..., "label": ..., "settings": {...}, "ks": [1, 4],
     "pass@1": ..., "pass@4": ..., "mean_response_tokens": ..., ...   # overall (all problems pooled)
     "benchmarks": {"aime25": {"pass@1": ..., ...}, "math500": {...}},
     "benchmark_average": {"pass@1": ..., "mean_response_tokens": ...}}  # unweighted mean over benchmarks

With a single benchmark the top-level metrics are that benchmark's. The per-benchmark metrics are those of
:func:`smartthinker_verl.evaluation.statistics.compute_metrics`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smartthinker_verl.errors import ConfigError, DataError, MissingFileError
from smartthinker_verl.evaluation.statistics import compute_metrics, mean_or_none

#: Metrics averaged over benchmarks (unweighted, as the paper's "Average" column).
AVERAGED = ("pass@1", "mean_response_tokens", "mean_response_tokens_correct", "mean_response_tokens_incorrect")


def group_name(record: dict[str, Any], group_by: str, file_name: str) -> str:
    """The benchmark a record counts towards (``--group-by``).

    ``benchmark``: its ``benchmark`` field, else its ``data_source``, else its file's name; ``data_source``: its
    ``data_source`` (else the file's name); ``file``: the name of the file it came from.
    """
    fields = {"benchmark": ("benchmark", "data_source"), "data_source": ("data_source",), "file": ()}[group_by]
    return str(next((record[f] for f in fields if record.get(f)), file_name))


def summarize(
    groups: dict[str, Sequence[dict[str, Any]]], *, ks: Sequence[int] | None, meta: dict[str, Any]
) -> dict[str, Any]:
    """Build ``res.json`` from ``{benchmark: graded records}``; ``meta`` (model, settings) goes first."""
    if not groups:
        raise ConfigError("nothing to summarise: no generations were found")
    benchmarks = {name: compute_metrics(graded, ks) for name, graded in groups.items()}
    pooled = [{**g, "id": f"{name}/{g['id']}"} for name, graded in groups.items() for g in graded]
    overall = compute_metrics(pooled, ks)
    average = {key: mean_or_none([b.get(key) for b in benchmarks.values()]) for key in AVERAGED}
    ks_reported = sorted(int(k.split("@")[1]) for k in overall if k.startswith("pass@") and not k.endswith("stderr"))
    return {**meta, "ks": ks_reported, **overall, "benchmarks": benchmarks, "benchmark_average": average}


def load_results(path: str | Path) -> dict[str, Any]:
    """Read a ``res.json``; a file without ``benchmarks`` is refused with the command that makes one."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist; create it with `smartthinker-verl eval ... --out`")
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DataError(f"{path} is not valid JSON ({error}); pass a res.json of `smartthinker-verl eval`") from error
    if not isinstance(results, dict) or not isinstance(results.get("benchmarks"), dict):
        raise DataError(f"{path} has no 'benchmarks' metrics; pass a res.json written by `smartthinker-verl eval`")
    return results
