"""Ground truths the grader cannot parse: found with real math-verify, dropped by data_preprocess/, named in parquet."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_data_preprocess import FIXTURES, run_script  # noqa: E402

from smartthinker_verl.data import build_row, read_parquet, write_parquet  # noqa: E402
from smartthinker_verl.data.gradable import PLAIN_NUMBER, checked_mark, ground_truth_problems, unparseable  # noqa: E402
from smartthinker_verl.grading_pool import parse_gold, verify_answer  # noqa: E402

#: Odd ground truths math-verify cannot parse at all, and ordinary ones it can.
BAD = ("}", "\\$")
GOOD = ("12", "\\frac{3}{4}", "(1, 2)", "2\\sqrt{3}", "30^\\circ", "\\text{(B)}")


def test_unparseable_finds_what_the_scorer_cannot_read():
    truths = [*GOOD, BAD[0], None, "", " ", BAD[1], "12"]
    assert unparseable(truths, processes=2) == [6, 7, 8, 9, 10]


@pytest.mark.parametrize("truth", BAD)
def test_the_ground_truths_it_finds_are_the_ones_grading_refuses(truth):
    from smartthinker_verl.errors import DataError

    with pytest.raises(DataError, match="cannot be parsed"):
        verify_answer("\\boxed{1}", truth)


def test_the_plain_numbers_left_out_of_math_verify_do_parse():
    numbers = ["0", "7", "024", "-3", "+5", "1600", "3.14", "-0.5", "123456789"]
    assert all(PLAIN_NUMBER.fullmatch(number) for number in numbers)
    assert all(parse_gold(number) for number in numbers)
    assert not any(PLAIN_NUMBER.fullmatch(text) for text in ("1,000", "1.", ".5", "3x", "1e5", "5 "))


def test_a_file_data_preprocess_checked_is_not_read_again(tmp_path):
    rows = [build_row(data_source="s", problem="p", ground_truth=BAD[0], split="train", index=0)]
    marked = write_parquet(rows, tmp_path / "marked.parquet", metadata=checked_mark())
    unmarked = write_parquet(rows, tmp_path / "unmarked.parquet")
    assert ground_truth_problems([marked]) == []
    assert len(ground_truth_problems([marked, unmarked])) == 1


def test_ground_truth_problems_names_each_row_of_each_file(tmp_path):
    paths = []
    for name, truths in (("a", ["5", BAD[0]]), ("b", [BAD[1], "7", "8"])):
        rows = [
            build_row(data_source=f"src-{name}", problem="p", ground_truth=t, split="train", index=100 + i)
            for i, t in enumerate(truths)
        ]
        paths.append(write_parquet(rows, tmp_path / f"{name}.parquet"))
    problems = ground_truth_problems(paths, processes=1)
    assert len(problems) == 2
    assert f"{paths[0]} row 1 (data_source 'src-a', extra_info.index 101): ground truth '}}'" in problems[0]
    assert f"{paths[1]} row 0 (data_source 'src-b', extra_info.index 100)" in problems[1]
    assert all("cannot be parsed by math-verify" in line and "drop the row" in line for line in problems)


def test_data_preprocess_drops_and_names_rows_whose_answer_cannot_be_parsed(tmp_path):
    records = [json.loads(line) for line in (FIXTURES / "deepscaler_train.jsonl").read_text().splitlines()]
    records[1]["answer"] = BAD[0]
    source = tmp_path / "deepscaler.jsonl"
    source.write_text("".join(json.dumps(record) + "\n" for record in records))
    result = run_script("deepscaler", "--local_dataset_path", source, "--output", tmp_path / "train.parquet")
    assert result.returncode == 0, result.stderr
    assert "3 rows out, 2 dropped (answer math-verify cannot parse: 1, no answer: 1)" in result.stdout
    assert "extra_info.index 1): ground truth '}'" in result.stderr
    written = tmp_path / "train.parquet"
    assert ground_truth_problems([written]) == []  # marked as checked
    assert [row["reward_model"]["ground_truth"] for row in read_parquet(written)] == [
        "11",
        "25",
        "7",
    ]
