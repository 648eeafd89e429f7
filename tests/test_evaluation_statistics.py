"""pass@k, lengths, truncation and standard errors of evaluation metrics, against direct computations."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest

from smartthinker_verl.errors import DataError
from smartthinker_verl.evaluation.statistics import (
    compression,
    compute_metrics,
    pass_at_k,
    standard_error,
)


def brute_force_pass_at_k(outcomes: list[bool], k: int) -> float:
    """Fraction of all k-subsets of the samples that contain at least one correct sample."""
    subsets = list(itertools.combinations(outcomes, k))
    return sum(any(s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_equals_the_fraction_of_k_subsets_with_a_correct_sample(n: int) -> None:
    for c in range(n + 1):
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(outcomes, k), abs=1e-12)


def test_pass_at_1_is_the_fraction_correct() -> None:
    assert pass_at_k(16, 5, 1) == pytest.approx(5 / 16)


def test_pass_at_k_is_exact_for_large_sample_counts() -> None:
    # 1 - C(60, 32) / C(64, 32), computed with exact integers.
    expected = 1 - math.comb(60, 32) / math.comb(64, 32)
    assert pass_at_k(64, 4, 32) == pytest.approx(expected, rel=1e-12)


def _graded(pid: str, sample: int, correct: bool, tokens: int, reason: str | None = None) -> dict:
    """A line of ``res.graded.jsonl``, what :func:`compute_metrics` reads."""
    return {"id": pid, "sample": sample, "correct": correct, "response_tokens": tokens, "finish_reason": reason}


def _samples(outcomes_per_problem: dict[str, list[bool]], tokens: dict[str, list[int]] | None = None):
    samples = []
    for pid, outcomes in outcomes_per_problem.items():
        for j, ok in enumerate(outcomes):
            n_tokens = tokens[pid][j] if tokens else 100
            samples.append(_graded(pid, j, ok, n_tokens, "stop"))
    return samples


def test_metrics_average_pass_at_k_over_problems_with_uneven_sample_counts() -> None:
    rng = random.Random(0)
    outcomes = {f"p{i}": [rng.random() < 0.4 for _ in range(rng.randint(4, 7))] for i in range(12)}
    metrics = compute_metrics(_samples(outcomes), ks=[1, 2, 4])
    for k in (1, 2, 4):
        per_problem = [brute_force_pass_at_k(o, k) for o in outcomes.values()]
        assert metrics[f"pass@{k}"] == pytest.approx(statistics.mean(per_problem))
        assert metrics[f"pass@{k}_stderr"] == pytest.approx(statistics.stdev(per_problem) / math.sqrt(12))
    # pass@1 weighs problems equally, not samples.
    assert metrics["pass@1"] == pytest.approx(statistics.mean(sum(o) / len(o) for o in outcomes.values()))
    counts = [len(o) for o in outcomes.values()]
    assert metrics["samples_per_problem_min"] == min(counts)
    assert metrics["samples_per_problem_max"] == max(counts)
    assert metrics["samples_per_problem"] == pytest.approx(statistics.mean(counts))
    assert metrics["num_problems"] == 12 and metrics["num_samples"] == sum(counts)


def test_k_larger_than_a_problems_sample_count_is_refused_naming_the_problem() -> None:
    samples = _samples({"a": [True] * 4, "short": [False] * 2})
    with pytest.raises(DataError, match=r"pass@4 .*'short' has only 2"):
        compute_metrics(samples, ks=[4])


def test_default_ks_are_powers_of_two_up_to_the_smallest_sample_count() -> None:
    def default_ks(counts: dict[str, list[bool]]) -> list[str]:
        metrics = compute_metrics(_samples(counts), ks=None)
        return [k for k in metrics if k.startswith("pass@") and not k.endswith("stderr")]

    assert default_ks({"a": [True]}) == ["pass@1"]
    assert default_ks({"a": [True] * 16}) == ["pass@1", "pass@2", "pass@4", "pass@8", "pass@16"]
    assert default_ks({"a": [True] * 6}) == ["pass@1", "pass@2", "pass@4"]
    assert default_ks({"a": [True] * 5, "b": [False] * 4}) == ["pass@1", "pass@2", "pass@4"]


def test_lengths_split_by_correctness_and_truncation_rate_count_samples() -> None:
    samples = [
        _graded("a", 0, True, 100, "stop"),
        _graded("a", 1, False, 300, "length"),
        _graded("b", 0, False, 500, "length"),
        _graded("b", 1, False, 200, "stop"),
    ]
    m = compute_metrics(samples, ks=[1, 2])
    assert m["mean_response_tokens"] == pytest.approx(275)
    assert m["mean_response_tokens_correct"] == pytest.approx(100)
    assert m["mean_response_tokens_incorrect"] == pytest.approx(1000 / 3)
    assert m["truncation_rate"] == pytest.approx(0.5)
    assert m["pass@1"] == pytest.approx(0.25)
    assert m["pass@2"] == pytest.approx(0.5)
    assert m["mean_response_tokens_stderr"] == pytest.approx(statistics.stdev([200, 350]) / math.sqrt(2))
    assert m["num_correct"] == 1


def test_lengths_of_an_empty_class_are_none_and_unknown_finish_reasons_are_left_out() -> None:
    m = compute_metrics([_graded("a", 0, False, 10, None), _graded("a", 1, False, 20, "stop")])
    assert m["mean_response_tokens_correct"] is None
    assert m["truncation_rate"] == 0.0
    assert compute_metrics([_graded("a", 0, False, 10)])["truncation_rate"] is None


def test_empty_input_is_refused() -> None:
    """(A sample given twice is refused before grading: tests/test_evaluation_grading.py.)"""
    with pytest.raises(DataError, match="no samples"):
        compute_metrics([])


def test_standard_error_and_compression() -> None:
    assert standard_error([1.0]) is None
    assert standard_error([0.0, 1.0, 1.0, 0.0]) == pytest.approx(statistics.stdev([0, 1, 1, 0]) / 2)
    assert compression(2645, 5420) == pytest.approx(1 - 2645 / 5420)
    assert compression(6000, 5000) < 0
    with pytest.raises(DataError, match="positive"):
        compression(10, 0)


def test_t_interval_half_width_uses_students_t_then_the_normal_quantile() -> None:
    from smartthinker_verl.evaluation.statistics import t_interval_half_width

    assert t_interval_half_width([1.0]) is None
    assert t_interval_half_width([1.0, 2.0, 3.0]) == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    many = [float(i % 2) for i in range(40)]  # 39 degrees of freedom: past the table
    assert t_interval_half_width(many) == pytest.approx(1.96 * statistics.stdev(many) / math.sqrt(40))
