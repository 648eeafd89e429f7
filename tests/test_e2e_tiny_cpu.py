"""End to end through verl's real trainer on CPU: `bash recipes/run_tiny_cpu.sh` into a temporary OUTPUT_DIR.

Real verl (verl's `run_ppo` through the recipes' entry point on the recipe config + `+platform=cpu`, Ray, FSDP2, the
reward loop), verl's own vLLM rollout on vLLM's CPU build (vLLMReplica / vLLMHttpServer, weights pushed from FSDP
into vLLM after every step), the project's estimator, reward manager, scorer and CPU platform, the tiny Qwen2 asset,
and the checkpoint converter. Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from smartthinker_verl.platforms.cpu.runtime import processes_using
from smartthinker_verl.step_metrics import METRIC_NAMES, PREFIX

REPO = Path(__file__).resolve().parents[1]
TOTAL_STEPS = 3


def _ray_dirs() -> set[str]:
    return {str(p) for p in Path("/tmp").glob("stv-ray-*")}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_cpu")
    before = _ray_dirs()
    env = dict(os.environ, OUTPUT_DIR=str(out), TOTAL_STEPS=str(TOTAL_STEPS))
    result = subprocess.run(
        ["bash", str(REPO / "recipes" / "run_tiny_cpu.sh")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    new_ray_dirs = _ray_dirs() - before
    return out, result, new_ray_dirs


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_recipe_exits_cleanly_and_leaves_no_ray_behind(tiny_run):
    out, result, new_ray_dirs = tiny_run
    assert result.returncode == 0, (result.stdout[-4000:], result.stderr[-4000:])
    log = (out / "train.log").read_text()
    # verl started Ray in the run's private folder...
    ray_dir = re.search(r"'_temp_dir': '(/tmp/stv-ray-[^']+)'", log).group(1)
    # ...and the recipe removed it and every process of that Ray (only this run's folder is checked: other jobs on a
    # shared machine may run CPU recipes, with folders of their own, at the same time)
    assert not Path(ray_dir).exists() and ray_dir not in new_ray_dirs
    assert processes_using(ray_dir) == []
    assert f"step {TOTAL_STEPS}/{TOTAL_STEPS}" in result.stdout  # compact per-step progress was shown


@pytest.mark.slow
def test_smartthinker_metrics_are_logged_on_every_training_step(tiny_run):
    out, result, _ = tiny_run
    assert result.returncode == 0, result.stderr[-4000:]
    training = [r for r in _records(out) if "training/global_step" in r["data"]]
    assert [r["step"] for r in training] == list(range(1, TOTAL_STEPS + 1))
    for record in training:
        missing = [name for name in METRIC_NAMES if PREFIX + name not in record["data"]]
        assert not missing, (record["step"], missing)
    grad_norms = [r["data"]["actor/grad_norm"] for r in training]
    assert any(g > 0 for g in grad_norms), grad_norms
    # a validation pass ran (verl logs it on the last step)
    assert any(k.startswith("val-core/") for k in training[-1]["data"])


@pytest.mark.slow
def test_rollouts_came_from_verls_vllm_server(tiny_run):
    out, result, _ = tiny_run
    assert result.returncode == 0, result.stderr[-4000:]
    log = (out / "train.log").read_text()
    assert "vLLMHttpServer" in log  # verl's own vLLM rollout server actor generated the responses
    training = [r["data"] for r in _records(out) if "training/global_step" in r["data"]]
    # After every update verl pushes the FSDP weights into vLLM: the probabilities vLLM sampled with match the
    # trained actor's (measured 3e-7 with both in float32; 0.002 while the actor still computed under bfloat16
    # autocast); stale weights in vLLM would differ by the size of an update.
    diffs = [d["training/rollout_probs_diff_mean"] for d in training]
    assert all(diff < 1e-4 for diff in diffs), diffs


@pytest.mark.slow
def test_the_length_penalty_changes_real_advantages_on_some_step(tiny_run):
    """From verl's own logged metrics: mixed groups whose correct answers differ in length get shaped."""
    out, result, _ = tiny_run
    assert result.returncode == 0, result.stderr[-4000:]
    training = [r["data"] for r in _records(out) if "training/global_step" in r["data"]]
    shaped = [(d[PREFIX + "shaped_group_frac"], d[PREFIX + "penalized_frac"]) for d in training]
    assert any(group > 0 and penalized > 0 for group, penalized in shaped), shaped


@pytest.mark.slow
def test_checkpoint_has_verl_layout(tiny_run):
    out, result, _ = tiny_run
    assert result.returncode == 0, result.stderr[-4000:]
    ckpt = out / "checkpoints"
    assert (ckpt / "latest_checkpointed_iteration.txt").read_text().strip() == str(TOTAL_STEPS)
    actor = ckpt / f"global_step_{TOTAL_STEPS}" / "actor"
    for name in (
        "model_world_size_1_rank_0.pt",
        "optim_world_size_1_rank_0.pt",
        "extra_state_world_size_1_rank_0.pt",
        "fsdp_config.json",
        "huggingface/config.json",
    ):
        assert (actor / name).is_file(), name
    assert json.loads((actor / "fsdp_config.json").read_text())["world_size"] == 1
    assert (ckpt / f"global_step_{TOTAL_STEPS}" / "data.pt").is_file()


@pytest.mark.slow
def test_converted_model_loads_generates_and_differs_from_the_start(tiny_run):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from smartthinker_verl.demo.assets import prepare

    out, result, _ = tiny_run
    assert result.returncode == 0, result.stderr[-4000:]
    hf = out / "hf"
    model = AutoModelForCausalLM.from_pretrained(hf).eval()
    tokenizer = AutoTokenizer.from_pretrained(hf)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2 + 2?"}], add_generation_prompt=True, return_tensors="pt"
    )
    input_ids = prompt["input_ids"] if hasattr(prompt, "keys") else prompt
    generated = model.generate(input_ids, max_new_tokens=8, do_sample=False)
    assert generated.shape[1] > input_ids.shape[1]
    trained = load_file(hf / "model.safetensors")
    initial = load_file(prepare("tiny") / "model.safetensors")
    changed = [
        name
        for name in initial
        if name in trained and not torch.equal(initial[name], trained[name].to(initial[name].dtype))
    ]
    assert changed, "training did not change any weight"


@pytest.mark.slow
def test_a_failed_run_says_what_happened_and_leaves_no_ray_behind(tmp_path):
    out = tmp_path / "failed"
    before = _ray_dirs()
    env = dict(os.environ, OUTPUT_DIR=str(out))
    result = subprocess.run(
        ["bash", str(REPO / "recipes" / "run_tiny_cpu.sh"), f"data.train_files={tmp_path}/missing.parquet"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode != 0
    assert "training FAILED" in result.stderr
    assert "what happened:" in result.stderr and "what to do:" in result.stderr
    log = (out / "train.log").read_text()
    match = re.search(r"'_temp_dir': '(/tmp/stv-ray-[^']+)'", log)
    if match:  # Ray had started: its folder is gone and none of its processes survive (other jobs' folders may exist)
        assert match.group(1) not in _ray_dirs() - before
        assert processes_using(match.group(1)) == []
    else:  # nothing of this run's Ray was named in the log: no folder may be left at all
        assert _ray_dirs() - before == set()
