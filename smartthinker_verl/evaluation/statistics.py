"""Evaluation metrics: unbiased pass@k, response lengths, truncation rate, standard errors, compression.

Definitions (docs/algorithm.md, section 7):

- ``pass@k`` of one problem with ``n`` samples of which ``c`` are correct: ``1 - C(n-c, k) / C(n, k)``, the
  probability that at least one of ``k`` samples drawn without replacement is correct; averaged over problems.
  ``pass@1`` is the mean correctness over a problem's samples, averaged over problems. Problems may have different
  sample counts; ``k`` larger than a problem's ``n`` is refused.
- ``mean_response_tokens``: mean over all samples (thinking included); ``..._correct`` / ``..._incorrect`` over the
  correct / incorrect samples only (``None`` when there are none).
- ``truncation_rate``: fraction of samples that stopped at the token limit (``finish_reason == "length"``).
- Standard errors are across problems: ``std(per-problem value, ddof=1) / sqrt(num_problems)``.
- ``compression = 1 - length / baseline length`` on the same benchmark.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from smartthinker_verl.errors import DataError

#: ``finish_reason`` of a sample cut off by the token limit (vLLM's and the hf backend's name).
TRUNCATED = "length"


@dataclass(frozen=True)
class GradedSample:
    """One graded response: what the metrics need of it."""

    problem_id: str
    sample: int
    correct: bool
    response_tokens: int
    finish_reason: str | None = None
    think_closed: bool | None = None
    timed_out: bool = False


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem: ``1 - C(n-c, k) / C(n, k)`` (exact integer binomials).

    Raises :class:`DataError` when ``k`` is not in ``1..n`` or ``c`` is not in ``0..n``.
    """
    if n < 1:
        raise DataError(f"pass@k needs at least one sample per problem, got n={n}")
    if not 0 <= c <= n:
        raise DataError(f"number of correct samples c={c} must lie in 0..n={n}")
    if not 1 <= k <= n:
        raise DataError(f"pass@{k} needs at least {k} samples per problem but a problem has n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def default_ks(min_samples: int) -> list[int]:
    """The k values reported when none are asked for: 1 and every power of two up to ``min_samples``."""
    ks, k = [1], 2
    while k <= min_samples:
        ks.append(k)
        k *= 2
    return ks


def standard_error(values: Sequence[float]) -> float | None:
    """Standard error of the mean, ``std(values, ddof=1) / sqrt(len(values))``; ``None`` for fewer than 2 values."""
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) >= 2 else None


def compression(length: float, baseline_length: float) -> float:
    """``1 - length / baseline_length``: the fraction of the baseline's tokens saved (negative when longer)."""
    if baseline_length <= 0:
        raise DataError(f"baseline length must be positive to compute compression, got {baseline_length}")
    return 1.0 - length / baseline_length


def mean_or_none(values: Sequence[float | None]) -> float | None:
    """The mean of ``values``; ``None`` when there are none or one of them is ``None`` (a missing number)."""
    return None if not values or any(v is None for v in values) else statistics.fmean(values)  # type: ignore[arg-type]


def group_by_problem(samples: Iterable[GradedSample]) -> dict[str, list[GradedSample]]:
    """Samples grouped by problem id (first-seen order); duplicate (problem, sample) pairs are refused."""
    groups: dict[str, list[GradedSample]] = defaultdict(list)
    seen: set[tuple[str, int]] = set()
    for s in samples:
        key = (s.problem_id, s.sample)
        if key in seen:
            raise DataError(
                f"problem {s.problem_id!r} has sample {s.sample} twice; remove the duplicate line from the "
                "generations file (or regenerate)"
            )
        seen.add(key)
        groups[s.problem_id].append(s)
    return dict(groups)


def compute_metrics(samples: Iterable[GradedSample], ks: Sequence[int] | None = None) -> dict[str, Any]:
    """Metrics of one benchmark (or of several pooled) from its graded samples.

    Args:
        samples: every graded sample; problems are identified by ``problem_id`` and may have different counts.
        ks: the k values of pass@k to report (``pass@1`` is always reported); ``None``: :func:`default_ks` of the
            smallest sample count.

    Returns a JSON-ready dict: ``pass@1``, ``pass@<k>`` for each k and their ``..._stderr``, ``mean_response_tokens``
    (and ``_stderr``, ``_correct``, ``_incorrect``), ``truncation_rate``, ``think_closed_rate``, ``num_problems``,
    ``num_samples``, ``samples_per_problem`` (mean) with ``_min`` / ``_max``, ``num_correct``, ``grading_timeouts``.
    """
    groups = group_by_problem(samples)
    if not groups:
        raise DataError("no samples to compute metrics on (the generations are empty)")
    counts = [len(g) for g in groups.values()]
    n_min = min(counts)
    ks = sorted({1, *(ks if ks is not None else default_ks(n_min))})
    if ks[0] < 1:
        raise DataError(f"k must be positive, got {ks[0]}")
    if ks[-1] > n_min:
        short = next(pid for pid, g in groups.items() if len(g) == n_min)
        raise DataError(
            f"pass@{ks[-1]} needs at least {ks[-1]} samples per problem, but problem {short!r} has only {n_min}; "
            f"ask for k <= {n_min} or generate more samples (eval --k {ks[-1]} resumes and adds them)"
        )

    metrics: dict[str, Any] = {}
    for k in ks:
        per_problem = [pass_at_k(len(g), sum(s.correct for s in g), k) for g in groups.values()]
        metrics[f"pass@{k}"] = sum(per_problem) / len(per_problem)
        metrics[f"pass@{k}_stderr"] = standard_error(per_problem)

    flat = [s for g in groups.values() for s in g]
    tokens = [s.response_tokens for s in flat]
    metrics["mean_response_tokens"] = mean_or_none(tokens)
    # Problems weigh by their samples in the pooled mean; the standard error uses per-problem means.
    metrics["mean_response_tokens_stderr"] = standard_error(
        [sum(s.response_tokens for s in g) / len(g) for g in groups.values()]
    )
    metrics["mean_response_tokens_correct"] = mean_or_none([s.response_tokens for s in flat if s.correct])
    metrics["mean_response_tokens_incorrect"] = mean_or_none([s.response_tokens for s in flat if not s.correct])
    with_reason = [s for s in flat if s.finish_reason is not None]
    metrics["truncation_rate"] = mean_or_none([float(s.finish_reason == TRUNCATED) for s in with_reason])
    with_think = [s for s in flat if s.think_closed is not None]
    metrics["think_closed_rate"] = mean_or_none([float(bool(s.think_closed)) for s in with_think])
    metrics["num_problems"] = len(groups)
    metrics["num_samples"] = len(flat)
    metrics["num_correct"] = sum(s.correct for s in flat)
    metrics["samples_per_problem"] = len(flat) / len(groups)
    metrics["samples_per_problem_min"] = n_min
    metrics["samples_per_problem_max"] = max(counts)
    metrics["grading_timeouts"] = sum(s.timed_out for s in flat)
    return metrics
