"""The doctor on a real cluster shape: a GPU-less Ray head plus a node with a Ray ``GPU`` resource, and the recipe's
``--doctor-only`` with the recipe environment, as a Ray job would run it.

The cluster is real (two ``ray start`` nodes on 127.0.0.1, this test's own temp dirs and ports, stopped by pid; the
node helpers of tests/test_multinode_resume_cpu.py). What is FAKED: this machine has no GPU, so the worker node is
started with ``--num-gpus 1``, a Ray ``GPU`` resource without a device behind it. That is enough for what is tested:
verl places its GPU workers by that resource, and the doctor must count that node, run its GPU checks there in a
task Ray assigned the GPU to (``CUDA_VISIBLE_DEVICES`` set by Ray), and leave the GPU-less head to the every-node
checks. The fake shows in the findings: torch sees 0 of the 1 GPU Ray assigned (a PROBLEM on a real cluster too).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_multinode_resume_cpu import RAY, _alive_nodes, _cluster_env, _free_ports, _node_command, stop_nodes

REPO = Path(__file__).resolve().parents[1]
DATA_FILES = ("deepscaler/train.parquet", "aime25/test.parquet", "amc23/test.parquet", "math500/test.parquet")


def _start(command: list[str], gpus: int, log: Path, env: dict[str, str]) -> subprocess.Popen:
    command = list(command)
    command[command.index("--num-gpus") + 1] = str(gpus)
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


@pytest.fixture(scope="module")
def cpu_head_and_gpu_node(tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    """A Ray head with no GPU resource and a node with one (faked: see the module docstring)."""
    if not RAY.exists():
        pytest.skip("the ray CLI is not installed next to this interpreter")
    out = tmp_path_factory.mktemp("doctor-cluster")
    temp_dir = tempfile.mkdtemp(prefix="stvdc", dir="/tmp")  # short: Ray puts unix sockets under it
    worker_temp_dir = f"{temp_dir}w"
    os.mkdir(worker_temp_dir)
    env = _cluster_env(out)
    env.pop("VERL_PLATFORM")  # a GPU run: the nodes are not told to use verl's CPU platform
    (gcs,) = _free_ports(1)
    address = f"127.0.0.1:{gcs}"
    processes = []
    try:
        for name, head_port, node_temp, gpus in (("head", -gcs, temp_dir, 0), ("worker", gcs, worker_temp_dir, 1)):
            log = Path(temp_dir) / f"ray_{name}.log"
            processes.append(_start(_node_command(node_temp, head_port), gpus, log, env))
            deadline = time.monotonic() + 180
            while _alive_nodes(address, env) < len(processes):
                if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
                    raise RuntimeError(f"ray {name} did not come up: {log.read_text()[-3000:]}")
                time.sleep(2)
        yield address, env
    finally:
        stop_nodes(processes, temp_dir)
        subprocess.run(["rm", "-rf", temp_dir, worker_temp_dir], check=False)


def _findings(output: str) -> dict[tuple[str, str], tuple[str, str]]:
    """``(node, check) -> (status, message)`` from the doctor's lines ``[STATUS] NODE CHECK: MESSAGE``."""
    found = {}
    for line in output.splitlines():
        status, _, rest = line[1:].partition("] ")
        if line.startswith("[") and status in ("OK", "NOTE", "SKIPPED", "WARNING", "PROBLEM"):
            where, message = rest.split(": ", 1)
            node, check = where.rsplit(" ", 1)
            found[(node, check)] = (status, message)
    return found


@pytest.mark.slow
def test_recipe_doctor_only_on_a_gpu_less_head_checks_the_run_the_recipe_starts(
    cpu_head_and_gpu_node, tmp_path: Path
) -> None:
    """``bash recipes/run_1.5b.sh --doctor-only`` in a Ray job's environment (SMARTTHINKER_RAY_JOB=1, RAY_ADDRESS)
    with CHECKPOINT_DIR, NGPUS=2, NNODES=1, DATA_DIR and MODEL_PATH: the checks use exactly those values, the
    GPU-less head neither fails nor counts, the GPU node's checks run on the GPU Ray assigned, training never
    starts."""
    from smartthinker_verl.demo.assets import prepare

    address, cluster_env = cpu_head_and_gpu_node
    data = tmp_path / "data"
    for relative in DATA_FILES:
        (data / relative).parent.mkdir(parents=True, exist_ok=True)
        (data / relative).write_bytes(b"")
    env = {**cluster_env, "RAY_ADDRESS": address, "SMARTTHINKER_RAY_JOB": "1", "PYTHON": sys.executable,
           "CHECKPOINT_DIR": str(tmp_path / "ck"), "NGPUS": "2", "NNODES": "1", "DATA_DIR": str(data),
           "MODEL_PATH": str(prepare("tiny")), "EXPERIMENT": "doctor-only"}  # fmt: skip
    start = time.monotonic()
    done = subprocess.run(
        ["bash", str(REPO / "recipes" / "run_1.5b.sh"), "--doctor-only"],
        capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    print(f"doctor --doctor-only on the two-node cluster: {time.monotonic() - start:.1f} s")
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-4000:]
    assert "smartthinker_verl.launch.train" not in output and "run_ppo" not in output
    assert f"1 node(s) x 2 GPU(s); checkpoints {tmp_path}/ck/smartthinker/doctor-only" in output
    found = _findings(output)
    cluster = found[("driver", "cluster")]
    assert cluster[0] == "OK" and "(0 GPU)" in cluster[1] and "(1 GPU)" in cluster[1]  # no PROBLEM: 1 GPU node
    assert ("driver", "recipe_environment") not in found  # the recipe applied its environment
    nodes = {node for node, _ in found if node != "driver"}
    assert len(nodes) == 2
    head = next(n for n in nodes if found[(n, "gpus")][0] == "SKIPPED")
    gpu_node = next(n for n in nodes if n != head)
    assert "no Ray GPU resource" in found[(head, "gpus")][1]
    for node in nodes:  # the every-node checks, with the recipe's CHECKPOINT_DIR and MODEL_PATH (its size)
        assert found[(node, "checkpoint_dir")] == ("OK", "writable and shared by 2 node(s)")
        assert found[(node, "wandb")][0] == "OK"
        assert found[(node, "disk")][0] == "OK" and "2 checkpoint(s) x " in found[(node, "disk")][1]
        assert found[(node, "plugin")][0] == "OK"
    problems = sorted(check for (node, check), (status, _) in found.items() if status == "PROBLEM")
    assert problems == ["flash_attn", "gpus", "torch_cuda", "vllm"], output[-4000:]
    # the recipe trains with flash-attn: checked where it trains (the GPU node), the fix names the switch
    assert "flash-attn does not import" in found[(gpu_node, "flash_attn")][1] and "+attention=sdpa" in output
    assert found[(gpu_node, "gpus")][1].startswith("Ray offers 1 GPU(s) on this node, the run needs 2 per node")
    # the probe ran in a task Ray gave the (fake) GPU to: CUDA_VISIBLE_DEVICES is Ray's assignment
    assert "Ray assigned 1 GPU(s), torch sees 0" in found[(gpu_node, "torch_cuda")][1]
    assert "device 'cpu', not cuda" in found[(gpu_node, "vllm")][1]  # this machine's vLLM is the CPU build
    assert not any(p.name.startswith(".smartthinker-doctor") for p in (tmp_path / "ck").rglob("*"))


def test_doctor_only_runs_the_doctor_with_the_recipe_and_nothing_else(tmp_path: Path) -> None:
    """No cluster: a stand-in interpreter records what the recipe runs and passes, like a doctor that found nothing."""
    calls = tmp_path / "calls"
    fake_python = tmp_path / "python"
    fake_python.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexit 0\n')
    fake_python.chmod(0o755)
    env = {**os.environ, "PYTHON": str(fake_python), "DATA_DIR": str(tmp_path), "NGPUS": "8", "NNODES": "2",
           "CHECKPOINT_DIR": "/shared/ck"}  # fmt: skip
    done = subprocess.run(
        ["bash", str(REPO / "recipes" / "run_7b.sh"), "--doctor-only", "trainer.save_freq=5"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (line,) = calls.read_text().splitlines()
    assert line.startswith("-m smartthinker_verl.cli doctor --recipe run_7b ")
    for applied in ("trainer.n_gpus_per_node=8", "trainer.nnodes=2", "trainer.default_local_dir='/shared/ck/",
                    f"data.train_files='{tmp_path}/deepscaler/train.parquet'", "trainer.save_freq=5"):  # fmt: skip
        assert applied in line, line
    both = subprocess.run(
        ["bash", str(REPO / "recipes" / "run_7b.sh"), "--doctor-only", "--skip-doctor"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert both.returncode == 2 and "--doctor-only runs only the preflight" in both.stderr
