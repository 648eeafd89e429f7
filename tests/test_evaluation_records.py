"""The generations JSONL: partial last lines from killed runs, malformed lines, grading prerequisites."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartthinker_verl.errors import DataError
from smartthinker_verl.evaluation.records import append_records, read_records, record_key, validate_for_grading


def _write(path: Path, records: list[dict], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def test_writer_appends_lines_that_read_back_in_order(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    append_records(path, [{"id": 1, "sample": 0}, {"id": 1, "sample": 1}])
    append_records(path, [{"id": 2, "sample": 0, "response": "ünïcode"}])
    assert [record_key(r) for r in read_records(path)] == [("1", 0), ("1", 1), ("2", 0)]
    assert read_records(path)[2]["response"] == "ünïcode"


def test_partial_last_line_is_skipped_when_reading_and_cut_off_when_repairing(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    _write(path, [{"id": 0}, {"id": 1}], tail='{"id": 2, "resp')
    assert [r["id"] for r in read_records(path)] == [0, 1]
    assert path.read_text().endswith('"resp')  # reading alone changes nothing
    assert [r["id"] for r in read_records(path, repair=True)] == [0, 1]
    assert path.read_text().endswith("\n") and '"resp' not in path.read_text()
    append_records(path, [{"id": 2}])  # appending after the repair gives a well-formed file
    assert [r["id"] for r in read_records(path)] == [0, 1, 2]


def test_complete_last_line_without_newline_is_kept_and_terminated(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    _write(path, [{"id": 0}], tail='{"id": 1}')
    assert [r["id"] for r in read_records(path, repair=True)] == [0, 1]
    assert path.read_text().endswith('{"id": 1}\n')


def test_malformed_line_in_the_middle_is_an_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    path.write_text('{"id": 0}\n{"id": 1,\n{"id": 2}\n')
    with pytest.raises(DataError, match=r"g.jsonl:2: not valid JSON"):
        read_records(path, repair=True)
    path.write_text('{"id": 0}\n[1, 2]\n')
    with pytest.raises(DataError, match="JSON object"):
        read_records(path)


def test_missing_file_names_the_command_that_writes_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="smartthinker-verl eval"):
        read_records(tmp_path / "nope.jsonl")


def test_grading_needs_response_tokens_or_a_tokenizer() -> None:
    validate_for_grading([{"id": 0, "ground_truth": "1", "response": "1", "response_tokens": 1}], "x.jsonl")
    with pytest.raises(DataError, match=r"lacks \['response_tokens'\].*--tokenizer"):
        validate_for_grading([{"id": 0, "ground_truth": "1", "response": "1"}], "x.jsonl")
    with pytest.raises(DataError, match=r"record 1 lacks \['ground_truth'"):
        validate_for_grading([{"id": 0, "response": "1"}], "x.jsonl")


def test_lines_without_sample_take_the_next_free_number_of_their_problem() -> None:
    from smartthinker_verl.evaluation.records import number_samples

    records = [
        {"id": "a"},
        {"id": "b"},
        {"id": "a", "sample": 0},
        {"id": "a"},
        {"id": 7},
        {"id": "b", "sample": 1},
    ]
    number_samples(records, "f.jsonl")
    assert [(r["id"], r["sample"]) for r in records] == [("a", 1), ("b", 0), ("a", 0), ("a", 2), (7, 0), ("b", 1)]
