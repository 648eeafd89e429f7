"""reasoning-gym as a data source: rows built from the real library (0.1.25), graded by each task's own scorer
through the `smartthinker` reward manager, training and validation disjoint, and no model answer ever executed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_reward_manager import make_item, run_manager, trainer_config

from smartthinker_verl import scoring, task_grading
from smartthinker_verl.data import read_parquet
from smartthinker_verl.data.reasoning_gym_rows import parse_settings, task_splits
from smartthinker_verl.errors import ConfigError, DataError

reasoning_gym = pytest.importorskip("reasoning_gym", reason="reasoning-gym is in the cpu/test extras: make install")

CHAIN_SUM_LEVELS = {f"terms{k}": {"min_terms": k, "max_terms": k, "min_digits": 1, "max_digits": 1} for k in (2, 3)}
#: One small level per supported task (the knobs reasoning-gym 0.1.25 names them by).
TASK_LEVELS = {
    "chain_sum": {"min_terms": 3, "max_terms": 3, "min_digits": 1, "max_digits": 1},
    "basic_arithmetic": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1},
    "countdown": {"min_numbers": 3, "max_numbers": 3},
    "puzzle24": {},
}
REPO = Path(__file__).resolve().parents[1]


def planted_answer(marker: Path) -> str:
    """An answer that writes ``marker`` if any grader evaluates it as Python."""
    return f"__import__('pathlib').Path({str(marker)!r}).write_text('ran')"


def test_levels_become_data_sources_and_splits_share_no_question():
    train, val = task_splits("chain_sum", CHAIN_SUM_LEVELS, train=40, val=60, seed=0)
    assert len(train) == 80 and len(val) == 120
    train_questions = [row["extra_info"]["question"] for row in train]
    val_questions = [row["extra_info"]["question"] for row in val]
    assert not set(train_questions) & set(val_questions)
    assert len(set(train_questions)) == len(train_questions) and len(set(val_questions)) == len(val_questions)
    assert {row["data_source"] for row in val} == {"reasoning_gym/chain_sum/terms2", "reasoning_gym/chain_sum/terms3"}
    row = val[0]
    assert row["extra_info"]["level"] == "terms2" and row["extra_info"]["task"] == "chain_sum"
    assert json.loads(row["extra_info"]["task_metadata"])["num_terms"] == 2
    # the same items in the same order, whatever the training set's size
    assert task_splits("chain_sum", CHAIN_SUM_LEVELS, train=5, val=60, seed=0)[1] == val


def test_naive_seeds_would_overlap_which_is_why_both_splits_come_from_one_dataset():
    """The fact the builder guards against: reasoning-gym item i comes from Random(seed + i)."""
    config = CHAIN_SUM_LEVELS["terms3"]
    seed0 = {reasoning_gym.create_dataset("chain_sum", seed=0, size=200, **config)[i]["question"] for i in range(200)}
    seed1 = [reasoning_gym.create_dataset("chain_sum", seed=1, size=50, **config)[i]["question"] for i in range(50)]
    assert all(question in seed0 for question in seed1)


def test_a_level_too_small_for_the_rows_asked_is_a_clear_error():
    tiny = {"t1": {"min_terms": 1, "max_terms": 1, "min_digits": 1, "max_digits": 1}}  # 10 distinct questions
    with pytest.raises(DataError, match="fewer rows or a harder level"):
        task_splits("chain_sum", tiny, train=10, val=10)
    with pytest.raises(ConfigError, match="rejects level"):
        task_splits("chain_sum", {"bad": {"min_terms": 0}}, train=1, val=1)
    assert parse_settings("min_terms=2, name=x") == {"min_terms": 2, "name": "x"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_settings("min_terms")


@pytest.mark.parametrize("task", ["n_queens", "spiral_matrix", "binary_matrix", "string_insertion", "sudoku"])
def test_unsupported_tasks_are_refused_with_the_reason(task):
    with pytest.raises(ConfigError, match="eval" if task != "sudoku" else "not been checked"):
        task_splits(task, {"l": {}}, train=1, val=1)


def test_cli_writes_disjoint_parquet_files(tmp_path):
    command = [sys.executable, str(REPO / "data_preprocess/reasoning_gym_tasks.py"), "--output_dir", str(tmp_path)]
    command += ["--level", "terms2:min_terms=2,max_terms=2", "--level", "terms4:min_terms=4,max_terms=4"]
    result = subprocess.run([*command, "--train", "8", "--val", "16"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    train, val = read_parquet(tmp_path / "train.parquet"), read_parquet(tmp_path / "val.parquet")
    assert (len(train), len(val)) == (16, 32)
    assert not {r["extra_info"]["question"] for r in train} & {r["extra_info"]["question"] for r in val}
    assert val[-1]["prompt"][0]["content"].endswith("within \\boxed{}.")
    bad = subprocess.run([*command[:2], "--task", "n_queens", "--output_dir", str(tmp_path)], capture_output=True)
    assert bad.returncode == 2 and b"eval" in bad.stderr


def _item_for(tokenizer, row: dict, response: str):
    item = make_item(tokenizer, response, ground_truth=row["reward_model"]["ground_truth"])
    item.non_tensor_batch["data_source"] = np.array([row["data_source"]], dtype=object)
    item.non_tensor_batch["extra_info"] = np.array([dict(row["extra_info"])], dtype=object)
    return item


def test_reward_manager_grades_real_rows_with_the_tasks_scorer_and_full_credit_only(qwen_tokenizer):
    _, val = task_splits("chain_sum", CHAIN_SUM_LEVELS, train=0, val=4)
    row = val[0]
    answer = row["reward_model"]["ground_truth"]
    responses = [
        f"Step by step: {row['extra_info']['question']} {answer}. The answer is \\boxed{{{answer}}}.",
        f"\\boxed{{{answer}.0}}",  # the task's scorer accepts it (math-verify is not involved)
        f"\\boxed{{{answer}{answer}}}",  # reasoning-gym gives partial credit here; SmartThinker does not
        f"So, the final answer is {answer}.",  # no \\boxed{}: the last number is graded
        f"The answer is {answer}, no, {answer}1.",
        "I cannot say.",  # nothing to grade
    ]
    results = run_manager(trainer_config(False), qwen_tokenizer, [_item_for(qwen_tokenizer, row, r) for r in responses])
    assert [r["reward_score"] for r in results] == [1.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    assert reasoning_gym.create_dataset("chain_sum", **CHAIN_SUM_LEVELS["terms2"]).score_answer(
        answer + answer, {"answer": answer}
    ) == pytest.approx(0.5)
    # the </think> gate applies as to math rows
    (gated,) = run_manager(trainer_config(True), qwen_tokenizer, [_item_for(qwen_tokenizer, row, responses[0])])
    assert gated["reward_score"] == 0.0 and gated["reward_extra_info"]["think_closed"] is False


def test_verls_custom_function_route_dispatches_the_same_way():
    _, val = task_splits("chain_sum", CHAIN_SUM_LEVELS, train=0, val=1)
    row = val[0]
    answer = row["reward_model"]["ground_truth"]
    kwargs = {"ground_truth": answer, "extra_info": row["extra_info"], "require_think_close": False}
    assert scoring.compute_score(row["data_source"], f"\\boxed{{{answer}}}", **kwargs)["score"] == 1.0
    assert scoring.compute_score(row["data_source"], f"\\boxed{{{answer}9}}", **kwargs)["score"] == 0.0
    with pytest.raises(DataError, match="reasoning_gym_tasks.py"):
        scoring.compute_score(row["data_source"], "\\boxed{1}", answer, extra_info={}, require_think_close=False)


@pytest.mark.parametrize("task", sorted(task_grading.SUPPORTED_TASKS))
def test_no_supported_task_runs_a_planted_answer_and_right_answers_still_score_1(task, tmp_path):
    _, (row, *_) = task_splits(task, {"l": TASK_LEVELS[task]}, train=0, val=2)
    right = row["reward_model"]["ground_truth"]
    marker = tmp_path / "ran"
    for response in (f"\\boxed{{{planted_answer(marker)}}}", f"<answer>{planted_answer(marker)}</answer>"):
        result = scoring.grade_task(response, right, row["extra_info"], require_think_close=False)
        assert result.score == 0.0
        assert not marker.exists(), f"{task}'s grader executed the answer"
    assert scoring.grade_task(f"So \\boxed{{{right}}}", right, row["extra_info"], require_think_close=False).correct


def test_the_planted_answer_does_run_in_an_unguarded_scorer(tmp_path):
    """The test above can fail: countdown's own score_answer (sympy parse_expr) executes the same answer."""
    _, (row, *_) = task_splits("countdown", {"l": TASK_LEVELS["countdown"]}, train=0, val=1)
    marker = tmp_path / "ran"
    dataset = reasoning_gym.create_dataset("countdown", **TASK_LEVELS["countdown"])
    entry = {"answer": row["reward_model"]["ground_truth"], "metadata": json.loads(row["extra_info"]["task_metadata"])}
    dataset.score_answer(planted_answer(marker), entry)
    assert marker.read_text() == "ran"


def test_the_answer_is_the_last_boxed_else_the_last_number():
    assert task_grading.extract_answer("4 - 1 = 3.\n\nSo, the final answer is 3.") == "3"
    assert task_grading.extract_answer("0 - 4 gives x = -4.") == "-4"
    assert task_grading.extract_answer("9 - 2 = 7, not 5-3") == "3"  # a minus between digits is not a sign
    assert task_grading.extract_answer("\\boxed{-7} and then 9") == "-7"
    assert task_grading.extract_answer("no number") is None


def test_last_boxed_matches_braces():
    assert task_grading.last_boxed("\\boxed{1} then \\boxed{\\frac{1}{2}} end") == "\\frac{1}{2}"
    assert task_grading.last_boxed("cut off \\boxed{12") is None
    assert task_grading.last_boxed("no box") is None
