"""recipes/reproduce.sh: the paper's table in one command (preflight, training, convert, eval, report).

The dry runs are the real thing: each training stage is composed by the recipe's own `--dry-run` (verl's config and
validation, the plugin's registries), and the convert/eval/report commands are parsed by their own parsers.

The stages themselves need GPUs (training a 1.5B model, vLLM generation of 32k-token answers), so the tests of
resuming stage by stage run the real script with every stage's command replaced by a test double, through the
variable the script documents for that (SMARTTHINKER_REPRODUCE_RUNNER): the double records which stage was called
and fails where told. Everything else (planning, composing, markers, skips, exit codes) is the script's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smartthinker_verl.launch import reproduce

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "recipes" / "reproduce.sh"
STAGES_1_5B = ["preflight/smartthinker", "train/smartthinker", "convert/smartthinker", "eval/base"]
STAGES_1_5B += ["eval/smartthinker", "report"]
#: A stand-in for every stage's command: logs the stage name, exits 3 for the stage named in FAIL_STAGE.
DOUBLE = """#!/bin/sh
echo "$1" >> "$CALLS"
[ "$1" = "$FAIL_STAGE" ] && { echo "double: $1 fails"; exit 3; }
echo "double: $1 ok"
"""


def write_benchmarks(data_dir: Path) -> None:
    """Placeholders where the recipes and the evaluation read their data (planning checks existence only)."""
    for name in ("deepscaler/train.parquet", *(f"{b}/test.parquet" for b in reproduce.BENCHMARKS)):
        (data_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (data_dir / name).write_bytes(b"")


def run_script(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MODEL_PATH", "DATA_DIR", "EXPERIMENT", "CHECKPOINT_DIR", "RESUME", reproduce.RUNNER_ENV)
    }
    environment.update({"PYTHON": sys.executable, "NGPUS": "4", "NNODES": "1", **env})
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=environment, timeout=600, check=False
    )


def stage_lines(stdout: str) -> dict[str, str]:
    """``{stage: status}`` from the printed plan (lines ``N. STAGE  run|skip: reason``)."""
    rows = {}
    for line in stdout.splitlines():
        head, _, rest = line.strip().partition(". ")
        if head.isdigit():
            name, _, status = rest.partition(" ")
            rows[name] = status.strip()
    return rows


def test_dry_run_composes_every_stage_of_the_1_5b_run_and_writes_nothing(tmp_path: Path) -> None:
    write_benchmarks(tmp_path / "data")
    run_dir = tmp_path / "run"
    done = run_script("1.5b", "--dry-run", "--run-dir", str(run_dir), DATA_DIR=str(tmp_path / "data"))

    assert done.returncode == 0, done.stderr[-3000:]
    assert list(stage_lines(done.stdout)) == STAGES_1_5B
    assert "dry run OK" in done.stdout
    out = done.stdout
    # Training: the recipe, the method and the run folder's checkpoints (checked in the composed config).
    # (the preflight is its own stage, so training skips the recipe's doctor)
    overrides = f"algorithm.adv_estimator=smartthinker trainer.default_local_dir={run_dir}/train"
    assert f"run_1.5b.sh --skip-doctor {overrides}" in out and f"run_1.5b.sh --doctor-only {overrides}" in out
    assert "composed by run_1.5b.sh --dry-run: adv_estimator=smartthinker, 150 steps" in out
    assert f"convert {run_dir}/train/smartthinker/checkpoints --step latest --out {run_dir}/convert" in out
    # The paper's protocol on the four benchmarks, for the base model and the trained one.
    assert out.count("--k 16 --temperature 0.6 --top-p 1.0 --max-tokens 32768") == 2
    assert "--model deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B" in out
    assert f"--model {run_dir}/convert/smartthinker/model" in out
    for benchmark in ("aime24", "aime25", "amc23", "math500"):
        assert f"{benchmark}={tmp_path}/data/{benchmark}/test.parquet" in out
    assert f"--baseline {run_dir}/eval/base/res.json" in out
    assert not run_dir.exists()


def test_dry_run_accepts_a_second_method_and_reports_both(tmp_path: Path) -> None:
    write_benchmarks(tmp_path / "data")
    run_dir = tmp_path / "run"
    done = run_script(
        "1.5b", "smartthinker", "grpo", "--dry-run", "--run-dir", str(run_dir), DATA_DIR=str(tmp_path / "data")
    )

    assert done.returncode == 0, done.stderr[-3000:]
    stages = list(stage_lines(done.stdout))
    for name in ("train/grpo", "convert/grpo", "eval/grpo", "train/smartthinker", "eval/base", "report"):
        assert name in stages
    assert "composed by run_1.5b.sh --dry-run: adv_estimator=grpo" in done.stdout
    report = next(line for line in done.stdout.splitlines() if "smartthinker_verl.cli report" in line)
    assert f"{run_dir}/eval/smartthinker/res.json {run_dir}/eval/grpo/res.json --baseline" in report


def test_unknown_model_fails_before_anything_with_the_choices() -> None:
    done = run_script("3b", "--dry-run")
    assert done.returncode == 2
    assert "unknown model '3b'. Fix: choose one of 1.5b, 7b, qwen3_4b" in done.stderr


def test_unknown_method_fails_before_anything_with_the_choices(tmp_path: Path) -> None:
    done = run_script("1.5b", "smartthinker", "smartthinkr", "--dry-run", "--run-dir", str(tmp_path / "run"))
    assert done.returncode == 2
    assert "unknown method(s) smartthinkr. Fix: choose from grpo " in done.stderr
    assert " shorter_better smartthinker" in done.stderr
    assert not (tmp_path / "run").exists()


def test_a_failed_stage_stops_the_run_and_a_rerun_skips_the_finished_stages(tmp_path: Path) -> None:
    write_benchmarks(tmp_path / "data")
    run_dir, calls = tmp_path / "run", tmp_path / "calls.txt"
    double = tmp_path / "double.sh"
    double.write_text(DOUBLE)
    double.chmod(0o755)
    env = {"DATA_DIR": str(tmp_path / "data"), reproduce.RUNNER_ENV: str(double), "CALLS": str(calls)}
    args = ("1.5b", "--run-dir", str(run_dir))

    failed = run_script(*args, FAIL_STAGE="convert/smartthinker", **env)
    assert failed.returncode == 3, failed.stderr[-3000:]
    log = run_dir / "convert" / "smartthinker" / "stage.log"
    assert f"convert/smartthinker FAILED (exit 3); its log: {log}" in failed.stderr
    assert "double: convert/smartthinker fails" in log.read_text()
    assert calls.read_text().split() == ["preflight/smartthinker", "train/smartthinker", "convert/smartthinker"]
    assert (run_dir / "train" / "smartthinker" / "stage.done").is_file()
    assert not (run_dir / "convert" / "smartthinker" / "stage.done").exists()

    calls.unlink()
    resumed = run_script(*args, FAIL_STAGE="", **env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert calls.read_text().split() == ["convert/smartthinker", "eval/base", "eval/smartthinker", "report"]
    status = stage_lines(resumed.stdout)
    assert status["train/smartthinker"].startswith("skip: finished")
    assert status["preflight/smartthinker"].startswith("skip:")  # training is finished: no preflight
    assert "train/smartthinker: skipped, finished" in resumed.stderr
    record = json.loads((run_dir / "train" / "smartthinker" / "stage.done").read_text())
    assert record["command"][:2] == ["bash", str(REPO / "recipes" / "run_1.5b.sh")]

    calls.unlink()
    again = run_script(*args, FAIL_STAGE="", **env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert not calls.exists()  # every stage finished: nothing runs
    assert all(s.startswith("skip:") for s in stage_lines(again.stdout).values())

    changed = run_script(*args, "--k", "4", FAIL_STAGE="", **env)
    assert changed.returncode == 2
    assert "eval/base finished with another command than now" in changed.stderr
    assert f"delete {run_dir}/eval/base/stage.done" in changed.stderr


def test_report_reruns_when_its_inputs_change_other_stages_refuse(tmp_path: Path) -> None:
    report = reproduce.Stage("report", tmp_path, ["python", "report", "a.json"], rerun_when_changed=True)
    train = reproduce.Stage("train/grpo", tmp_path, ["bash", "run_1.5b.sh", "x=1"])
    for stage in (report, train):
        stage.directory.mkdir(parents=True)
        reproduce.mark_done(stage)
        assert reproduce.finished(stage).startswith("finished ")
    report.command.append("b.json")
    train.command.append("y=2")
    assert reproduce.finished(report) is None
    with pytest.raises(reproduce.ConfigError, match="train/grpo finished with another command than now"):
        reproduce.finished(train)
