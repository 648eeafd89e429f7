"""`smartthinker-verl doctor`: the checks as plain functions, sizing from real safetensors headers, the real probes
on this machine, and the CLI on a real local Ray (one node, a CPU run: every GPU check must read SKIPPED).

GPU-only facts (torch's view of assigned GPUs, compute capabilities, vLLM's device) cannot be produced on this
machine: those checks are tested here on FAKE facts only (plain dicts/lists/strings as the probes return them on a
GPU node). A cluster with a GPU-less head and a node with a (faked) Ray GPU resource, and the recipe's
``--doctor-only``, are in tests/test_doctor_cluster.py; two real Ray nodes sharing a checkpoint folder in
tests/test_multinode_resume_cpu.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smartthinker_verl.launch import doctor
from smartthinker_verl.launch.compose import DEFAULT_CONFIG_NAME, compose_config, prepare
from smartthinker_verl.launch.doctor import NOTE, OK, PROBLEM, SKIPPED, WARNING, Requirements

REPO = Path(__file__).resolve().parents[1]


def req(**changes) -> Requirements:
    values = dict(
        gpus_per_node=4, nnodes=1, needs_gpu=True, rollout="vllm", checkpoint_dir="/ck",
        checkpoint_bytes=21_000_000_000, kept_checkpoints=2, wandb=True, estimator="smartthinker", flash_attn=True,
    )  # fmt: skip
    values.update(changes)
    return Requirements(**values)


# ------------------------------------------------------------------------------------------ sizing (real weights)


def test_parameter_count_of_the_real_tiny_model_from_its_safetensors_header() -> None:
    from transformers import AutoModelForCausalLM

    from smartthinker_verl.demo.assets import prepare

    path = prepare("tiny")
    model = AutoModelForCausalLM.from_pretrained(path)
    assert doctor.parameter_count(str(path)) == sum(p.numel() for p in model.parameters())


def test_parameter_count_of_a_sharded_folder_reads_every_shard_of_its_index(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(3, 4), "b": torch.zeros(5)}, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file({"c": torch.zeros(2, 2, 2, dtype=torch.bfloat16)}, str(tmp_path / "model-00002-of-00002.safetensors"))
    (tmp_path / "stray.safetensors").write_bytes(b"not listed in the index: never read")
    index = {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
             "c": "model-00002-of-00002.safetensors"}  # fmt: skip
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": index}))
    assert doctor.parameter_count(str(tmp_path)) == 12 + 5 + 8


def test_model_size_unknown_offline_or_without_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache: the hub id is not downloaded here
    assert doctor.parameter_count("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B") is None
    (tmp_path / "m").mkdir()
    assert doctor.parameter_count(str(tmp_path / "m")) is None  # a folder without safetensors
    assert doctor.check_disk(10**12, req(checkpoint_bytes=None)).status == NOTE


def test_checkpoints_kept_follow_save_freq_and_max_to_keep(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """docs/gpu.md 'Checkpoints and disk': 12 bytes per parameter, two kept by default (150 steps, one every 25)."""
    from smartthinker_verl.demo.assets import prepare

    tiny = f"actor_rollout_ref.model.path={prepare('tiny')}"
    req_15 = doctor.requirements_from_config(compose_config([tiny]))
    assert req_15.kept_checkpoints == 2 and req_15.checkpoint_bytes == 12 * doctor.parameter_count(str(prepare("tiny")))
    every = doctor.requirements_from_config(compose_config([tiny, "trainer.max_actor_ckpt_to_keep=null"]))
    assert every.kept_checkpoints == 6
    assert doctor.saves_of_run(75, 25) == 3 and doctor.saves_of_run(10, 4) == 3 and doctor.saves_of_run(5, -1) == 0


def test_requirements_follow_the_composed_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    overrides = ["trainer.n_gpus_per_node=8", "trainer.logger=[console]", "trainer.default_local_dir=ck/r"]
    r = doctor.requirements_from_config(prepare(overrides, config_name=DEFAULT_CONFIG_NAME, require_files=False))
    assert (r.gpus_per_node, r.wandb, r.rollout, r.needs_gpu) == (8, False, "vllm", True)
    assert r.checkpoint_dir == f"{tmp_path}/ck/r"  # relative to the launch folder, not a Ray worker's


# ------------------------------------------------------------------------------------ cluster and GPU nodes


def test_a_gpu_run_counts_only_the_nodes_with_a_ray_gpu_resource() -> None:
    head, gpu_node = {"name": "head", "gpus": 0.0}, {"name": "w1", "gpus": 8.0}
    assert [f.status for f in doctor.check_cluster([head, gpu_node], req(nnodes=1))] == [OK]
    short = doctor.check_cluster([head, gpu_node], req(nnodes=2))
    assert short[1].status == PROBLEM and "1 node(s) with a Ray GPU resource" in short[1].message
    assert "NNODES" in short[1].fix
    # a CPU run (trainer.device=cpu) places its workers on any node: all of them count
    assert [f.status for f in doctor.check_cluster([head, gpu_node], req(nnodes=2, needs_gpu=False))] == [OK]


def test_gpu_checks_off_a_gpu_node_are_skipped_never_passed() -> None:
    skipped = doctor.skipped_gpu_checks("no Ray GPU resource on this node")
    assert [f.check for f in skipped] == list(doctor.GPU_CHECKS)
    assert all(f.status == SKIPPED and f.message.startswith("SKIPPED (no GPU)") for f in skipped)


# ------------------------------------------------------------------------------- checks on FAKE GPU facts


def test_gpu_count_is_the_nodes_ray_gpu_resource() -> None:
    assert doctor.check_gpu_count(4, req()).status == OK
    short = doctor.check_gpu_count(2, req())
    assert short.status == PROBLEM and "NGPUS=2" in short.fix and "the run needs 4" in short.message


def test_torch_must_see_every_gpu_ray_assigned() -> None:
    assert doctor.check_torch_cuda(4, {"count": 4, "torch": "2.11.0"}).status == OK
    driver_too_old = {"count": 0, "cuda": "13.0", "error": "RuntimeError: The NVIDIA driver on your system is too old"}
    bad = doctor.check_torch_cuda(4, driver_too_old)
    assert bad.status == PROBLEM and "too old" in bad.message and "torch sees 0" in bad.message
    assert "NVIDIA driver for torch's CUDA 13.0 runtime (>= 580 for CUDA 13" in bad.fix
    fewer = doctor.check_torch_cuda(2, {"count": 1, "visible": "3"})
    assert fewer.status == PROBLEM and "CUDA_VISIBLE_DEVICES='3'" in fewer.message


def test_volta_is_refused() -> None:
    assert doctor.check_compute_capability([(9, 0), (9, 0)]).status == OK
    volta = doctor.check_compute_capability([[7, 0]])  # JSON from the probe: lists
    assert volta.status == PROBLEM and "7.0" in volta.message
    assert doctor.check_compute_capability([]).status == NOTE


def test_vllm_must_be_the_cuda_build() -> None:
    assert doctor.check_vllm(req(), {"version": "0.24.0", "device": "cuda"}).status == OK
    missing = doctor.check_vllm(req(), {"error": "No module named 'vllm'"})
    assert missing.status == PROBLEM and "pip install" in missing.fix
    cpu_build = doctor.check_vllm(req(), {"version": "0.24.0", "device": "cpu"})
    assert cpu_build.status == PROBLEM and "CUDA build" in cpu_build.fix
    assert doctor.check_vllm(req(rollout="sglang"), None).status == NOTE


# ---------------------------------------------------------------------------- checks that need no GPU (real)


def test_disk_against_the_checkpoints_kept() -> None:
    assert doctor.check_disk(100_000_000_000, req()).status == OK
    short = doctor.check_disk(30_000_000_000, req())
    assert short.status == PROBLEM and "2 checkpoint(s) x 21.0 GB = 42 GB" in short.message
    assert "max_actor_ckpt_to_keep" in short.fix
    assert doctor.check_disk(10, req(checkpoint_bytes=None)).status == NOTE


def test_wandb_credentials_or_offline() -> None:
    assert doctor.check_wandb(req(), {}, netrc_has_wandb=False).status == PROBLEM
    assert "WANDB_MODE=offline" in doctor.check_wandb(req(), {}, netrc_has_wandb=False).fix
    assert doctor.check_wandb(req(), {"WANDB_MODE": "offline"}, netrc_has_wandb=False).status == OK
    assert doctor.check_wandb(req(), {"WANDB_API_KEY": "x"}, netrc_has_wandb=False).status == OK
    assert doctor.check_wandb(req(), {}, netrc_has_wandb=True).status == OK
    assert doctor.check_wandb(req(wandb=False), {}, netrc_has_wandb=False).status == NOTE


def test_shared_checkpoint_folder_needs_every_nodes_probe(tmp_path: Path) -> None:
    """The real probe every node runs (no Ray), once every node wrote its probe file: no GPU check in it."""
    r = req(checkpoint_dir=str(tmp_path / "ck" / "run"), wandb=False)
    nodes = ["10.0.0.1/abc", "10.0.0.2/def"]
    assert doctor.write_probe(r, nodes[0]) is None and doctor.write_probe(r, nodes[1]) is None
    findings = {f.check: f for f in doctor.probe_node(r, nodes, None)}
    assert list(findings) == ["checkpoint_dir", "plugin", "disk", "wandb"]
    assert findings["checkpoint_dir"].status == OK and findings["plugin"].status == OK
    alone = doctor.check_shared_dir(["10.0.0.1/abc"], nodes, None)
    assert alone.status == PROBLEM and "10.0.0.2/def" in alone.message and "shared filesystem" in alone.fix
    doctor.remove_probe(r, nodes[0])
    doctor.remove_probe(r, nodes[1])
    assert list((tmp_path / "ck" / "run").iterdir()) == []
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    try:
        error = doctor.write_probe(req(checkpoint_dir=str(tmp_path / "ro" / "x")), "n")
        if os.geteuid() != 0:  # root writes anyway
            assert error and "PermissionError" in error
            assert "must be a folder this node can create" in doctor.check_shared_dir([], ["n"], error).fix
    finally:
        (tmp_path / "ro").chmod(0o700)


def test_every_line_names_the_node_and_a_problem_names_its_fix() -> None:
    line = doctor.Finding("disk", PROBLEM, "full", "free disk", node="10.0.0.1/ab").line()
    assert line == "[PROBLEM] 10.0.0.1/ab disk: full. Fix: free disk"


def test_the_plugin_check_fails_where_verl_does_not_load_the_plugin(tmp_path: Path) -> None:
    """The one plugin check (cluster_check.run_checks, the doctor's `plugin`) in a process where verl loads no
    entry point and no VERL_USE_EXTERNAL_MODULES: nothing of SmartThinker is registered, and it says so."""
    env = {k: v for k, v in os.environ.items() if k != "VERL_USE_EXTERNAL_MODULES"}
    env.update(PYTHONPATH=f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}", VERL_USE_EXTERNAL_PLUGINS="none")
    done = subprocess.run(
        [sys.executable, "-m", "smartthinker_verl.launch.cluster_check", "--local"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    report = json.loads(done.stdout)["driver"]
    assert report["errors"] == [
        "`import verl` did not load smartthinker_verl.plugin: set VERL_USE_EXTERNAL_MODULES",
        "reward manager 'smartthinker' is not registered",
        "advantage estimator 'smartthinker' is not registered",
    ]
    assert "advantages" not in report and "scores" not in report


def test_gpu_probe_on_this_gpu_less_machine_reports_the_missing_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real GPU probe, run where Ray would have assigned 1 GPU: this machine has none (CUDA_VISIBLE_DEVICES
    set to "0" as Ray sets it), so torch sees 0 and that is the problem, the other GPU figures are not reported."""
    if os.path.exists("/dev/nvidia0"):
        pytest.skip("this machine has a GPU")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    findings = {f.check: f for f in doctor.probe_gpus(req(gpus_per_node=1, rollout="sglang"), 1.0, 1)}
    assert list(findings) == list(doctor.GPU_CHECKS)
    assert findings["gpus"].status == OK  # Ray offers what the run asks
    assert findings["torch_cuda"].status == PROBLEM and "torch sees 0" in findings["torch_cuda"].message
    assert "CUDA_VISIBLE_DEVICES='0'" in findings["torch_cuda"].message
    assert findings["compute_capability"].status == NOTE
    # No flash-attn on this machine: imported in the probe, it fails, and the fix names the switch.
    assert findings["flash_attn"].status == PROBLEM and "+attention=sdpa" in findings["flash_attn"].fix


def test_recipe_environment_ignored_by_the_plain_cli_is_a_warning() -> None:
    (warning,) = doctor.check_recipe_environment({"NGPUS": "8", "CHECKPOINT_DIR": "/shared/ck", "HOME": "/h"}, None)
    assert warning.status == WARNING
    assert warning.message.startswith("NGPUS, CHECKPOINT_DIR set here") and "--doctor-only" in warning.fix
    assert doctor.check_recipe_environment({"NGPUS": "8"}, "run_1.5b") == []  # the recipe applied it
    assert doctor.check_recipe_environment({"HOME": "/h"}, None) == []
    assert doctor.check_recipe_environment({"NNODES": "2"}, None)[0].check == "recipe_environment"


@pytest.mark.slow
def test_doctor_cli_on_a_real_local_ray(tmp_path: Path) -> None:
    """The CLI composes the recipe config, starts a private local Ray (--address local), runs its tasks on the node
    and exits 2 on the one problem left (wandb without credentials); the GPU checks read SKIPPED (a CPU run)."""
    from smartthinker_verl.demo.assets import prepare

    data = tmp_path / "data.parquet"
    data.write_bytes(b"")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_ADDRESS"))}
    env.update(
        PYTHONPATH=f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}",
        HOME=str(tmp_path),
        RAY_AUTH_MODE="disabled",
        NGPUS="8",  # a recipe's variable, ignored by the plain CLI: a warning, not a problem
    )
    done = subprocess.run(
        [sys.executable, "-m", "smartthinker_verl.cli", "doctor", "--address", "local",
         "--json", str(tmp_path / "f.json"),
         "trainer.device=cpu", "actor_rollout_ref.rollout.name=vllm", "trainer.n_gpus_per_node=1",
         f"data.train_files={data}", f"data.val_files=[{data}]", f"trainer.default_local_dir={tmp_path}/ck",
         f"actor_rollout_ref.model.path={prepare('tiny')}",
         # No checkpoints, so the disk finding does not depend on this machine's free space (CI had 42 GB; the
         # recipe keeps 2 checkpoints x 21 GB of its 1.5B model). check_disk has its own tests above.
         "trainer.save_freq=-1", "trainer.logger=[console,wandb]"],
        capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    findings = json.loads((tmp_path / "f.json").read_text())
    problems = [f for f in findings if f["status"] == PROBLEM]
    assert [p["check"] for p in problems] == ["wandb"], problems
    assert "[PROBLEM]" in done.stderr and "Fix: `wandb login` on every node" in done.stderr
    assert "SKIPPED (no GPU)" in done.stdout
    by_check = {f["check"]: f for f in findings if f["node"] != "driver"}
    assert by_check["checkpoint_dir"]["status"] == OK and by_check["plugin"]["status"] == OK
    assert by_check["disk"]["status"] == OK and "0 checkpoint(s)" in by_check["disk"]["message"], by_check["disk"]
    assert not any(p.name.startswith(".smartthinker-doctor") for p in (tmp_path / "ck").iterdir())
    assert [f["check"] for f in findings if f["status"] == WARNING] == ["recipe_environment"]
    assert "doctor: 1 problem(s), 1 warning(s)" in done.stderr


def test_flash_attn_is_checked_on_gpu_nodes_where_the_config_trains_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recipe trains with flash-attn: each GPU node must import it, else the fix names the sdpa switch; with
    ``+attention=sdpa`` (or on CPU) nothing needs it. Import results are FAKE here (no GPU build on this machine)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert doctor.requirements_from_config(compose_config()).flash_attn is True
    assert doctor.requirements_from_config(compose_config(["+attention=sdpa"])).flash_attn is False
    assert doctor.requirements_from_config(compose_config(["+platform=cpu"])).flash_attn is False
    assert doctor.check_flash_attn(req(), {"version": "2.8.3"}).status == OK
    missing = doctor.check_flash_attn(req(), {"error": "No module named 'flash_attn'"})
    assert missing.status == PROBLEM and "No module named 'flash_attn'" in missing.message
    assert "+attention=sdpa" in missing.fix and "docs/gpu.md" in missing.fix
    assert doctor.check_flash_attn(req(flash_attn=False), None).status == NOTE
