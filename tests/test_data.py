"""smartthinker_verl.data: row schema, answer normalisation, drop counting, local loading, parquet writing."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smartthinker_verl import data
from smartthinker_verl.data import (
    PROMPT_SUFFIX,
    DatasetSpec,
    build_row,
    convert_records,
    extract_gsm8k_answer,
    load_records,
    normalize_answer,
    read_parquet,
    validate_row,
    write_parquet,
)
from smartthinker_verl.data.preprocess import DROP_NO_ANSWER, DROP_NO_PROBLEM, DROP_UNUSABLE_ANSWER
from smartthinker_verl.errors import ConfigError, DataError, MissingFileError

FIXTURES = Path(__file__).parent / "fixtures" / "datasets"

SPEC = DatasetSpec(
    name="toy",
    hub_id="example/toy-math",
    split="test",
    output_split="test",
    problem_key="problem",
    answer_key="answer",
    solution_key="solution",
    metadata_keys=("id", "level"),
)


def _row(**overrides):
    row = build_row(data_source="example/toy-math", problem="1+1?", ground_truth="2", split="test", index=0)
    row.update(overrides)
    return row


# --------------------------------------------------------------------------------------------------- answers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (27.0, "27"),
        (-3.0, "-3"),
        (2.5, "2.5"),
        (0.1, "0.1"),
        (1e20, "100000000000000000000"),
        (27, "27"),
        ("  \\frac{3}{4} ", "\\frac{3}{4}"),
        ("024", "024"),
        ("27.0", "27.0"),  # strings are only stripped: math-verify compares 27.0 and 27 itself
    ],
)
def test_normalize_answer_turns_numbers_and_strings_into_ground_truth_text(value, expected):
    assert normalize_answer(value) == expected


def test_normalize_answer_accepts_numpy_scalars():
    np = pytest.importorskip("numpy")
    assert normalize_answer(np.float64(27.0)) == "27"
    assert normalize_answer(np.int64(40)) == "40"


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf, "", "   \n", True, False, [1], {"a": 1}])
def test_normalize_answer_rejects_values_that_are_not_an_answer(value):
    assert normalize_answer(value) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72", "72"),
        ("It sells 1,600 pens.\n#### 1,600", "1600"),
        ("#### -3", "-3"),
        ("first #### 1\nthen #### 2", "2"),
        ("#### 0.5 ", "0.5"),
    ],
)
def test_extract_gsm8k_answer_takes_the_number_after_the_last_marker(text, expected):
    assert extract_gsm8k_answer(text) == expected


@pytest.mark.parametrize("text", ["no marker here: 72", "####   ", None, 72])
def test_extract_gsm8k_answer_returns_none_without_a_final_answer(text):
    assert extract_gsm8k_answer(text) is None


# ------------------------------------------------------------------------------------------------------- rows


def test_build_row_uses_the_papers_prompt_and_keeps_the_question():
    row = build_row(data_source="s", problem="  What is 2+2?\n", ground_truth="4", split="train", index=3, id="7")
    assert row["prompt"] == [{"role": "user", "content": "What is 2+2?\n" + PROMPT_SUFFIX}]
    assert row["reward_model"] == {"style": "rule", "ground_truth": "4"}
    assert row["extra_info"] == {"split": "train", "index": 3, "question": "  What is 2+2?\n", "id": "7"}
    assert PROMPT_SUFFIX == "Please reason step by step, and put your final answer within \\boxed{}."


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data_source": ""}, "data_source"),
        ({"prompt": "a string"}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"reward_model": {"style": "rule", "ground_truth": 27.0}}, "ground_truth must be a string"),
        ({"reward_model": {"style": "rule", "ground_truth": "  "}}, "ground_truth is empty"),
        ({"extra_info": {"index": 0}}, "extra_info"),
    ],
)
def test_validate_row_names_the_broken_field(change, message):
    with pytest.raises(DataError, match=message):
        validate_row(_row(**change), position=5)


def test_validate_row_reports_missing_columns():
    row = _row()
    del row["ability"]
    with pytest.raises(DataError, match=r"missing column\(s\) \['ability'\]"):
        validate_row(row)


# -------------------------------------------------------------------------------------------- drop counting


def test_convert_records_drops_and_counts_rows_without_a_problem_or_usable_answer():
    records = [
        {"problem": "ok", "answer": "1", "solution": "worked"},
        {"problem": "no answer", "answer": None},
        {"problem": "blank answer", "answer": "  "},
        {"problem": "nan answer", "answer": math.nan},
        {"problem": "missing answer key"},
        {"problem": "", "answer": "3"},
        {"answer": "3"},
        {"problem": "list answer", "answer": [1, 2]},
        {"problem": "float answer", "answer": 27.0, "id": 12, "level": 5},
    ]
    rows, dropped = convert_records(SPEC, records)
    assert len(rows) == 2
    assert dropped == {DROP_NO_ANSWER: 4, DROP_NO_PROBLEM: 2, DROP_UNUSABLE_ANSWER: 1}
    assert [row["extra_info"]["index"] for row in rows] == [0, 8]  # position in the source
    assert [row["reward_model"]["ground_truth"] for row in rows] == ["1", "27"]
    assert rows[1]["extra_info"] == {
        "split": "test",
        "index": 8,
        "question": "float answer",
        "id": "12",
        "level": "5",
    }


def test_convert_records_keeps_a_worked_solution_only_when_there_is_one():
    rows = convert_records(
        SPEC, [{"problem": "a", "answer": "1", "solution": " s "}, {"problem": "b", "answer": "2", "solution": ""}]
    )[0]
    assert rows[0]["extra_info"]["solution"] == "s"
    assert "solution" not in rows[1]["extra_info"]


# ------------------------------------------------------------------------------------------------- loading


def test_load_records_reads_jsonl_json_and_parquet_copies_alike(tmp_path):
    from_jsonl = load_records(SPEC, FIXTURES / "deepscaler_train.jsonl")
    (tmp_path / "records.json").write_text(json.dumps(from_jsonl))
    columns = {key: [record[key] for record in from_jsonl] for key in from_jsonl[0]}
    (tmp_path / "columns.json").write_text(json.dumps(columns))
    pq.write_table(pa.Table.from_pylist(from_jsonl), tmp_path / "records.parquet")
    assert len(from_jsonl) == 5
    assert load_records(SPEC, tmp_path / "records.json") == from_jsonl
    assert load_records(SPEC, tmp_path / "columns.json") == from_jsonl
    assert load_records(SPEC, tmp_path / "records.parquet") == from_jsonl


def test_load_records_keeps_amc_float_answers_as_floats():
    records = load_records(dataclasses.replace(SPEC, problem_key="question"), FIXTURES / "amc23_test.json")
    assert [record["answer"] for record in records][:3] == [27.0, 2.5, 8.0]
    assert isinstance(records[0]["answer"], float)


def test_load_records_picks_the_split_files_of_a_folder_in_name_order(tmp_path):
    folder = tmp_path / "snapshot" / "data"
    folder.mkdir(parents=True)
    for name, problem in [("test-00001-of-00002.parquet", "b"), ("test-00000-of-00002.parquet", "a")]:
        pq.write_table(pa.Table.from_pylist([{"problem": problem, "answer": "1"}]), folder / name)
    pq.write_table(pa.Table.from_pylist([{"problem": "train", "answer": "1"}]), folder / "train-00000.parquet")
    records = load_records(SPEC, tmp_path / "snapshot")
    assert [record["problem"] for record in records] == ["a", "b"]


def test_load_records_names_missing_columns_and_the_expected_layout(tmp_path):
    path = tmp_path / "wrong.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "1"}) + "\n")
    expected = r"no column\(s\) \['problem'\].*columns found: \['answer', 'question'\]"
    with pytest.raises(DataError, match=expected):
        load_records(SPEC, path)


@pytest.mark.parametrize(
    ("name", "content", "error", "message"),
    [
        ("data.csv", "problem,answer\n", ConfigError, "unsupported file type '.csv'"),
        ("bad.jsonl", '{"problem": "a", "answer": "1"}\n{not json\n', DataError, r"bad.jsonl:2: not valid JSON"),
        ("truncated.jsonl", '{"problem": "a", "answer": "1"}\n{"problem": "b', DataError, "truncated.jsonl:2"),
        ("scalar.jsonl", "3\n", DataError, "expected a JSON object per line"),
        ("bad.json", '{"problem": "a"', DataError, "not valid JSON"),
        ("ragged.json", '{"problem": ["a", "b"], "answer": ["1"]}', DataError, "equal-length columns"),
        ("empty.jsonl", "\n", DataError, "no records"),
    ],
)
def test_load_records_rejects_unreadable_local_files_with_the_fix(tmp_path, name, content, error, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(error, match=message):
        load_records(SPEC, path)


def test_load_records_reports_a_missing_local_path(tmp_path):
    with pytest.raises(MissingFileError, match="does not exist"):
        load_records(SPEC, tmp_path / "nope.jsonl")


def test_load_records_lists_the_files_of_a_folder_without_the_split(tmp_path):
    for name in ("a.jsonl", "b.jsonl"):
        (tmp_path / name).write_text(json.dumps({"problem": "p", "answer": "1"}) + "\n")
    with pytest.raises(MissingFileError, match=r"no .* file named test\* \(found: a.jsonl, b.jsonl\)"):
        load_records(SPEC, tmp_path)


# ------------------------------------------------------------------------------------------------- parquet


def test_write_parquet_round_trips_rows_with_different_extra_info_keys(tmp_path):
    rows = convert_records(
        SPEC,
        [
            {"problem": "a", "answer": "1", "solution": "s", "id": 1},
            {"problem": "b", "answer": "2", "level": 3},
            {"problem": "c", "answer": 4.0},
        ],
    )[0]
    path = write_parquet(rows, tmp_path / "nested" / "test.parquet")
    back = read_parquet(path)
    extra_type = pq.read_schema(path).field("extra_info").type
    assert [extra_type.field(i).name for i in range(extra_type.num_fields)] == [
        "split",
        "index",
        "question",
        "solution",
        "id",
        "level",
    ]
    assert back[1]["extra_info"] == {
        "split": "test",
        "index": 1,
        "question": "b",
        "solution": None,
        "id": None,
        "level": "3",
    }
    assert [row["reward_model"]["ground_truth"] for row in back] == ["1", "2", "4"]
    assert not list(tmp_path.rglob(".*.partial"))


def test_write_parquet_is_byte_identical_for_the_same_rows(tmp_path):
    rows, _ = convert_records(SPEC, load_records(SPEC, FIXTURES / "deepscaler_train.jsonl"))
    first = write_parquet(rows, tmp_path / "a.parquet").read_bytes()
    second = write_parquet(rows, tmp_path / "b.parquet").read_bytes()
    assert first == second


def test_write_parquet_refuses_no_rows_and_invalid_rows(tmp_path):
    with pytest.raises(DataError, match="no rows"):
        write_parquet([], tmp_path / "x.parquet")
    with pytest.raises(DataError, match="data_source"):
        write_parquet([_row(data_source=" ")], tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [
                {
                    "data_source": "s",
                    "prompt": "text",
                    "ability": "math",
                    "reward_model": {"style": "rule", "ground_truth": "1"},
                    "extra_info": {"split": "test", "index": 0},
                }
            ],
            "prompt must be a non-empty list",
        ),
        (
            [
                {
                    "data_source": "s",
                    "prompt": [{"role": "user", "content": "q"}],
                    "ability": "math",
                    "reward_model": {"style": "rule", "ground_truth": 27.0},
                    "extra_info": {"split": "test", "index": 0},
                }
            ],
            "ground_truth",
        ),
        (
            [
                {
                    "data_source": "s",
                    "prompt": [{"role": "user", "content": "q"}],
                    "ability": "math",
                    "reward_model": {"style": "rule", "ground_truth": "1"},
                    "extra_info": {"split": "test", "index": "0"},
                }
            ],
            "an integer .index.",
        ),
        ([{"data_source": "s"}], "missing column"),
    ],
)
def test_read_parquet_rejects_files_verl_cannot_use(tmp_path, rows, message):
    path = tmp_path / "foreign.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(DataError, match=message):
        read_parquet(path)


def test_read_parquet_of_a_missing_file_says_how_to_create_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_preprocess"):
        read_parquet(tmp_path / "missing.parquet")


def test_rows_take_the_specs_hub_id_as_data_source():
    (row,), _ = convert_records(SPEC, [{"problem": "a", "answer": "1"}])
    assert row["data_source"] == "example/toy-math"
    assert data.DatasetSpec.__dataclass_params__.frozen
