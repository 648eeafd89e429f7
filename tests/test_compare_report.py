"""The `make compare` table and plot (smartthinker_verl.demo.compare_report) on small fixture metrics.jsonl files in
verl's file-logger format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartthinker_verl.demo.compare_report import comparison_rows, format_table, load_run, main


def write_metrics(path: Path, method: str, train: list[tuple[float, float]], val: list[tuple[float, float]]) -> Path:
    """verl's FileLogger lines: validation before training at step 0, training steps 1.., the last with validation."""
    lines = [
        {"step": 0, "data": {"val-core/gsm/acc/mean@1": val[0][0], "val-aux/gsm/response_length/mean@1": val[0][1]}}
    ]
    for step, (accuracy, tokens) in enumerate(train, start=1):
        data = {"critic/score/mean": accuracy, "response_length/mean": tokens, f"{method}/accuracy/mean": accuracy}
        if step == len(train):
            data.update({"val-core/gsm/acc/mean@1": val[1][0], "val-aux/gsm/response_length/mean@1": val[1][1]})
        lines.append({"step": step, "data": data})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    return {
        "grpo": write_metrics(tmp_path / "grpo.jsonl", "grpo", [(0.5, 60.0), (0.55, 62.0)], [(0.4, 70.0), (0.5, 80.0)]),
        "shorter_better": write_metrics(
            tmp_path / "sb.jsonl", "shorter_better", [(0.5, 58.0), (0.45, 40.0)], [(0.4, 70.0), (0.45, 40.0)]
        ),
    }


def test_rows_hold_the_curves_the_final_validation_and_aes_against_grpo(runs: dict[str, Path]) -> None:
    """shorter_better against grpo's final validation (80 tokens, 0.5): dL = (80 - 40) / 80 = 0.5,
    dA = (0.45 - 0.5) / 0.5 = -0.1, AES = 0.5 - 5 * 0.1 = 0.0."""
    loaded = [load_run(method, path) for method, path in runs.items()]
    assert loaded[1].steps == [1, 2] and loaded[1].tokens == [58.0, 40.0]
    grpo, sb = comparison_rows(loaded)
    assert grpo["aes"] is None and grpo["val_accuracy"] == 0.5 and grpo["val_tokens_before"] == 70.0
    assert sb["aes"] == pytest.approx(0.0) and sb["train_accuracy_last"] == 0.45
    table = format_table([grpo, sb]).splitlines()
    assert table[2].startswith("| grpo | 2 | 0.500 -> 0.550 | 60.0 -> 62.0 | 0.400 -> 0.500 | 70.0 -> 80.0 |")
    assert table[2].endswith("(reference) |") and table[3].endswith("| 0.00 |")


def test_without_the_reference_method_aes_is_left_empty(runs: dict[str, Path]) -> None:
    (row,) = comparison_rows([load_run("shorter_better", runs["shorter_better"])])
    assert row["aes"] is None
    assert format_table([row]).splitlines()[2].endswith("| – |")


def test_cli_writes_one_table_and_one_plot(runs: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert (
        main(["--run", f"grpo={runs['grpo']}", "--run", f"shorter_better={runs['shorter_better']}", "--out", str(out)])
        == 0
    )
    text = (out / "compare.md").read_text()
    assert "| shorter_better | 2 |" in text and "not the paper's result" in text
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "not the paper's result" in capsys.readouterr().out


def test_a_file_without_training_steps_is_a_clear_error(tmp_path: Path, capsys) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(json.dumps({"step": 0, "data": {"val-core/x/acc/mean@1": 0.1}}) + "\n")
    assert main(["--run", f"grpo={path}", "--out", str(tmp_path / "o")]) == 1
    assert "no training step" in capsys.readouterr().err


def test_a_run_validated_only_after_training_has_no_before_values(tmp_path: Path) -> None:
    path = write_metrics(tmp_path / "g.jsonl", "grpo", [(0.5, 60.0), (0.55, 62.0)], [(0.4, 70.0), (0.5, 80.0)])
    lines = path.read_text().splitlines()[1:]  # drop the validation before training (step 0)
    path.write_text("\n".join(lines) + "\n")
    run = load_run("grpo", path)
    assert run.val_accuracy == {"after": 0.5} and run.val_tokens == {"after": 80.0}
    (row,) = comparison_rows([run])
    assert format_table([row]).splitlines()[2].startswith("| grpo | 2 | 0.500 -> 0.550 | 60.0 -> 62.0 | 0.500 | 80.0 |")
