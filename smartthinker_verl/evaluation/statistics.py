"""Evaluation metrics: unbiased pass@k, response lengths, truncation rate, standard errors, compression.

Definitions (docs/algorithm.md, section 7; each ``res.json`` key: docs/evaluation.md, "Metrics"):

- ``pass@k`` of one problem with ``n`` samples of which ``c`` are correct: ``1 - C(n-c, k) / C(n, k)``, the
  probability that at least one of ``k`` samples drawn without replacement is correct; averaged over problems
  (which may have different ``n``; ``k > n`` is refused).
- Lengths are means over samples (thinking included); ``truncation_rate`` counts ``finish_reason == "length"``.
- Standard errors are across problems: ``std(per-problem value, ddof=1) / sqrt(num_problems)``.
- ``compression = 1 - length / baseline length`` on the same benchmark.

:func:`summarize` puts them together as ``res.json``.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from smartthinker_verl.errors import DataError

#: Metrics averaged over benchmarks (unweighted, as the paper's "Average" column).
AVERAGED = ("pass@1", "mean_response_tokens", "mean_response_tokens_correct", "mean_response_tokens_incorrect")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem: ``1 - C(n-c, k) / C(n, k)`` (exact integer binomials; ``C(n-c, k) = 0``
    when ``k > n-c``), for ``0 <= c <= n`` and ``1 <= k <= n`` (:func:`compute_metrics` refuses a larger k)."""
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def standard_error(values: Sequence[float]) -> float | None:
    """Standard error of the mean, ``std(values, ddof=1) / sqrt(len(values))``; ``None`` for fewer than 2 values."""
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) >= 2 else None


#: Student-t 0.975 quantiles for 1 to 30 degrees of freedom (1.96, the normal's, beyond).
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131)
T_975 += (2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_interval_half_width(values: Sequence[float]) -> float | None:
    """Half-width of the mean's 95% Student-t interval, ``t(0.975, n - 1) * standard_error``; None for fewer than 2
    values."""
    error = standard_error(values)
    if error is None:
        return None
    return error * (T_975[len(values) - 2] if len(values) - 1 <= len(T_975) else 1.96)


def compression(length: float, baseline_length: float) -> float:
    """``1 - length / baseline_length``: the fraction of the baseline's tokens saved (negative when longer)."""
    if baseline_length <= 0:
        raise DataError(f"baseline length must be positive to compute compression, got {baseline_length}")
    return 1.0 - length / baseline_length


def mean_or_none(values: Sequence[float | None]) -> float | None:
    """The mean of ``values``; ``None`` when there are none or one of them is ``None`` (a missing number)."""
    return None if not values or any(v is None for v in values) else statistics.fmean(values)  # type: ignore[arg-type]


def compute_metrics(graded: Iterable[dict[str, Any]], ks: Sequence[int] | None = None) -> dict[str, Any]:
    """Metrics of one benchmark (or of several pooled) from its graded samples, the lines of ``res.graded.jsonl``,
    one per (``id``, ``sample``): problems may have different sample counts. ``ks``: the k of pass@k besides 1;
    ``None``: 1 and every power of two up to the smallest sample count."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in graded:
        groups[str(s["id"])].append(s)
    if not groups:
        raise DataError("no samples to compute metrics on (the generations are empty)")
    counts = [len(g) for g in groups.values()]
    n_min = min(counts)
    if ks is None:
        ks = [2**i for i in range(n_min.bit_length())]
    ks = sorted({1, *ks})
    if ks[-1] > n_min:
        short = next(pid for pid, g in groups.items() if len(g) == n_min)
        raise DataError(
            f"pass@{ks[-1]} needs at least {ks[-1]} samples per problem, but problem {short!r} has only {n_min}; "
            f"ask for k <= {n_min} or generate more samples (eval --k {ks[-1]} resumes and adds them)"
        )

    metrics: dict[str, Any] = {}
    for k in ks:
        per_problem = [pass_at_k(len(g), sum(bool(s["correct"]) for s in g), k) for g in groups.values()]
        metrics[f"pass@{k}"] = sum(per_problem) / len(per_problem)
        metrics[f"pass@{k}_stderr"] = standard_error(per_problem)

    def tokens(samples: Iterable[dict[str, Any]]) -> list[int]:
        return [int(s["response_tokens"]) for s in samples]

    flat = [s for g in groups.values() for s in g]
    reasons = [s["finish_reason"] for s in flat if s.get("finish_reason") is not None]
    closed = [s["think_closed"] for s in flat if s.get("think_closed") is not None]
    return metrics | {
        "mean_response_tokens": mean_or_none(tokens(flat)),
        # Problems weigh by their samples in the pooled mean; the standard error uses per-problem means.
        "mean_response_tokens_stderr": standard_error([statistics.fmean(tokens(g)) for g in groups.values()]),
        "mean_response_tokens_correct": mean_or_none(tokens(s for s in flat if s["correct"])),
        "mean_response_tokens_incorrect": mean_or_none(tokens(s for s in flat if not s["correct"])),
        "truncation_rate": mean_or_none([float(r == "length") for r in reasons]),
        "think_closed_rate": mean_or_none([float(bool(c)) for c in closed]),
        "num_problems": len(groups),
        "num_samples": len(flat),
        "num_correct": sum(bool(s["correct"]) for s in flat),
        "samples_per_problem": len(flat) / len(groups),
        "samples_per_problem_min": n_min,
        "samples_per_problem_max": max(counts),
        "grading_timeouts": sum(bool(s.get("timed_out")) for s in flat),
    }


def summarize(
    groups: dict[str, Sequence[dict[str, Any]]], *, ks: Sequence[int] | None, meta: dict[str, Any]
) -> dict[str, Any]:
    """``res.json`` from ``{benchmark: graded records}``: ``meta`` (model, settings) first, then the metrics of
    :func:`compute_metrics` overall (all problems pooled; with a single benchmark, that benchmark's), per benchmark
    and averaged over benchmarks (unweighted)::

        {"model": ..., "label": ..., "settings": {...}, "ks": [1, 4],
         "pass@1": ..., "pass@4": ..., "mean_response_tokens": ..., ...
         "benchmarks": {"aime25": {"pass@1": ..., ...}, "math500": {...}},
         "benchmark_average": {"pass@1": ..., "mean_response_tokens": ...}}
    """
    benchmarks = {name: compute_metrics(graded, ks) for name, graded in groups.items()}
    pooled = [{**g, "id": f"{name}/{g['id']}"} for name, graded in groups.items() for g in graded]
    overall = compute_metrics(pooled, ks)
    average = {key: mean_or_none([b.get(key) for b in benchmarks.values()]) for key in AVERAGED}
    ks_reported = sorted(int(k.split("@")[1]) for k in overall if k.startswith("pass@") and not k.endswith("stderr"))
    return {**meta, "ks": ks_reported, **overall, "benchmarks": benchmarks, "benchmark_average": average}
