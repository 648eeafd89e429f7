"""The `make compare` tables and plot (smartthinker_verl.demo.compare_report) on small fixture metrics.jsonl files in
verl's file-logger format: per level, per method, intervals over seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smartthinker_verl.demo.compare_report import (
    ALL_LEVELS,
    BASE,
    format_level_table,
    format_training_table,
    level_rows,
    load_run,
    main,
    mean_interval,
)

LEVELS = ("reasoning_gym/chain_sum/terms2", "reasoning_gym/chain_sum/terms4")


def validation(values: dict[str, tuple[float, float]]) -> dict[str, float]:
    data = {}
    for source, (accuracy, tokens) in values.items():
        data[f"val-core/{source}/acc/mean@1"] = accuracy
        data[f"val-aux/{source}/response_length/mean@1"] = tokens
    return data


def write_metrics(
    path: Path,
    method: str,
    train: list[tuple[float, float]],
    after: dict[str, tuple[float, float]],
    before: dict[str, tuple[float, float]] | None = None,
) -> Path:
    """verl's FileLogger lines: validation before training at step 0 (when given), training steps 1.., the last
    with validation."""
    lines = [{"step": 0, "data": validation(before)}] if before else []
    for step, (accuracy, tokens) in enumerate(train, start=1):
        data = {"critic/score/mean": accuracy, "response_length/mean": tokens, f"{method}/accuracy/mean": accuracy}
        if step == len(train):
            data.update(validation(after))
        lines.append({"step": step, "data": data})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


@pytest.fixture
def runs(tmp_path: Path) -> list[tuple[str, Path]]:
    """grpo and shorter_better at two seeds each; only grpo's seed 0 validated before training."""
    base = {LEVELS[0]: (0.4, 30.0), LEVELS[1]: (0.1, 60.0)}
    grpo, short = [(0.5, 60.0), (0.55, 62.0)], [(0.5, 58.0), (0.45, 40.0)]
    return [
        (
            "grpo",
            write_metrics(tmp_path / "g0.jsonl", "grpo", grpo, {LEVELS[0]: (0.5, 40), LEVELS[1]: (0.2, 80)}, base),
        ),
        ("grpo", write_metrics(tmp_path / "g1.jsonl", "grpo", grpo, {LEVELS[0]: (0.5, 40), LEVELS[1]: (0.1, 80)})),
        (
            "shorter_better",
            write_metrics(
                tmp_path / "s0.jsonl", "shorter_better", short, {LEVELS[0]: (0.45, 20), LEVELS[1]: (0.1, 40)}
            ),
        ),
        (
            "shorter_better",
            write_metrics(
                tmp_path / "s1.jsonl",
                "shorter_better",
                [*short[:1], (0.45, 30.0)],
                {LEVELS[0]: (0.45, 20), LEVELS[1]: (0.1, 40)},
            ),
        ),
    ]


def test_mean_interval_is_the_student_t_half_width_over_seeds() -> None:
    assert mean_interval([0.5]) == (0.5, None)
    mean, half = mean_interval([0.2, 0.1])  # sd = 0.0707, t(0.975, 1) = 12.706: 12.706 * 0.0707 / sqrt(2) = 0.635
    assert mean == pytest.approx(0.15) and half == pytest.approx(0.6353, abs=1e-4)
    assert mean_interval([0.3, 0.3, 0.3])[1] == 0.0


def test_rows_per_level_hold_the_base_model_means_over_seeds_and_aes(runs) -> None:
    """terms4: grpo (0.15, 80 tokens), shorter_better (0.1, 40): dL = 0.5, dA = (0.1 - 0.15) / 0.15 = -1/3,
    AES = 0.5 - 5 / 3."""
    rows = level_rows([load_run(method, path) for method, path in runs])
    by = {(row["level"], row["method"]): row for row in rows}
    assert [row["method"] for row in rows if row["level"] == LEVELS[1]] == [BASE, "grpo", "shorter_better"]
    assert by[LEVELS[1], BASE]["acc"] == (0.1, None) and by[LEVELS[1], BASE]["tokens"] == (60.0, None)
    assert by[LEVELS[1], "grpo"]["runs"] == 2 and by[LEVELS[1], "grpo"]["acc"][0] == pytest.approx(0.15)
    assert by[LEVELS[0], "grpo"]["acc"] == (0.5, 0.0)
    assert by[LEVELS[1], "shorter_better"]["aes"] == pytest.approx(0.5 - 5 / 3)
    assert by[ALL_LEVELS, "grpo"]["tokens"][0] == pytest.approx(60.0)
    table = format_level_table(rows).splitlines()
    assert "| terms4 | grpo | 2 | 0.150 ± 0.635 | 80.0 ± 0.0 | (reference) |" in table
    assert "| terms2 | base model (before) | 1 | 0.400 | 30.0 |  |" in table


def test_training_table_means_over_seeds(runs) -> None:
    table = format_training_table([load_run(method, path) for method, path in runs]).splitlines()
    assert table[3] == "| shorter_better | 2 | 2 | 0.500 -> 0.450 | 58.0 -> 35.0 |"


def test_without_the_reference_method_aes_is_left_empty(runs) -> None:
    rows = level_rows([load_run(method, path) for method, path in runs if method != "grpo"])
    assert all(row["aes"] is None for row in rows if row["method"] != BASE)
    assert "| terms2 | shorter_better | 2 | 0.450 ± 0.000 | 20.0 ± 0.0 | – |" in format_level_table(rows)


def test_a_run_stopped_before_its_last_validation_has_no_final_values(tmp_path: Path) -> None:
    path = write_metrics(tmp_path / "g.jsonl", "grpo", [(0.5, 60.0), (0.55, 62.0)], {LEVELS[0]: (0.5, 40.0)})
    lines = path.read_text().splitlines()
    lines[-1] = json.dumps({"step": 2, "data": {"critic/score/mean": 0.5, "response_length/mean": 50.0}})
    lines.append(json.dumps({"step": 3, "data": {"critic/score/mean": 0.5, "response_length/mean": 50.0}}))
    path.write_text("\n".join(lines) + "\n")
    assert load_run("grpo", path).after == {}


def test_cli_writes_the_tables_and_one_plot(runs, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main([arg for method, path in runs for arg in ("--run", f"{method}={path}")] + ["--out", str(out)]) == 0
    text = (out / "compare.md").read_text()
    assert "| all levels | shorter_better | 2 |" in text and "95% Student-t interval over seeds" in text
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Training (mean over seeds)" in capsys.readouterr().out


def test_a_file_without_training_steps_is_a_clear_error(tmp_path: Path, capsys) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(json.dumps({"step": 0, "data": {"val-core/x/acc/mean@1": 0.1}}) + "\n")
    assert main(["--run", f"grpo={path}", "--out", str(tmp_path / "o")]) == 2
    assert "no training step" in capsys.readouterr().err


def test_compare_recipe_reports_the_finished_runs_only(runs, tmp_path: Path) -> None:
    """`REPORT_ONLY=1 bash recipes/compare_cpu.sh`: the runs with a report.md (finished) and nothing else."""
    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "cmp"
    for seed, (method, path) in zip([0, 1, 0, 1], runs, strict=True):
        run_dir = out / method / f"seed_{seed}"
        run_dir.mkdir(parents=True)
        (run_dir / "metrics.jsonl").write_text(path.read_text())
        if (method, seed) != ("shorter_better", 1):
            (run_dir / "report.md").write_text("finished\n")
    env = {**os.environ, "REPORT_ONLY": "1", "OUTPUT_DIR": str(out), "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(repo / "recipes/compare_cpu.sh"), "grpo", "shorter_better"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    text = (out / "compare.md").read_text()
    assert "| terms2 | grpo | 2 |" in text and "| terms2 | shorter_better | 1 |" in text
    assert "compared 3 finished run(s)" in result.stderr
