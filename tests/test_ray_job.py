"""recipes/submit_ray_job.sh against a real local Ray cluster (loopback only, its own temp dir and ports).

The test starts a Ray head with ``ray start --head --block``, submits
``python -m smartthinker_verl.launch.cluster_check`` through the script with the entry-point plugin switched off
(``VERL_USE_EXTERNAL_PLUGINS=none``), so the plugin can only arrive through ``VERL_USE_EXTERNAL_MODULES`` from the
job's runtime env, waits for SUCCEEDED and reads the job's report: plugin loaded by ``import verl`` on the driver
and in a worker task, estimator on the paper's worked example, scorer on a small batch. It stops only the head it
started (SIGTERM to its ``ray start --block`` process, then any process left that runs from its own temp dir), never
a global ``ray stop``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from smartthinker_verl.platforms.cpu.runtime import processes_using

REPO = Path(__file__).resolve().parents[1]
SUBMIT = REPO / "recipes" / "submit_ray_job.sh"
BIN = Path(sys.executable).parent
RAY = BIN / "ray"

pytestmark = pytest.mark.skipif(not RAY.exists(), reason="the ray CLI is not installed next to this interpreter")


def _free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    # Our loopback cluster runs without token auth whatever ~/.ray/auth_token holds (another Ray on this machine may
    # have written one; head and client would then need it): deterministic, and nothing outside 127.0.0.1 reaches it.
    env["RAY_AUTH_MODE"] = "disabled"
    return env


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A Ray head on 127.0.0.1 with its own temp dir and ports; yields the dashboard address."""
    temp_dir = tempfile.mkdtemp(prefix="strayt", dir="/tmp")  # short: Ray puts unix sockets under it
    (gcs, dashboard, client, node_manager, object_manager, agent_listen, agent_grpc, metrics, runtime_env) = (
        _free_ports(9)
    )
    worker_low = 20000 + (os.getpid() % 2000) * 10
    command = [
        str(RAY), "start", "--head", "--block", "--num-cpus", "2", "--num-gpus", "0",
        "--node-ip-address", "127.0.0.1", "--dashboard-host", "127.0.0.1", "--include-dashboard", "true",
        "--temp-dir", temp_dir, "--port", str(gcs), "--dashboard-port", str(dashboard),
        "--ray-client-server-port", str(client), "--node-manager-port", str(node_manager),
        "--object-manager-port", str(object_manager), "--dashboard-agent-listen-port", str(agent_listen),
        "--dashboard-agent-grpc-port", str(agent_grpc), "--metrics-export-port", str(metrics),
        "--runtime-env-agent-port", str(runtime_env), "--min-worker-port", str(worker_low),
        "--max-worker-port", str(worker_low + 9), "--disable-usage-stats",
    ]  # fmt: skip
    log = open(Path(temp_dir) / "ray_start.log", "w")  # noqa: SIM115  (closed below)
    head = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if head.poll() is not None:
                raise RuntimeError(f"ray start exited: {(Path(temp_dir) / 'ray_start.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{address}/api/version", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the Ray dashboard did not come up within 180 s")
            time.sleep(1)
        yield address
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        for pid in processes_using(temp_dir):  # anything of OUR cluster that outlived the head
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _submit(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SUBMIT), "--address", address, *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=900,
        cwd=REPO,
    )


@pytest.mark.slow
def test_cluster_check_job_succeeds_with_plugin_from_runtime_env(ray_head: str) -> None:
    done = _submit(
        ray_head,
        "--entrypoint",
        "python -m smartthinker_verl.launch.cluster_check",
        "--env",
        "VERL_USE_EXTERNAL_PLUGINS=none",  # no entry points: the plugin must come via VERL_USE_EXTERNAL_MODULES
        "--wait",
    )
    assert done.returncode == 0, done.stderr[-6000:]
    job_id = done.stdout.strip().splitlines()[-1]
    assert job_id.startswith("smartthinker-smartthinker_verl.launch.cluster_check-")
    assert f"ray job logs --address {ray_head} --follow {job_id}" in done.stderr

    logs = subprocess.run(
        [str(RAY), "job", "logs", "--address", ray_head, job_id], capture_output=True, text=True, env=_env()
    ).stdout
    report = json.loads(logs[logs.index("{") : logs.rindex("}") + 1])
    assert report["ok"] is True, report
    for where in ("driver", "worker"):
        part = report[where]
        assert part["plugin_loaded_by_verl"] and part["estimator_registered"] and part["reward_manager_registered"]
        assert part["verl_use_external_modules"] == "smartthinker_verl.plugin"
        assert part["advantages"] == pytest.approx(
            [0.989204, 0.989204, 0.824165, 0.641017, -1.147863, 0.0, -1.147863, -1.147863], abs=1e-5
        )
        assert part["scores"] == [1.0, 1.0, 0.0, 0.0]
    assert report["driver"]["pid"] != report["worker"]["pid"]
    # The code ran from the job's working_dir copy, not from this checkout: what a node without the install gets.
    assert "working_dir_files" in report["driver"]["package_file"]
    assert "working_dir_files" in report["worker"]["package_file"]


@pytest.mark.slow
def test_failing_job_makes_wait_exit_nonzero(ray_head: str) -> None:
    done = _submit(
        ray_head, "--entrypoint", "python -m smartthinker_verl.launch.cluster_check --estimator no_such", "--wait"
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert "advantage estimator 'no_such' is not registered" in done.stderr  # the job's report, from its logs
    assert "did not succeed" in done.stderr


@pytest.mark.slow
def test_a_job_gets_wandb_settings_and_absolute_log_paths_outside_its_working_dir(
    ray_head: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """wandb's settings reach the job, and a relative WANDB_DIR / VERL_FILE_LOGGER_PATH is made absolute against the
    submitting folder: the job itself runs in Ray's temporary working_dir copy, which Ray deletes."""
    for name, value in {"WANDB_DIR": "wb", "VERL_FILE_LOGGER_PATH": "m/x.jsonl", "WANDB_PROJECT": "proj",
                        "WANDB_BASE_URL": "https://wandb.example"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    script = (
        "import json, os; print('JOB_ENV=' + json.dumps({k: os.environ.get(k) for k in "
        "('WANDB_DIR', 'VERL_FILE_LOGGER_PATH', 'WANDB_PROJECT', 'WANDB_BASE_URL')} | {'cwd': os.getcwd()}))"
    )
    done = _submit(ray_head, "--entrypoint", f'python -c "{script}"', "--wait")
    assert done.returncode == 0, done.stderr[-4000:]
    job_id = done.stdout.strip().splitlines()[-1]
    logs = subprocess.run(
        [str(RAY), "job", "logs", "--address", ray_head, job_id], capture_output=True, text=True, env=_env()
    ).stdout
    line = next(line for line in logs.splitlines() if line.startswith("JOB_ENV="))
    seen = json.loads(line.removeprefix("JOB_ENV="))
    assert seen["WANDB_DIR"] == f"{REPO}/wb" and seen["VERL_FILE_LOGGER_PATH"] == f"{REPO}/m/x.jsonl"
    assert seen["WANDB_PROJECT"] == "proj" and seen["WANDB_BASE_URL"] == "https://wandb.example"
    assert seen["cwd"] != str(REPO)  # the job ran in Ray's copy: a relative path would have landed there


def test_the_job_runs_on_the_launching_interpreter_not_the_heads_path(tmp_path: Path) -> None:
    """No Ray needed: the runtime env names the interpreter by absolute path, and a --entrypoint command's `python`
    is that interpreter even where the head's PATH has another python first."""
    env = {**_env(), "CHECKPOINT_DIR": "/shared/ck"}
    env.pop("PYTHON", None)

    def submit(*args: str, **extra: str) -> tuple[dict, str]:
        done = subprocess.run(
            ["bash", str(SUBMIT), "--print-runtime-env", *args], capture_output=True, text=True, env=env | extra
        )
        assert done.returncode == 0, done.stderr
        body, entry = done.stdout.rsplit("# entrypoint: ", 1)
        return yaml.safe_load(body)["env_vars"], entry.strip()

    env_vars, _ = submit(PYTHON="python3")  # a name on PATH is resolved to its absolute path
    assert env_vars["PYTHON"] == shutil.which("python3", path=env["PATH"])
    env_vars, entry = submit("--entrypoint", "python -c 'import sys; print(sys.executable)'", PYTHON=sys.executable)
    assert env_vars["PYTHON"] == sys.executable
    decoy = tmp_path / "head_bin"  # the head's PATH: a python that is not the job's
    decoy.mkdir()
    (decoy / "python").write_text("#!/bin/sh\necho decoy\n")
    (decoy / "python").chmod(0o755)
    ran = subprocess.run(["bash", "-c", entry], capture_output=True, text=True, env={"PATH": f"{decoy}:/usr/bin:/bin"})
    assert ran.stdout.strip() == sys.executable, ran.stderr
    done = subprocess.run(
        ["bash", str(SUBMIT), "--print-runtime-env"], capture_output=True, text=True, env=env | {"PYTHON": "nope"}
    )
    assert done.returncode == 2 and "set PYTHON=/path/to/env/bin/python" in done.stderr
