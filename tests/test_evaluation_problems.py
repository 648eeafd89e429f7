"""Benchmark parquet files -> problems: benchmark names, problem ids, errors."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smartthinker_verl.data import build_row, write_parquet
from smartthinker_verl.evaluation.problems import benchmark_name, load_benchmarks, load_problems, parse_data_arg


def _bench(path: Path, n: int = 3, source: str = "math-ai/aime25") -> Path:
    rows = [
        build_row(data_source=source, problem=f"What is {i} + 1?", ground_truth=str(i + 1), split="test", index=i)
        for i in range(n)
    ]
    return write_parquet(rows, path)


def test_benchmarks_are_named_after_the_file_or_the_folder_of_a_split_file() -> None:
    assert benchmark_name("data/aime25/test.parquet") == "aime25"
    assert benchmark_name("/x/math500/validation.parquet") == "math500"
    assert benchmark_name("evals/amc23.parquet") == "amc23"
    assert benchmark_name("test.parquet") == "test"
    assert parse_data_arg("aime=data/aime25/test.parquet") == ("aime", Path("data/aime25/test.parquet"))
    assert parse_data_arg("data/a=b/test.parquet") == ("a=b", Path("data/a=b/test.parquet"))


def test_problems_carry_the_prompt_answer_and_index(tmp_path: Path) -> None:
    problems = load_problems(_bench(tmp_path / "aime25" / "test.parquet"))
    assert [p.id for p in problems] == [0, 1, 2]
    assert problems[1].benchmark == "aime25" and problems[1].data_source == "math-ai/aime25"
    assert problems[1].ground_truth == "2"
    assert problems[1].messages[0]["role"] == "user" and "\\boxed{}" in problems[1].messages[0]["content"]


def test_repeated_indices_fall_back_to_row_positions(tmp_path: Path) -> None:
    path = _bench(tmp_path / "b.parquet")
    table = pq.read_table(path).to_pylist()
    for row in table:
        row["extra_info"]["index"] = 7
    pq.write_table(pa.Table.from_pylist(table), path)
    assert [p.id for p in load_problems(path)] == [0, 1, 2]


def test_two_files_with_one_name_are_refused_with_the_fix(tmp_path: Path) -> None:
    a = _bench(tmp_path / "a" / "aime25" / "test.parquet")
    b = _bench(tmp_path / "b" / "aime25" / "test.parquet")
    with pytest.raises(ValueError, match="--data aime25=PATH"):
        load_benchmarks([a, b])
    named = load_benchmarks([f"first={a}", f"second={b}"], limit=2)
    assert list(named) == ["first", "second"] and len(named["second"]) == 2
    assert named["first"][0].benchmark == "first"


def test_missing_file_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="data_preprocess"):
        load_benchmarks([tmp_path / "nope.parquet"])
