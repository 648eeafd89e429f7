"""`smartthinker-verl doctor`: the per-node checks as plain functions, sizing from real model configs, and the CLI on
a real local Ray (one node, this machine: no GPU, so every GPU check must read SKIPPED and never pass).

GPU-only facts (nvidia-smi rows, torch.cuda matmul results, vLLM's device) cannot be produced on this machine: those
checks are tested here on FAKE facts only (plain dicts/lists as the probes return them on a GPU node). The
multi-node run of the doctor (two real Ray nodes, shared checkpoint folder) is in
tests/test_multinode_resume_cpu.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smartthinker_verl.training import doctor
from smartthinker_verl.training.doctor import OK, PROBLEM, SKIPPED, Requirements
from smartthinker_verl.training.recipe_config import compose_config

REPO = Path(__file__).resolve().parents[1]


def req(**changes) -> Requirements:
    values = dict(
        gpus_per_node=4, nnodes=1, needs_gpu=True, rollout="vllm", gpu_memory_utilization=0.6,
        attention="flash_attention_2", checkpoint_dir="/ck", checkpoint_bytes=21_000_000_000, kept_checkpoints=2,
        wandb=True, model_path="deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
    )  # fmt: skip
    values.update(changes)
    return Requirements(**values)


# ------------------------------------------------------------------------------------------ sizing (real configs)


def test_parameter_count_of_r1_distill_1_5b_from_its_config() -> None:
    config = {
        "hidden_size": 1536,
        "num_hidden_layers": 28,
        "vocab_size": 151936,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "intermediate_size": 8960,
        "model_type": "qwen2",
        "tie_word_embeddings": False,
    }  # fmt: skip  (config.json of deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B)
    assert doctor.parameters_from_hf_config(config) == doctor.KNOWN_PARAMETERS["deepseek-r1-distill-qwen-1.5b"]


def test_parameter_count_matches_the_real_tiny_model() -> None:
    from transformers import AutoModelForCausalLM

    from smartthinker_verl.demo.assets import require

    path = require("tiny")
    model = AutoModelForCausalLM.from_pretrained(path)
    assert doctor.parameter_count(str(path)) == sum(p.numel() for p in model.parameters())


def test_checkpoints_of_the_recipes_fit_the_documented_disk_figures() -> None:
    """docs/gpu.md 'Checkpoints and disk': 12 bytes per parameter, two kept by default."""
    req_15 = doctor.requirements_from_config(compose_config())
    assert req_15.kept_checkpoints == 2 and req_15.checkpoint_bytes == 12 * 1_777_088_000
    every = doctor.requirements_from_config(compose_config(["trainer.max_actor_ckpt_to_keep=null"]))
    assert every.kept_checkpoints == 6  # 150 steps, one every 25: the ~128 GB of issue 10
    assert round(every.kept_checkpoints * every.checkpoint_bytes / 1e9) == 128
    assert doctor.saves_of_run(75, 25) == 3 and doctor.saves_of_run(10, 4) == 3 and doctor.saves_of_run(5, -1) == 0


def test_requirements_follow_the_composed_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = doctor.requirements_from_config(
        compose_config(["trainer.n_gpus_per_node=8", "trainer.logger=[console]", "data.train_files=d/t.parquet"])
    )
    assert (r.gpus_per_node, r.wandb, r.rollout, r.needs_gpu) == (8, False, "vllm", True)
    assert r.data_files[0] == f"{tmp_path}/d/t.parquet"  # relative to the launch folder, not a Ray worker's
    assert r.checkpoint_dir.startswith(f"{tmp_path}/checkpoints/smartthinker/")


# ------------------------------------------------------------------------------------ checks on FAKE GPU facts


def test_gpu_count_needs_the_recipes_gpus() -> None:
    assert doctor.check_gpu_count(4, req()).status == OK
    short = doctor.check_gpu_count(2, req())
    assert short.status == PROBLEM and "NGPUS=2" in short.fix
    none = doctor.check_gpu_count(0, req())
    assert none.status == PROBLEM and "no GPU visible" in none.message
    cpu_run = doctor.check_gpu_count(0, req(needs_gpu=False))
    assert cpu_run.status == SKIPPED and cpu_run.message.startswith("SKIPPED (no GPU)")


def test_driver_must_be_580_or_newer_for_cuda_13() -> None:
    assert doctor.check_driver("580.65.06", "13.0").status == OK
    old = doctor.check_driver("550.54.15", "13.0")
    assert old.status == PROBLEM and "driver >= 580" in old.fix
    assert doctor.check_driver("550.54.15", "12.8").status == OK
    assert doctor.check_driver(None, None).status == SKIPPED


def test_volta_is_refused() -> None:
    assert doctor.check_compute_capability([(9, 0), (9, 0)]).status == OK
    volta = doctor.check_compute_capability([(7, 0)])
    assert volta.status == PROBLEM and "7.0" in volta.message
    assert doctor.check_compute_capability([]).status == SKIPPED


def test_free_gpu_memory_against_vllms_reservation() -> None:
    free = [{"total_mib": 81559.0, "free_mib": 80000.0}, {"total_mib": 81559.0, "free_mib": 81000.0}]
    assert doctor.check_gpu_memory(free, 0.6).status == OK
    busy = doctor.check_gpu_memory([free[0], {"total_mib": 81559.0, "free_mib": 30000.0}], 0.6)
    assert busy.status == PROBLEM and busy.message.count("GPU 1") == 1 and "GPU 0" not in busy.message
    assert "gpu_memory_utilization" in busy.fix
    assert doctor.check_gpu_memory([], 0.6).status == SKIPPED


def test_matmul_failures_are_problems() -> None:
    assert doctor.check_matmul([None, None]).status == OK
    bad = doctor.check_matmul([None, "RuntimeError: CUDA error: no kernel image"])
    assert bad.status == PROBLEM and "GPU 1" in bad.message
    assert doctor.check_matmul([]).status == SKIPPED


def test_vllm_must_import_and_see_cuda() -> None:
    assert doctor.check_vllm(req(), {"imported": True, "version": "0.24.0", "device": "cuda"}, 4).status == OK
    missing = doctor.check_vllm(req(), {"imported": False, "error": "No module named 'vllm'"}, 4)
    assert missing.status == PROBLEM and "pip install" in missing.fix
    cpu_build = doctor.check_vllm(req(), {"imported": True, "version": "0.24.0", "device": "cpu"}, 4)
    assert cpu_build.status == PROBLEM
    no_gpu = doctor.check_vllm(req(), {"imported": True, "version": "0.24.0", "device": "cpu"}, 0)
    assert no_gpu.status == SKIPPED and "no GPU" in no_gpu.message
    assert doctor.check_vllm(req(rollout="sglang"), None, 0).status == "NOTE"


def test_flash_attn_or_the_sdpa_fallback() -> None:
    assert doctor.check_attention(req(), {"found": True, "version": "2.8.3"}, 4).status == OK
    missing = doctor.check_attention(req(), {"found": False}, 4)
    assert missing.status == PROBLEM and "attn_implementation=sdpa" in missing.fix
    broken = doctor.check_attention(req(), {"found": True, "error": "undefined symbol"}, 4)
    assert broken.status == PROBLEM
    assert doctor.check_attention(req(), {"found": True}, 0).status == SKIPPED
    assert doctor.check_attention(req(attention="sdpa"), {"found": False}, 4).status == "NOTE"


# ---------------------------------------------------------------------------- checks that need no GPU (real)


def test_disk_against_the_checkpoints_kept() -> None:
    assert doctor.check_disk(100_000_000_000, req()).status == OK
    short = doctor.check_disk(30_000_000_000, req())
    assert short.status == PROBLEM and "2 checkpoint(s) x 21.0 GB = 42 GB" in short.message
    assert "max_actor_ckpt_to_keep" in short.fix
    assert doctor.check_disk(10, req(checkpoint_bytes=None)).status == "NOTE"


def test_wandb_credentials_or_offline() -> None:
    assert doctor.check_wandb(req(), {}, netrc_has_wandb=False).status == PROBLEM
    assert "WANDB_MODE=offline" in doctor.check_wandb(req(), {}, netrc_has_wandb=False).fix
    assert doctor.check_wandb(req(), {"WANDB_MODE": "offline"}, netrc_has_wandb=False).status == OK
    assert doctor.check_wandb(req(), {"WANDB_API_KEY": "x"}, netrc_has_wandb=False).status == OK
    assert doctor.check_wandb(req(), {}, netrc_has_wandb=True).status == OK
    assert doctor.check_wandb(req(wandb=False), {}, netrc_has_wandb=False).status == "NOTE"


def test_shared_checkpoint_folder_needs_every_nodes_probe(tmp_path: Path) -> None:
    r = req(checkpoint_dir=str(tmp_path / "ck" / "run"))
    assert doctor.write_probe(r, "10.0.0.1/abc") is None and doctor.write_probe(r, "10.0.0.2/def") is None
    seen = doctor.read_probes(r)
    assert doctor.check_shared_dir("n1", seen, ["10.0.0.1/abc", "10.0.0.2/def"], None).status == OK
    alone = doctor.check_shared_dir("n1", ["10.0.0.1/abc"], ["10.0.0.1/abc", "10.0.0.2/def"], None)
    assert alone.status == PROBLEM and "10.0.0.2/def" in alone.message and "shared filesystem" in alone.fix
    doctor.remove_probe(r, "10.0.0.1/abc")
    doctor.remove_probe(r, "10.0.0.2/def")
    assert list((tmp_path / "ck" / "run").iterdir()) == []
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    try:
        error = doctor.write_probe(req(checkpoint_dir=str(tmp_path / "ro" / "x")), "n")
        if os.geteuid() != 0:  # root writes anyway
            assert error and "PermissionError" in error
    finally:
        (tmp_path / "ro").chmod(0o700)


def test_paths_readable(tmp_path: Path) -> None:
    findings = doctor.check_paths(req(), {str(tmp_path / "a.parquet"): False, "b": True}, None)
    assert findings[0].status == PROBLEM and "a.parquet" in findings[0].message and "DATA_DIR" in findings[0].fix
    assert findings[1].status == "NOTE"  # a hub id
    assert doctor.check_paths(req(model_path="/m"), {"b": True}, False)[1].status == PROBLEM


def test_every_line_names_the_node_and_a_problem_names_its_fix() -> None:
    line = doctor.Finding("disk", PROBLEM, "full", "free disk", node="10.0.0.1/ab").line()
    assert line == "[PROBLEM] 10.0.0.1/ab disk: full. Fix: free disk"


def test_probe_node_on_this_machine_skips_every_gpu_check(tmp_path: Path) -> None:
    """The real probe of a node without GPU (no Ray): GPU checks SKIPPED for a CPU run, a PROBLEM for a GPU run."""
    if doctor.gpu_facts()["gpus"]:
        pytest.skip("this machine has a GPU")
    data = tmp_path / "t.parquet"
    data.write_bytes(b"")
    base = dict(checkpoint_dir=str(tmp_path / "ck"), rollout="sglang", attention="sdpa", wandb=False)
    findings = {f["check"]: f for f in doctor.probe_node(req(needs_gpu=False, data_files=[str(data)], **base), "n")}
    for check in ("gpus", "driver", "compute_capability", "torch_cuda", "gpu_memory"):
        assert findings[check]["status"] == SKIPPED and "no GPU" in findings[check]["message"], findings[check]
    assert findings["plugin"]["status"] == OK and findings["data"]["status"] == OK
    gpu_run = {f["check"]: f for f in doctor.probe_node(req(**base), "n")}
    assert gpu_run["gpus"]["status"] == PROBLEM


@pytest.mark.slow
def test_doctor_cli_on_a_real_local_ray(tmp_path: Path) -> None:
    """The CLI composes the recipe config, starts a private local Ray (--address local), runs one task on its node
    and exits 2 on the one problem left (wandb without credentials); the GPU checks read SKIPPED."""
    data = tmp_path / "data.parquet"
    data.write_bytes(b"")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_ADDRESS"))}
    env.update(
        PYTHONPATH=f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}", HOME=str(tmp_path), RAY_AUTH_MODE="disabled"
    )
    done = subprocess.run(
        [sys.executable, "-m", "smartthinker_verl.cli", "doctor", "--address", "local",
         "--json", str(tmp_path / "f.json"),
         "trainer.device=cpu", "actor_rollout_ref.rollout.name=vllm", "trainer.n_gpus_per_node=1",
         f"data.train_files={data}", f"data.val_files=[{data}]", f"trainer.default_local_dir={tmp_path}/ck",
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
    assert "doctor: 1 problem(s)" in done.stderr
