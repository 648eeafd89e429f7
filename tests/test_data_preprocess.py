"""data_preprocess/*.py run as users run them (subprocess) on fixtures in each dataset's real layout.

The fixtures under tests/fixtures/datasets/ are small hand-made files with the hub datasets' own columns and value
types (the layouts smartthinker_verl/data/sources.py lists). The written files are read back with pyarrow and with
verl's own RL dataset class and the real Qwen tokenizer. The hub path runs for real with the Hugging Face libraries in
offline mode (this machine cannot reach the hub), which checks the error a user without network gets.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from smartthinker_verl.data import PROMPT_SUFFIX, read_parquet

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "datasets"


@dataclass(frozen=True)
class Case:
    script: str
    fixture: str
    rows_in: int
    output_split: str
    data_source: str
    ground_truths: tuple[str, ...]
    dropped: str  # the summary's "N dropped (...)" part
    extra_keys: tuple[str, ...]  # extra_info keys besides split, index, question
    solution_of_first: str | None


CASES = [
    Case(
        "deepscaler",
        "deepscaler_train.jsonl",
        5,
        "train",
        "agentica-org/DeepScaleR-Preview-Dataset",
        ("11", "\\frac{3}{4}", "25", "7"),
        "1 dropped (no answer: 1)",
        ("solution",),
        "Multiplication first: $4 \\times 2 = 8$, so $3 + 8 = 11$.",
    ),
    Case(
        "aime24",
        "aime24_train.jsonl",
        3,
        "test",
        "HuggingFaceH4/aime_2024",
        ("024", "99", "38"),
        "0 dropped",
        ("solution", "id", "url", "year"),
        "$2^{10} = 1024$, which leaves remainder $\\boxed{024}$, that is $24$.",
    ),
    Case("aime25", "aime25_test.jsonl", 3, "test", "math-ai/aime25", ("16", "25", "16"), "0 dropped", ("id",), None),
    Case(
        "amc23",
        "amc23_test.json",
        4,
        "test",
        "math-ai/amc23",
        ("27", "2.5", "8"),
        "1 dropped (no answer: 1)",
        ("id", "url"),
        None,
    ),
    Case(
        "math500",
        "math500_test.jsonl",
        3,
        "test",
        "HuggingFaceH4/MATH-500",
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "26000", "\\sqrt{2}"),
        "0 dropped",
        ("solution", "subject", "level", "unique_id"),
        "We have $r = \\sqrt{0^2 + 3^2} = 3.$ The point lies on the positive $y$-axis, so $\\theta = \\frac{\\pi}{2}.$ "
        "The answer is $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}.$",
    ),
    Case(
        "gsm8k",
        "gsm8k_test.jsonl",
        3,
        "test",
        "openai/gsm8k",
        ("72", "1600"),
        "1 dropped (unusable answer: 1)",
        ("solution",),
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in "
        "April and May.\n#### 72",
    ),
]
IDS = [case.script for case in CASES]


def run_script(name: str, *args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None):
    """Run ``python data_preprocess/<name>.py ARGS`` and return the completed process."""
    return subprocess.run(
        [sys.executable, str(ROOT / "data_preprocess" / f"{name}.py"), *map(str, args)],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """Every script run once on its fixture with ``--output_dir``: script name -> (written file, stdout)."""
    out = tmp_path_factory.mktemp("preprocessed")
    results = {}
    for case in CASES:
        result = run_script(
            case.script, "--local_dataset_path", FIXTURES / case.fixture, "--output_dir", out / case.script
        )
        assert result.returncode == 0, result.stderr
        results[case.script] = (out / case.script / f"{case.output_split}.parquet", result.stdout)
    return results


@pytest.fixture(scope="module")
def written(runs) -> dict[str, Path]:
    """Script name -> the parquet file it wrote from its fixture."""
    return {name: path for name, (path, _) in runs.items()}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_script_writes_verl_rows_with_the_papers_prompt(case, written):
    rows = read_parquet(written[case.script])
    assert [row["reward_model"]["ground_truth"] for row in rows] == list(case.ground_truths)
    for row in rows:
        assert row["data_source"] == case.data_source
        assert row["ability"] == "math"
        assert row["reward_model"]["style"] == "rule"
        question = row["extra_info"]["question"]
        assert row["prompt"] == [{"role": "user", "content": f"{question}\n{PROMPT_SUFFIX}"}]
        assert row["extra_info"]["split"] == case.output_split
        assert set(row["extra_info"]) == {"split", "index", "question", *case.extra_keys}
        assert all(
            isinstance(value, str) or value is None for key, value in row["extra_info"].items() if key != "index"
        )
    assert rows[0]["extra_info"].get("solution") == case.solution_of_first


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_script_prints_one_summary_line_rows_in_out_dropped_and_path(case, runs):
    path, stdout = runs[case.script]
    rows_out = len(case.ground_truths)
    assert stdout.splitlines() == [
        f"{case.script}: {case.rows_in} rows in, {rows_out} rows out, {case.dropped} -> {path}"
    ]
    assert pq.read_metadata(path).num_rows == rows_out


def test_deepscaler_keeps_rows_with_an_empty_solution_and_indexes_them_by_source_position(written):
    rows = read_parquet(written["deepscaler"])
    assert [row["extra_info"]["index"] for row in rows] == [0, 1, 3, 4]  # record 2 has no answer
    assert rows[1]["extra_info"]["solution"] is None  # empty in the source: no worked solution
    assert rows[2]["extra_info"]["question"] == "A square has perimeter $20$. What is its area?"


def test_amc23_float_answers_become_integer_strings(written):
    rows = read_parquet(written["amc23"])
    assert rows[0]["reward_model"]["ground_truth"] == "27"
    assert pq.read_schema(written["amc23"]).field("reward_model").type.field("ground_truth").type == "string"
    assert rows[0]["extra_info"]["id"] == "0"


def test_math500_keeps_subject_and_level_as_text(written):
    info = read_parquet(written["math500"])[0]["extra_info"]
    assert (info["subject"], info["level"], info["unique_id"]) == ("Precalculus", "2", "test/precalculus/807.json")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_script_output_is_byte_identical_across_runs(case, written, tmp_path):
    again = tmp_path / "again.parquet"
    result = run_script(case.script, "--local_dataset_path", FIXTURES / case.fixture, "--output", again)
    assert result.returncode == 0, result.stderr
    assert again.read_bytes() == written[case.script].read_bytes()


def test_default_output_is_data_name_split_under_the_working_directory(tmp_path):
    result = run_script("aime24", "--local_dataset_path", FIXTURES / "aime24_train.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "aime24" / "test.parquet").is_file()
    assert "aime24: 3 rows in, 3 rows out, 0 dropped -> data/aime24/test.parquet" in result.stdout


def test_gsm8k_split_option_names_the_output_and_extra_info(tmp_path):
    result = run_script(
        "gsm8k", "--local_dataset_path", FIXTURES / "gsm8k_test.jsonl", "--split", "train", "--output_dir", tmp_path
    )
    assert result.returncode == 0, result.stderr
    rows = read_parquet(tmp_path / "train.parquet")
    assert {row["extra_info"]["split"] for row in rows} == {"train"}


def test_script_reads_a_parquet_copy_of_the_dataset(tmp_path, written):
    import pyarrow as pa

    from smartthinker_verl.data import read_jsonl

    local = tmp_path / "aime25.parquet"
    pq.write_table(pa.Table.from_pylist(read_jsonl(FIXTURES / "aime25_test.jsonl")), local)
    result = run_script("aime25", "--local_dataset_path", local, "--output", tmp_path / "out.parquet")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.parquet").read_bytes() == written["aime25"].read_bytes()


def test_script_with_the_wrong_layout_fails_and_names_the_expected_columns(tmp_path):
    result = run_script("amc23", "--local_dataset_path", FIXTURES / "aime25_test.jsonl", "--output_dir", tmp_path)
    assert result.returncode == 2
    assert "no column(s) ['question']" in result.stderr
    assert "amc23 expects the layout of math-ai/amc23: question, answer, id, url" in result.stderr
    assert not list(tmp_path.iterdir())


def test_script_with_a_missing_local_file_fails_clearly(tmp_path):
    result = run_script("math500", "--local_dataset_path", tmp_path / "missing.jsonl", "--output_dir", tmp_path)
    assert result.returncode == 2
    assert "missing.jsonl does not exist" in result.stderr


def test_script_rejects_output_and_output_dir_together(tmp_path):
    result = run_script("aime25", "--output", tmp_path / "a.parquet", "--output_dir", tmp_path)
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr


def test_hub_load_offline_fails_with_a_message_that_points_to_local_dataset_path(tmp_path):
    # The real `datasets.load_dataset` call; offline mode makes the unreachable hub fail at once instead of retrying.
    offline = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = run_script("gsm8k", "--output_dir", tmp_path / "out", env=offline)
    assert result.returncode == 2
    assert "could not load 'openai/gsm8k' (config 'main') split 'test' from the Hugging Face hub" in result.stderr
    assert "--local_dataset_path" in result.stderr
    assert not (tmp_path / "out").exists()


def test_verl_rl_dataset_reads_all_written_files_together(written, qwen_tokenizer, tmp_path):
    """verl's RLHFDataset (real class, real Qwen tokenizer) concatenates every dataset's file, as for val_files."""
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    config = OmegaConf.create(
        {
            "prompt_key": "prompt",
            "max_prompt_length": 1500,
            "filter_overlong_prompts": True,
            "filter_overlong_prompts_workers": 1,
            "truncation": "error",
            "cache_dir": str(tmp_path / "verl_cache"),
        }
    )
    files = [str(written[case.script]) for case in CASES]
    dataset = RLHFDataset(files, qwen_tokenizer, config)
    expected = [(case.data_source, truth) for case in CASES for truth in case.ground_truths]
    assert len(dataset) == len(expected)
    items = [dataset[i] for i in range(len(dataset))]
    assert [(item["data_source"], item["reward_model"]["ground_truth"]) for item in items] == expected
    first = items[0]
    assert first["raw_prompt"][0]["content"].endswith(PROMPT_SUFFIX)
    assert first["index"] == first["extra_info"]["index"] == 0
    batch = collate_fn(items)
    assert batch["dummy_tensor"].shape == (len(expected), 1)
    assert list(batch["data_source"]) == [source for source, _ in expected]
