"""Multi-node, preflight, wandb and a hard kill with resume, through verl's real trainer on CPU.

One real Ray cluster of TWO nodes on loopback (``ray start --head`` and ``ray start --address``, each with its own
ports, one logical GPU and this test's own temp dir; stopped by pid, never a global ``ray stop``), then:

1. ``smartthinker-verl doctor`` against that cluster: one task per node; the checkpoint folder is seen as shared by
   both nodes; every GPU check is SKIPPED (no GPU), none passed; exit 0 for a CPU run.
2. ``recipes/run_tiny_cpu.sh`` with ``trainer.nnodes=2 trainer.n_gpus_per_node=1`` (FSDP over the two nodes,
   one rollout replica each), 4 steps, a checkpoint every 2 steps into one absolute folder, loggers
   ``[console,file,wandb]`` with ``WANDB_MODE=offline``. Once ``global_step_2`` exists and step 3 has started, the
   trainer's driver is killed with SIGKILL.
3. The documented resume command (``RESUME=1``, same OUTPUT_DIR and overrides) continues from global_step_2 in the
   same run folder: steps 3 and 4 are trained and logged once, steps 1 and 2 are kept, the last checkpoint is
   world size 2 and converts; wandb's own reader (``wandb leet inspect --json``) finds every ``smartthinker/...``
   metric on every step in the offline runs.

Real verl, real Ray, nothing mocked. Marked slow (a few minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartthinker_verl.launch.doctor import GPU_CHECKS
from smartthinker_verl.platforms.cpu.runtime import processes_using
from smartthinker_verl.step_metrics import METRIC_NAMES, PREFIX

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RAY, WANDB = BIN / "ray", BIN / "wandb"
TOTAL_STEPS, SAVE_FREQ = 4, 2

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not RAY.exists(), reason="the ray CLI is not installed next to this interpreter"),
]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _cluster_env(out: Path) -> dict[str, str]:
    """What recipes/cpu_common.sh exports, for the Ray nodes (their workers inherit it, not the driver's)."""
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=f"{REPO}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(REPO),
        VERL_PLATFORM="cpu",
        VERL_USE_EXTERNAL_MODULES="smartthinker_verl.plugin",
        HYDRA_FULL_ERROR="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        SMARTTHINKER_CPU_THREADS="1",
        RAY_DEDUP_LOGS="0",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="disabled",  # loopback only; whatever ~/.ray/auth_token another cluster left
        WANDB_MODE="offline",
        WANDB_DIR=str(out),
        WANDB_SILENT="true",
        VERL_FILE_LOGGER_PATH=str(out / "metrics.jsonl"),  # verl's file logger runs in a Ray actor
    )
    for key in ("RAY_ADDRESS", "WANDB_API_KEY"):
        env.pop(key, None)
    return env


def _node_command(temp_dir: str, head_port: int | None) -> list[str]:
    (node_manager, object_manager, agent_listen, agent_grpc, metrics, runtime_env, client) = _free_ports(7)
    # verl starts ~10 worker processes per node (FSDP ranks, rollout servers, TransferQueue, reward loop, ...)
    low = 20000 + (os.getpid() % 50) * 400 + (200 if head_port is not None and head_port > 0 else 0)
    command = [str(RAY), "start", "--block", "--num-cpus", "8", "--num-gpus", "1",
               "--node-ip-address", "127.0.0.1", "--temp-dir", temp_dir,
               "--object-store-memory", str(200 * 1024**2), "--node-manager-port", str(node_manager),
               "--object-manager-port", str(object_manager), "--dashboard-agent-listen-port", str(agent_listen),
               "--dashboard-agent-grpc-port", str(agent_grpc), "--metrics-export-port", str(metrics),
               "--runtime-env-agent-port", str(runtime_env), "--min-worker-port", str(low),
               "--max-worker-port", str(low + 199), "--disable-usage-stats"]  # fmt: skip
    if head_port is None:
        return command
    if head_port < 0:  # the head itself
        return [*command, "--head", "--port", str(-head_port), "--include-dashboard", "false",
                "--ray-client-server-port", str(client)]  # fmt: skip
    return [*command, "--address", f"127.0.0.1:{head_port}"]


def stop_nodes(processes: list, temp_dir: str) -> None:
    """Stop the ``ray start --block`` processes of a test cluster (SIGTERM, then SIGKILL), then anything of that
    cluster that outlived its node (found by its ``temp_dir``); never another cluster's processes."""
    for process in reversed(processes):
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pid in processes_using(temp_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _alive_nodes(address: str, env: dict[str, str]) -> int:
    code = (
        f"import ray; ray.init(address='{address}', logging_level='ERROR'); print(sum(n['Alive'] for n in ray.nodes()))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 and done.stdout.strip() else 0


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("multinode")


@pytest.fixture(scope="module")
def two_nodes(run_dir: Path) -> Iterator[tuple[str, str, dict[str, str]]]:
    """A two-node Ray cluster on 127.0.0.1: yields (GCS address, its temp dir, the environment of its nodes)."""
    temp_dir = tempfile.mkdtemp(prefix="stvmn", dir="/tmp")  # short: Ray puts unix sockets under it
    worker_temp_dir = f"{temp_dir}w"  # a second node on this machine: its own sockets
    os.mkdir(worker_temp_dir)
    (run_dir / "tiny").mkdir(exist_ok=True)
    env = _cluster_env(run_dir / "tiny")
    (gcs,) = _free_ports(1)
    logs, processes = [], []
    try:
        for name, head_port, node_temp in (("head", -gcs, temp_dir), ("worker", gcs, worker_temp_dir)):
            log = open(Path(temp_dir) / f"ray_{name}.log", "w")  # noqa: SIM115  (closed below)
            logs.append(log)
            processes.append(
                subprocess.Popen(
                    _node_command(node_temp, head_port),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )  # fmt: skip
            )
            deadline = time.monotonic() + 180
            want = len(processes)
            while _alive_nodes(f"127.0.0.1:{gcs}", env) < want:
                if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
                    text = (Path(temp_dir) / f"ray_{name}.log").read_text()[-3000:]
                    raise RuntimeError(f"ray {name} did not come up: {text}")
                time.sleep(2)
        yield f"127.0.0.1:{gcs}", temp_dir, env
    finally:
        stop_nodes(processes, temp_dir)
        for log in logs:
            log.close()
        subprocess.run(["rm", "-rf", temp_dir, worker_temp_dir], check=False)


def _overrides() -> list[str]:
    return [
        "trainer.nnodes=2",
        "trainer.n_gpus_per_node=1",
        f"trainer.save_freq={SAVE_FREQ}",
        "trainer.logger=[console,file,wandb]",
        "trainer.val_before_train=False",
        # 16 responses a step over 2 FSDP ranks: 8 each (the recipe's micro-batches of 16 fit one rank only)
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=8",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8",
    ]


def _tiny(out: Path, address: str, temp_dir: str, env: dict[str, str], **extra: str) -> subprocess.Popen:
    recipe_env = {**env, "OUTPUT_DIR": str(out), "TOTAL_STEPS": str(TOTAL_STEPS), "STV_RAY_ADDRESS": address,
                  "STV_RAY_TEMP_DIR": temp_dir, "PYTHON": sys.executable, **extra}  # fmt: skip
    return subprocess.Popen(
        ["bash", str(REPO / "recipes" / "run_tiny_cpu.sh"), *_overrides()],
        cwd=REPO, env=recipe_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip


def _driver_pid(out: Path) -> int | None:
    """The pid of this run's driver, `python -m smartthinker_verl.launch.train` (its arguments name the run's data
    folder)."""
    drivers = set(processes_using("smartthinker_verl.launch.train"))
    pids = [pid for pid in processes_using(str(out)) if pid in drivers]
    return pids[0] if pids else None


def _training_records(out: Path) -> list[dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, filter(None, lines)) if "training/global_step" in r["data"]]


#: Recipe processes this module started (each its own session): stopped at teardown if still running.
_STARTED: list[subprocess.Popen] = []


@pytest.fixture(scope="module")
def stop_started_recipes(two_nodes) -> Iterator[None]:
    """Set up after the cluster, so torn down before it."""
    yield
    for process in _STARTED:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def outcome(two_nodes, run_dir: Path, stop_started_recipes) -> dict:
    address, temp_dir, env = two_nodes
    result: dict = {"timings": {}}
    out = run_dir / "tiny"
    start = time.monotonic()

    # 1. the preflight on both nodes (CPU run: the GPU checks must read SKIPPED)
    from smartthinker_verl.demo.assets import prepare

    subprocess.run(
        [sys.executable, "-m", "smartthinker_verl.demo.assets", "prepare", "tiny"], env=env, check=True,
        capture_output=True,
    )  # fmt: skip
    data = run_dir / "doctor-data"
    subprocess.run(
        [sys.executable, "-m", "smartthinker_verl.demo.data", "--out", str(data), "--train", "16", "--val", "8",
         "--difficulty", "digits"], env=env, check=True, capture_output=True,
    )  # fmt: skip
    doctor = subprocess.run(
        [sys.executable, "-m", "smartthinker_verl.cli", "doctor", "--address", address,
         "--json", str(run_dir / "doctor.json"), "trainer.device=cpu", "actor_rollout_ref.rollout.name=vllm",
         "trainer.nnodes=2", "trainer.n_gpus_per_node=1", "data.train_batch_size=4",
         "actor_rollout_ref.actor.ppo_mini_batch_size=4", "trainer.total_training_steps=4", "trainer.save_freq=2",
         f"actor_rollout_ref.model.path={prepare('tiny')}", f"data.train_files={data}/train.parquet",
         f"data.val_files={data}/val.parquet", f"trainer.default_local_dir={out}/checkpoints",
         "trainer.logger=[console,file,wandb]"],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    result["doctor"] = doctor
    result["timings"]["doctor_s"] = time.monotonic() - start

    # 2. train on both nodes; SIGKILL the driver once global_step_2 is saved and step 3 has started
    start = time.monotonic()
    first = _tiny(out, address, temp_dir, env)
    _STARTED.append(first)
    killed = False
    deadline = time.monotonic() + 1200
    marker = out / "checkpoints" / "latest_checkpointed_iteration.txt"
    while first.poll() is None and time.monotonic() < deadline:
        log = (out / "train.log").read_text() if (out / "train.log").exists() else ""
        if "step:2 -" in log and marker.exists() and marker.read_text().strip() == "2":
            pid = _driver_pid(out)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed = True
                break
        time.sleep(0.5)
    result["first_output"] = first.communicate(timeout=600)[0]
    result["first_rc"], result["killed"] = first.returncode, killed
    (run_dir / "first_output.txt").write_text(result["first_output"])
    has_metrics = (out / "metrics.jsonl").exists()
    result["after_kill_records"] = [r["step"] for r in _training_records(out)] if has_metrics else []
    result["timings"]["first_run_s"] = time.monotonic() - start

    # 3. the documented resume command: same OUTPUT_DIR and overrides, RESUME=1
    start = time.monotonic()
    second = _tiny(out, address, temp_dir, env, RESUME="1")
    _STARTED.append(second)
    result["second_output"] = second.communicate(timeout=1500)[0]
    result["second_rc"] = second.returncode
    result["timings"]["resumed_run_s"] = time.monotonic() - start
    result["out"] = out
    (run_dir / "timings.json").write_text(json.dumps(result["timings"]))
    print("two-node timings:", result["timings"])
    return result


def test_doctor_checks_both_nodes_and_skips_gpu_checks(outcome) -> None:
    doctor = outcome["doctor"]
    assert doctor.returncode == 0, doctor.stdout[-3000:] + doctor.stderr[-3000:]
    findings = json.loads((outcome["out"].parent / "doctor.json").read_text())
    nodes = {f["node"] for f in findings if f["node"] != "driver"}
    assert len(nodes) == 2
    by = {(f["node"], f["check"]): f for f in findings}
    for node in nodes:
        shared = by[(node, "checkpoint_dir")]
        assert shared["status"] == "OK" and "shared by 2 node(s)" in shared["message"]
        for check in GPU_CHECKS:
            assert by[(node, check)]["status"] == "SKIPPED" and "no GPU" in by[(node, check)]["message"]
        assert by[(node, "plugin")]["status"] == "OK"
        assert by[(node, "wandb")]["status"] == "OK" and "offline" in by[(node, "wandb")]["message"]
        node_checks = {check for where, check in by if where == node}
        assert node_checks == {"checkpoint_dir", "disk", "plugin", "wandb", *GPU_CHECKS}
        assert by[(node, "disk")]["status"] == "OK"
    assert "[SKIPPED]" in doctor.stdout and "SKIPPED (no GPU)" in doctor.stdout


def test_the_first_attempt_was_killed_after_its_second_checkpoint(outcome) -> None:
    assert outcome["killed"], outcome["first_output"][-4000:]
    assert outcome["first_rc"] != 0
    assert outcome["after_kill_records"] == [1, 2], outcome["after_kill_records"]


def test_resume_trains_and_logs_each_step_once_and_keeps_the_earlier_ones(outcome) -> None:
    assert outcome["second_rc"] == 0, outcome["second_output"][-6000:]
    out: Path = outcome["out"]
    records = _training_records(out)
    assert [r["step"] for r in records] == list(range(1, TOTAL_STEPS + 1))
    for record in records:
        missing = [name for name in METRIC_NAMES if PREFIX + name not in record["data"]]
        assert not missing, (record["step"], missing)
    train_log = (out / "train.log").read_text()
    assert "global_step_2" in train_log  # verl loaded the checkpoint of the killed attempt


def test_last_checkpoint_spans_both_nodes_and_converts(outcome) -> None:
    assert outcome["second_rc"] == 0, outcome["second_output"][-6000:]
    ckpt = outcome["out"] / "checkpoints"
    assert (ckpt / "latest_checkpointed_iteration.txt").read_text().strip() == str(TOTAL_STEPS)
    actor = ckpt / f"global_step_{TOTAL_STEPS}" / "actor"
    assert json.loads((actor / "fsdp_config.json").read_text())["world_size"] == 2
    for rank in (0, 1):
        assert (actor / f"model_world_size_2_rank_{rank}.pt").is_file()
    assert (outcome["out"] / "hf" / "config.json").is_file()  # the recipe converted it
    assert "converting checkpoint global_step_4" in outcome["second_output"]


def test_wandb_offline_runs_hold_every_smartthinker_metric_on_every_step(outcome) -> None:
    """The resumed run (steps 3 and 4) as wandb's own reader sees it. The killed attempt's offline run exists too,
    but what it holds is not asserted: wandb writes its transaction log in 32 KiB blocks and a SIGKILL loses the
    unflushed tail (steps 1 and 2 here, which the file logger and the checkpoint keep): see docs/gpu.md."""
    assert outcome["second_rc"] == 0, outcome["second_output"][-6000:]
    runs = sorted((outcome["out"] / "wandb").glob("offline-run-*"))
    assert len(runs) == 2, runs  # the killed attempt and the resumed one (a new wandb run of the same name)
    shown = subprocess.run(
        [str(WANDB), "leet", "inspect", "--json", str(runs[-1])], capture_output=True, text=True, timeout=300
    )  # wandb's own reader of the .wandb transaction log
    assert shown.returncode == 0, shown.stderr[-2000:]
    steps: dict[int, set[str]] = {}
    for line in shown.stdout.splitlines():
        record = json.loads(line)
        if record.get("type") == "history" and "training/global_step" in record["history"]["item"]:
            item = record["history"]["item"]
            steps.setdefault(int(item["_step"]), set()).update(item)
    assert sorted(steps) == list(range(SAVE_FREQ + 1, TOTAL_STEPS + 1))
    for step, keys in steps.items():
        missing = [name for name in METRIC_NAMES if PREFIX + name not in keys]
        assert not missing, (step, missing)
