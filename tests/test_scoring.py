"""The math scorer: `</think>` gate, math-verify on the final answer, from threads, with time limits."""

from __future__ import annotations

import threading

import pytest

from smartthinker_verl import scoring
from smartthinker_verl.errors import DataError
from smartthinker_verl.grading_pool import get_pool

# (response, ground truth, require_think_close, expected correct, expected think_closed)
CASES = [
    ("<think>2+2 is 4</think>The answer is \\boxed{4}.", "4", True, True, True),
    ("Okay, 2+2=4.\n</think>\n\nSo \\boxed{4}", "4", True, True, True),  # R1-Distill: <think> was in the prompt
    ("<think>2+2 is 4, so \\boxed{4}", "4", True, False, False),  # never closed (truncated): 0
    ("2+2 is 4, so \\boxed{4}", "4", False, True, False),  # gate off: models that do not think in tags
    ("</think>The answer is 27.", "27.0", True, True, True),  # unboxed, AMC-style float gold
    ("</think>\\boxed{035}", "35", True, True, True),
    ("</think>$\\boxed{\\frac{1}{2}}$", "0.5", True, True, True),
    ("</think>\\boxed{(1, 2)}", "(1,2)", True, True, True),
    ("</think>\\boxed{5}", "4", True, False, True),
    ("<think>maybe \\boxed{70}</think> final: \\boxed{71}", "71", True, True, True),  # the last answer counts
    ("<think>maybe \\boxed{71}</think> final: \\boxed{70}", "71", True, False, True),
    ("</think>so the answer is \\boxed{", "42", True, False, True),  # truncated mid-answer
    ("", "42", True, False, False),  # empty response
    ("", "42", False, False, False),
    ("</think>   ", "42", True, False, True),
]


@pytest.mark.parametrize("response,gold,gate,correct,closed", CASES)
def test_grading_rules(response, gold, gate, correct, closed):
    result = scoring.grade(response, gold, require_think_close=gate)
    assert result.correct is correct and result.score == (1.0 if correct else 0.0)
    assert result.think_closed is closed


def test_grading_from_many_threads_is_correct():
    """verl's reward loop grades in worker threads, where math-verify's signals fail: every answer must still count."""
    results: dict[int, bool] = {}

    def work(i: int) -> None:
        wrong = i % 3 == 0
        results[i] = scoring.grade(f"</think>\\boxed{{{i + 1 if wrong else i}}}", str(i)).correct

    threads = [threading.Thread(target=work, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {i: i % 3 != 0 for i in range(24)}


def test_grade_batch_keeps_order_and_checks_lengths():
    results = scoring.grade_batch(["</think>\\boxed{1}", "</think>\\boxed{3}", "no"], ["1", "2", "3"])
    assert [r.correct for r in results] == [True, False, False]
    with pytest.raises(ValueError, match="one per response"):
        scoring.grade_batch(["a"], ["1", "2"])


def test_unparseable_ground_truth_is_a_data_error_not_a_wrong_answer():
    with pytest.raises(ValueError, match="empty"):
        scoring.grade("</think>\\boxed{1}", "  ")
    with pytest.raises(DataError, match="fix the dataset row"):
        get_pool().verify("\\boxed{1}", "}{")


def test_compute_score_follows_verls_custom_reward_function_contract():
    out = scoring.compute_score("openai/gsm8k", "</think>\\boxed{72}", "72", {"index": 0})
    assert out == {"score": 1.0, "acc": 1.0, "think_closed": True, "grading_timed_out": False}
    # the gate off through verl's reward_kwargs, which may arrive as a string from a Hydra override
    out = scoring.compute_score("openai/gsm8k", "\\boxed{72}", "72", None, require_think_close="false")
    assert out["score"] == 1.0
    with pytest.raises(ValueError, match="use true or false"):
        scoring.compute_score("x", "\\boxed{1}", "1", None, require_think_close="maybe")


def test_compute_score_takes_the_pool_settings_from_reward_kwargs():
    """Under verl's other managers the settings travel as reward_kwargs (Hydra may hand them over as strings)."""
    out = scoring.compute_score("x", "</think>\\boxed{3}", "3", None, grade_timeout_s="20", grader_processes=1)
    assert out["score"] == 1.0
    assert get_pool(1, 20.0).time_limit_s == 20.0
    with pytest.raises(ValueError, match="grader_processes=0"):
        scoring.compute_score("x", "</think>\\boxed{3}", "3", None, grader_processes=0)
