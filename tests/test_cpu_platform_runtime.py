"""Recipe housekeeping: per-step progress lines, failure diagnosis, and cleanup limited to one run's processes."""

from __future__ import annotations

import io
import subprocess
import sys
import time

import pytest

from smartthinker_verl.platforms.cpu import runtime

STEP_LINE = (
    "(TaskRunnerV1 pid=1) step:2 - actor/grad_norm:0.5 - critic/score/mean:0.25 - response_length/mean:np.float64(40.0)"
    " - smartthinker/coefficient/mean:nan - val-core/x/acc/mean@1:np.float64(0.5) - timing_s/step:3.2\n"
)


def test_step_lines_are_parsed_into_metrics():
    step, values = runtime.parse_step_line(STEP_LINE)
    assert step == 2
    assert values["actor/grad_norm"] == "0.5"
    assert values["val-core/x/acc/mean@1"] == "np.float64(0.5)"
    assert runtime.parse_step_line("Training Progress: 33%") is None


def test_follow_copies_everything_to_the_log_and_prints_compact_progress(tmp_path):
    log = tmp_path / "train.log"
    out = io.StringIO()
    lines = ["noise UserWarning: engine is not available: ModuleNotFoundError\n", STEP_LINE, "ValueError: bad\n"]
    runtime.follow(lines, log, total=3, verbose=False, out=out)
    assert log.read_text() == "".join(lines)
    printed = out.getvalue()
    assert "step 2/3" in printed and "grad_norm 0.5" in printed and "resp_len 40" in printed
    assert "val_acc 0.5" in printed and "coef nan" in printed
    assert "ValueError: bad" in printed
    assert "UserWarning" not in printed


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        ("SetupError: asset 'smollm2' is not prepared in /x", "missing"),
        ("ray.exceptions.ActorDiedError: The actor died ... vllm_server_0_0", "rollout server"),
        ("SetupError: smartthinker-verl's vLLM CPU patch 'keep_linear_weights'", "installed vLLM"),
        ("OSError: [Errno 98] Address already in use", "port"),
        ("RuntimeError: Failed to start the GCS server", "Ray failed to start"),
        ("Exception: The current node timed out during startup. This could happen", "Ray failed to start"),
        ("NotImplementedError: Unknown advantage estimator smartthinker", "plugin"),
    ],
)
def test_known_failures_are_explained(log, expected):
    what, fix = runtime.diagnose([log])
    assert expected in what
    assert fix


def test_a_real_rollout_crash_report_is_recognised_over_earlier_noise():
    lines = [
        "Checkpoint tracker file does not exist: /x/latest_checkpointed_iteration.txt\n",
        "ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task.\n",
        "\tclass_name: vLLMHttpServer\n",
        "\tname: vllm_server_0_0\n",
    ]
    what, _ = runtime.diagnose(lines)
    assert "rollout server" in what


def test_unknown_failures_are_not_guessed():
    assert runtime.diagnose(["something odd happened"]) is None


def test_cleanup_stops_only_processes_of_the_marked_run(tmp_path):
    marker = str(tmp_path / "stv-ray-test-marker")
    code = "import time; time.sleep(120)"
    ours = subprocess.Popen([sys.executable, "-c", code, marker])
    other = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "someone-else")])
    try:
        time.sleep(0.5)
        assert runtime.cleanup(marker, grace_s=5) == 1
        assert ours.wait(timeout=10) is not None
        assert other.poll() is None
    finally:
        for proc in (ours, other):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_cleanup_refuses_a_vague_marker():
    with pytest.raises(ValueError, match="short marker"):
        runtime.cleanup("ray")


def test_a_sigkilled_run_is_explained_by_its_exit_status_not_by_earlier_log_lines():
    """The log's last lines are whatever the trainer printed before the kill (here: verl's harmless notice)."""
    lines = ["FileNotFoundError: Checkpoint tracker file does not exist: /x/latest_checkpointed_iteration.txt\n"]
    assert "does not exist" in runtime.diagnose(lines)[0]
    what, fix = runtime.diagnose(lines, exit_status=137)
    assert "SIGKILL" in what and "RESUME=1" in fix


def test_diagnose_cli_reads_the_exit_status(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("step:1 - x:1\n")
    cli = [sys.executable, "-m", "smartthinker_verl.platforms.cpu.runtime", "diagnose", str(log)]
    done = subprocess.run([*cli, "--exit-status", "137"], capture_output=True, text=True, check=True)
    assert "SIGKILL" in done.stdout
    done = subprocess.run(cli, capture_output=True, text=True, check=True)
    assert "the last lines of" in done.stdout
