"""The GPU recipes (recipes/run_*.sh) end to end on CPU: `--dry-run` composes the real verl config, validates it
(verl's validate_config + SmartThinker's checks, real plugin registration) and prints it as YAML on stdout.

A real run is only started here where the preflight must stop it (missing data); training itself needs GPUs.
"""

from __future__ import annotations

import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"

#: recipe -> (model, paper's training steps, rollout tensor parallel size, vLLM max_num_seqs: docs/gpu.md "GPU memory")
RECIPE_SETTINGS = {
    "run_1.5b.sh": ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", 150, 1, 256),
    "run_7b.sh": ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 75, 2, 128),
    "run_qwen3_4b.sh": ("Qwen/Qwen3-4B-Thinking-2507", 50, 1, 36),
}
#: recipe -> (vLLM gpu_memory_utilization, token budget with flash-attn, budgets without: docs/gpu.md)
RECIPE_MEMORY = {
    "run_1.5b.sh": (0.6, 32768, 12288),
    "run_7b.sh": (0.6, 16384, 9728),
    "run_qwen3_4b.sh": (0.75, 24576, 11264),
}


def run_recipe(recipe: str, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MODEL_PATH", "DATA_DIR", "EXPERIMENT", "CHECKPOINT_DIR", "RESUME", "SMARTTHINKER_SKIP_DOCTOR")
    }
    environment.update({"PYTHON": sys.executable, "NGPUS": "4", "NNODES": "1", "PROJECT": "smartthinker", **env})
    return subprocess.run(
        ["bash", str(RECIPES / recipe), *args], capture_output=True, text=True, env=environment, timeout=300, cwd=cwd
    )


def write_data_files(root: Path) -> None:
    """Placeholders at the paths the recipes read (the dry run checks existence, not content)."""
    for relative in ("deepscaler/train.parquet", "aime25/test.parquet", "amc23/test.parquet", "math500/test.parquet"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(b"")


def test_run_1_5b_dry_run_prints_the_papers_config_with_the_override(tmp_path: Path) -> None:
    done = run_recipe("run_1.5b.sh", "--dry-run", "trainer.total_epochs=7", DATA_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr[-4000:]
    config = yaml.safe_load(done.stdout)  # stdout is only the YAML

    assert config["trainer"]["total_epochs"] == 7  # the override
    data, actor_rollout_ref, algorithm = config["data"], config["actor_rollout_ref"], config["algorithm"]
    actor, rollout = actor_rollout_ref["actor"], actor_rollout_ref["rollout"]
    # The paper's setup (docs/algorithm.md, section 7).
    assert (data["train_batch_size"], rollout["n"], actor["ppo_mini_batch_size"]) == (64, 8, 16)
    assert actor["optim"]["lr"] == pytest.approx(1e-6)
    assert rollout["temperature"] == pytest.approx(0.6) and rollout["top_p"] == 1.0
    assert (data["max_prompt_length"], data["max_response_length"]) == (1500, 8000)
    assert (rollout["prompt_length"], rollout["response_length"]) == (1500, 8000)
    assert actor["loss_agg_mode"] == "token-mean"
    assert actor["use_kl_loss"] is False and algorithm["use_kl_in_reward"] is False
    assert actor["entropy_coeff"] == 0
    assert rollout["name"] == "vllm"
    trainer = config["trainer"]
    assert (trainer["save_freq"], trainer["n_gpus_per_node"], trainer["nnodes"]) == (25, 4, 1)
    assert trainer["logger"] == ["console", "wandb"]
    assert trainer["total_training_steps"] == 150
    # SmartThinker plugged in.
    assert algorithm["adv_estimator"] == "smartthinker"
    # No option block: the defaults are the options dataclasses' (the paper's), the run context interpolated.
    assert "smartthinker" not in algorithm and "smartthinker" not in config["reward"]
    assert algorithm["run_context"] == {"response_limit": 8000, "group_size": 8, "calls_per_step": 1}
    assert config["reward"]["reward_manager"]["name"] == "smartthinker"
    assert config["reward"]["custom_reward_function"]["path"] is None  # one grading route: the manager's scorer
    # Recipe wiring: data under DATA_DIR, run name from what matters.
    assert data["train_files"] == f"{tmp_path}/deepscaler/train.parquet"
    assert data["val_files"] == [f"{tmp_path}/{name}/test.parquet" for name in ("aime25", "amc23", "math500")]
    assert trainer["experiment_name"] == "deepseek-r1-distill-qwen-1.5b-smartthinker-g8-b64-lr1e-06-resp8000"
    # relative to the launch folder, made absolute at composition (Ray workers keep the raylet's cwd)
    assert trainer["default_local_dir"] == f"{Path.cwd()}/checkpoints/smartthinker/{trainer['experiment_name']}"
    # issue 10: vLLM's context is prompt + response (not the model's), two checkpoints kept, verl's auto resume
    assert rollout["max_model_len"] == 1500 + 8000
    assert (trainer["max_actor_ckpt_to_keep"], trainer["resume_mode"]) == (2, "auto")
    # no flash-attn on this machine, and that changes nothing: the workers get flash-attn, and the launch says how
    # to switch, in one line
    assert actor_rollout_ref["model"]["override_config"]["attn_implementation"] == "flash_attention_2"
    assert actor_rollout_ref["model"]["use_remove_padding"] is True
    assert actor_rollout_ref["actor"]["ppo_max_token_len_per_gpu"] == 32768
    (note,) = [line for line in done.stderr.splitlines() if "attention: flash-attn" in line]
    assert "every GPU node needs flash-attn" in note and "add +attention=sdpa" in note
    # A dry run reports missing data as warnings (and still succeeds); verl's own print stays off stdout.
    assert "WARNING" in done.stderr and f"{tmp_path}/deepscaler/train.parquet does not exist" in done.stderr
    assert "[validate_config]" not in done.stdout


@pytest.mark.parametrize("recipe", sorted(RECIPE_SETTINGS))
def test_each_recipe_dry_run_has_its_model_steps_and_env_overrides(recipe: str, tmp_path: Path) -> None:
    model, steps, tensor_parallel, max_num_seqs = RECIPE_SETTINGS[recipe]
    write_data_files(tmp_path)
    done = run_recipe(recipe, "--dry-run", DATA_DIR=str(tmp_path), NGPUS="8", PROJECT="p1")
    assert done.returncode == 0, done.stderr[-4000:]
    config = yaml.safe_load(done.stdout)
    assert config["actor_rollout_ref"]["model"]["path"] == model
    assert config["trainer"]["total_training_steps"] == steps
    assert config["actor_rollout_ref"]["rollout"]["tensor_model_parallel_size"] == tensor_parallel
    assert config["trainer"]["n_gpus_per_node"] == 8 and config["trainer"]["project_name"] == "p1"
    assert config["trainer"]["experiment_name"].startswith(Path(model).name.lower() + "-smartthinker-")
    assert "does not exist" not in done.stderr  # every data file is there
    rollout = config["actor_rollout_ref"]["rollout"]
    assert (rollout["max_model_len"], rollout["max_num_seqs"]) == (9500, max_num_seqs)
    # FSDP2, the engine every CPU run and test here uses, for every role that selects one (and verl's engine copy).
    roles = config["actor_rollout_ref"]["actor"], config["actor_rollout_ref"]["ref"], config["critic"]
    for role, engine in zip(roles, ("fsdp_config", "fsdp_config", "fsdp"), strict=True):
        assert role["strategy"] == role[engine]["strategy"] == "fsdp2"


@pytest.mark.parametrize("recipe", sorted(RECIPE_MEMORY))
def test_each_recipe_dry_run_has_its_budgets_per_attention_and_an_absolute_run_folder(
    recipe: str, tmp_path: Path
) -> None:
    """flash-attn's packed budget by default; ``+attention=sdpa`` gives sdpa, padded micro-batches and the model's
    smaller budget (the log-prob passes follow); the default run folder is made absolute against the launch folder
    (verl's trainer runs in a Ray actor)."""
    utilization, budget, sdpa_budget = RECIPE_MEMORY[recipe]
    launch = tmp_path / "launch"
    launch.mkdir()
    for switch, expected in (((), budget), (("+attention=sdpa",), sdpa_budget)):
        done = run_recipe(recipe, "--dry-run", *switch, cwd=launch, DATA_DIR=str(tmp_path))
        assert done.returncode == 0, done.stderr[-4000:]
        config = yaml.safe_load(done.stdout)
        model, actor, rollout, ref = (config["actor_rollout_ref"][k] for k in ("model", "actor", "rollout", "ref"))
        assert model["use_remove_padding"] is not switch
        assert model["override_config"]["attn_implementation"] == ("sdpa" if switch else "flash_attention_2")
        assert actor["ppo_max_token_len_per_gpu"] == expected
        assert rollout["log_prob_max_token_len_per_gpu"] == ref["log_prob_max_token_len_per_gpu"] == expected
        assert rollout["gpu_memory_utilization"] == utilization
    trainer = config["trainer"]
    assert trainer["default_local_dir"] == f"{launch}/checkpoints/smartthinker/{trainer['experiment_name']}"


def test_recipes_prefer_the_gpu_environment_over_the_cpu_one(tmp_path: Path) -> None:
    """With both .venv-gpu (make install-gpu) and .venv (make install: vLLM's CPU build), the recipes take the
    GPU one."""
    shutil.copytree(RECIPES, tmp_path / "recipes")
    for venv in (".venv", ".venv-gpu"):
        interpreter = tmp_path / venv / "bin" / "python"
        interpreter.parent.mkdir(parents=True)
        interpreter.write_text(f"#!/bin/sh\necho {venv}\n")
        interpreter.chmod(0o755)
    environment = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    done = subprocess.run(
        ["bash", str(tmp_path / "recipes" / "run_1.5b.sh"), "--dry-run"], capture_output=True, text=True,
        env=environment, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [".venv-gpu"]
    shutil.rmtree(tmp_path / ".venv-gpu")
    done = subprocess.run(
        ["bash", str(tmp_path / "recipes" / "run_1.5b.sh"), "--dry-run"], capture_output=True, text=True,
        env=environment, timeout=60,
    )  # fmt: skip
    assert done.stdout.split() == [".venv"]


def test_base_requirements_pin_no_exact_torch_or_transformers_but_the_environment_extras_do() -> None:
    """Installing into a verl environment (e.g. transformers 5.10) must not downgrade it; `make install` and
    `make install-gpu` still get the exact pins through the extras."""
    captured: dict = {}
    with mock.patch("setuptools.setup", lambda **kwargs: captured.update(kwargs)):
        runpy.run_path(str(REPO / "setup.py"), run_name="__main__")
    base = captured["install_requires"]
    names = {re.split(r"[<>=!~ \[]", r, maxsplit=1)[0]: r for r in base}
    assert "==" not in names["torch"] and "==" not in names["transformers"]
    assert "verl==0.9.1" in base
    for extra in ("gpu", "cpu"):
        assert {"torch==2.11.0", "transformers==5.9.0"} <= set(captured["extras_require"][extra])
    makefile = (REPO / "Makefile").read_text()
    assert '-e ".[cpu,test]"' in makefile and '-e ".[gpu,test]"' in makefile


def test_max_model_len_follows_prompt_and_response_overrides(tmp_path: Path) -> None:
    done = run_recipe(
        "run_qwen3_4b.sh", "--dry-run", "data.max_response_length=4000", "data.max_prompt_length=1000",
        "actor_rollout_ref.actor.ppo_max_token_len_per_gpu=8000", DATA_DIR=str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert yaml.safe_load(done.stdout)["actor_rollout_ref"]["rollout"]["max_model_len"] == 5000


def test_checkpoint_dir_puts_runs_under_an_absolute_folder(tmp_path: Path) -> None:
    done = run_recipe("run_1.5b.sh", "--dry-run", DATA_DIR=str(tmp_path), CHECKPOINT_DIR=f"{tmp_path}/ck/")
    assert done.returncode == 0, done.stderr[-4000:]
    trainer = yaml.safe_load(done.stdout)["trainer"]
    assert trainer["default_local_dir"] == f"{tmp_path}/ck/smartthinker/{trainer['experiment_name']}"
    relative = run_recipe("run_1.5b.sh", "--dry-run", DATA_DIR=str(tmp_path), CHECKPOINT_DIR="ck")
    assert relative.returncode == 2 and "CHECKPOINT_DIR=ck is relative" in relative.stderr


def test_multi_node_refuses_a_relative_checkpoint_folder_and_says_why(tmp_path: Path) -> None:
    done = run_recipe("run_7b.sh", "--dry-run", DATA_DIR=str(tmp_path), NNODES="2")
    assert done.returncode == 2 and done.stdout == ""
    assert "trainer.default_local_dir=checkpoints/smartthinker/" in done.stderr
    assert "is relative: with trainer.nnodes=2 every rank writes its shards to its own node's disk" in done.stderr
    assert "Fix: CHECKPOINT_DIR=/shared/checkpoints" in done.stderr


def test_environment_overrides_model_nodes_and_experiment(tmp_path: Path) -> None:
    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    write_data_files(tmp_path)
    done = run_recipe(
        "run_qwen3_4b.sh",
        "--dry-run",
        "+algorithm.smartthinker.penalty=symmetric",
        MODEL_PATH=str(model_dir),
        DATA_DIR=str(tmp_path),
        NNODES="2",
        EXPERIMENT="ablation-sym",
        CHECKPOINT_DIR="/shared/checkpoints",
    )
    assert done.returncode == 0, done.stderr[-4000:]
    config = yaml.safe_load(done.stdout)
    assert config["actor_rollout_ref"]["model"]["path"] == str(model_dir)
    assert config["trainer"]["nnodes"] == 2
    assert config["trainer"]["experiment_name"] == "ablation-sym"
    assert config["algorithm"]["smartthinker"]["penalty"] == "symmetric"
    assert config["trainer"]["default_local_dir"] == "/shared/checkpoints/smartthinker/ablation-sym"


def test_real_run_stops_before_launch_when_data_is_missing(tmp_path: Path) -> None:
    done = run_recipe("run_1.5b.sh", "--skip-doctor", "trainer.total_epochs=1", DATA_DIR=str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert done.stdout == ""
    assert "data.train_files" in done.stderr and "Fix:" in done.stderr
    assert "launching" not in done.stderr  # nothing was started


def test_bad_overrides_fail_the_dry_run_with_clear_errors(tmp_path: Path) -> None:
    """Every problem is reported at once (more cases, in process: tests/test_check_config.py)."""
    done = run_recipe(
        "run_1.5b.sh",
        "--dry-run",
        "algorithm.use_kl_in_reward=True",
        "+algorithm.smartthinker.gamma=1",
        "data.train_batch_size=60",
        DATA_DIR=str(tmp_path),
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "3 problem(s)" in done.stderr
    assert "algorithm.use_kl_in_reward=True" in done.stderr
    assert "unknown key(s) algorithm.smartthinker.gamma" in done.stderr
    assert "data.train_batch_size=60 is not a multiple of" in done.stderr
    assert done.stderr.count("Fix") >= 3


def test_options_after_the_overrides_are_refused() -> None:
    done = run_recipe("run_1.5b.sh", "trainer.total_epochs=7", "--dry-run")
    assert done.returncode == 2
    assert "the options are --dry-run and --skip-doctor (before the overrides)" in done.stderr


def test_a_real_run_starts_with_the_doctor_unless_skipped(tmp_path: Path) -> None:
    """The preflight runs first and stops the run (exit 2) before training; --skip-doctor goes straight to the
    config checks. No GPU here: the doctor's own checks are tested in tests/test_doctor.py."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_python = bin_dir / "python"  # records the modules the recipe runs, fails like a doctor with a problem
    fake_python.write_text(f'#!/bin/sh\necho "$2 $3" >> {tmp_path}/calls\nexit 2\n')
    fake_python.chmod(0o755)
    done = run_recipe("run_1.5b.sh", DATA_DIR=str(tmp_path), PYTHON=str(fake_python))
    assert done.returncode == 2 and "preflight: smartthinker-verl doctor" in done.stderr
    assert (tmp_path / "calls").read_text().splitlines() == ["smartthinker_verl.cli doctor"]
    (tmp_path / "calls").unlink()
    skipped = run_recipe("run_1.5b.sh", "--skip-doctor", DATA_DIR=str(tmp_path), PYTHON=str(fake_python))
    assert skipped.returncode == 2 and "preflight" not in skipped.stderr
    assert (tmp_path / "calls").read_text().splitlines()[0].startswith("smartthinker_verl.launch.train")
    (tmp_path / "calls").unlink()
    by_env = run_recipe("run_1.5b.sh", DATA_DIR=str(tmp_path), PYTHON=str(fake_python), SMARTTHINKER_SKIP_DOCTOR="1")
    assert by_env.returncode == 2 and "preflight" not in by_env.stderr


def test_recipes_are_strict_bash_with_settings_at_the_top() -> None:
    for recipe in RECIPE_SETTINGS:
        text = (RECIPES / recipe).read_text()
        assert text.startswith("#!/usr/bin/env bash")
        assert "set -euo pipefail" in text
        assert text.index("RECIPE_MODEL_PATH=") < text.index("source ")
        subprocess.run(["bash", "-n", str(RECIPES / recipe)], check=True)
    subprocess.run(["bash", "-n", str(RECIPES / "common.sh")], check=True)
    subprocess.run(["bash", "-n", str(RECIPES / "submit_ray_job.sh")], check=True)


def test_common_sh_refuses_to_be_run_directly() -> None:
    done = subprocess.run(["bash", str(RECIPES / "common.sh")], capture_output=True, text=True)
    assert done.returncode == 2 and "sourced" in done.stderr


def test_submit_script_builds_the_runtime_env_for_a_recipe(tmp_path: Path) -> None:
    env = {**os.environ, "DATA_DIR": str(tmp_path), "MODEL_PATH": "/models/x", "WANDB_MODE": "offline",
           "CHECKPOINT_DIR": "/shared/ck", "RESUME": "1"}  # fmt: skip
    done = subprocess.run(
        ["bash", str(RECIPES / "submit_ray_job.sh"), "--print-runtime-env", "--recipe", "run_7b",
         "--env", "EXTRA=1 2", "trainer.total_epochs=7", "data.val_files=['a b.parquet']"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    body, entry = done.stdout.rsplit("# entrypoint: ", 1)
    runtime_env = yaml.safe_load(body)
    assert runtime_env["working_dir"] == str(REPO)
    assert "/.venv/" in runtime_env["excludes"] and "/data/" in runtime_env["excludes"]
    # Ray's 512 MiB working_dir limit: converted models, evaluations and outputs stay home.
    assert {"/models/", "/evals/", "/outputs/", "/.venv-gpu/", "/checkpoints/"} <= set(runtime_env["excludes"])
    # wandb's files and the file logger's JSONL go beside the checkpoints, not into Ray's temporary working_dir copy.
    assert runtime_env["env_vars"]["WANDB_DIR"] == "/shared/ck"
    assert runtime_env["env_vars"]["VERL_FILE_LOGGER_ROOT"] == "/shared/ck"
    assert runtime_env["env_vars"]["VERL_USE_EXTERNAL_MODULES"] == "smartthinker_verl.plugin"
    assert runtime_env["env_vars"]["DATA_DIR"] == str(tmp_path)
    assert runtime_env["env_vars"]["MODEL_PATH"] == "/models/x"
    assert runtime_env["env_vars"]["EXTRA"] == "1 2"
    assert runtime_env["env_vars"]["CHECKPOINT_DIR"] == "/shared/ck" and runtime_env["env_vars"]["RESUME"] == "1"
    assert runtime_env["env_vars"]["SMARTTHINKER_RAY_JOB"] == "1"
    # The entrypoint is shell-quoted: a shell gives the recipe exactly the overrides given here.
    words = subprocess.run(["bash", "-c", f"printf '%s\\n' {entry.strip()}"], capture_output=True, text=True)
    assert words.stdout.splitlines() == [
        "bash", "recipes/run_7b.sh", "trainer.total_epochs=7", "data.val_files=['a b.parquet']"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({}, [], "a recipe job needs an absolute checkpoint folder"),
        ({"CHECKPOINT_DIR": "ck"}, [], "a recipe job needs an absolute checkpoint folder"),
        ({"CHECKPOINT_DIR": "/shared"}, ["trainer.default_local_dir='ck/run'"], "trainer.default_local_dir=ck/run is"),
    ],
)
def test_submit_script_refuses_a_relative_checkpoint_folder(env: dict, args: list, message: str) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "CHECKPOINT_DIR"} | env
    done = subprocess.run(
        ["bash", str(RECIPES / "submit_ray_job.sh"), "--print-runtime-env", *args],
        capture_output=True, text=True, env=environment,
    )  # fmt: skip
    assert done.returncode == 2 and message in done.stderr and "Ray's per-job working_dir" in done.stderr
    assert done.stdout == ""


def test_submit_script_forwards_wandb_settings_and_makes_log_paths_absolute(tmp_path: Path) -> None:
    env = {**os.environ, "DATA_DIR": str(tmp_path), "CHECKPOINT_DIR": "/shared/ck", "WANDB_DIR": "wb",
           "WANDB_PROJECT": "proj", "WANDB_BASE_URL": "https://wandb.example",
           "VERL_FILE_LOGGER_PATH": "m/x.jsonl"}  # fmt: skip
    done = subprocess.run(
        ["bash", str(RECIPES / "submit_ray_job.sh"), "--print-runtime-env"], capture_output=True, text=True,
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    env_vars = yaml.safe_load(done.stdout.rsplit("# entrypoint: ", 1)[0])["env_vars"]
    assert env_vars["WANDB_DIR"] == f"{tmp_path}/wb" and env_vars["VERL_FILE_LOGGER_PATH"] == f"{tmp_path}/m/x.jsonl"
    assert env_vars["WANDB_PROJECT"] == "proj" and env_vars["WANDB_BASE_URL"] == "https://wandb.example"
    assert "VERL_FILE_LOGGER_ROOT" not in env_vars  # an explicit file path wins


def test_submit_script_refuses_overrides_with_a_custom_entrypoint() -> None:
    done = subprocess.run(
        ["bash", str(RECIPES / "submit_ray_job.sh"), "--entrypoint", "python -c 1", "trainer.total_epochs=7"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "not to --entrypoint" in done.stderr


def test_real_run_hands_the_validated_config_to_verls_run_ppo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In process, up to the hand-off: verl's run_ppo needs GPUs and vLLM, so here (only) it is replaced."""
    import verl.trainer.main_ppo as main_ppo

    from smartthinker_verl.launch import train

    write_data_files(tmp_path)
    calls = []
    monkeypatch.setattr(
        main_ppo, "run_ppo", lambda config, task_runner_class: calls.append((config, task_runner_class))
    )
    code = train.main(
        [
            f"data.train_files={tmp_path}/deepscaler/train.parquet",
            f"data.val_files=[{tmp_path}/aime25/test.parquet,{tmp_path}/amc23/test.parquet]",
            "trainer.total_epochs=7",
        ]
    )
    assert code == 0
    ((config, runner),) = calls
    assert runner is main_ppo.TaskRunnerV1
    assert config.trainer.total_epochs == 7 and config.algorithm.adv_estimator == "smartthinker"
    assert config.trainer.experiment_name.endswith("-smartthinker-g8-b64-lr1e-06-resp8000")


# ------------------------------------------------------------------------------------------- ThinkPrune preset


def test_thinkprune_round_1_dry_run_is_plain_grpo_under_a_4k_cap_with_the_think_gate(tmp_path: Path) -> None:
    write_data_files(tmp_path)
    done = run_recipe("thinkprune.sh", "--dry-run", DATA_DIR=str(tmp_path), ROUND="1", CHECKPOINT_ROOT="ck/tp")
    assert done.returncode == 0, done.stderr[-4000:]
    config = yaml.safe_load(done.stdout)
    assert config["algorithm"]["adv_estimator"] == "grpo"
    assert config["data"]["max_response_length"] == 4096
    assert config["actor_rollout_ref"]["rollout"]["response_length"] == 4096
    assert config["reward"]["smartthinker"]["require_think_close"] is True
    assert config["trainer"]["default_local_dir"] == f"{Path.cwd()}/ck/tp/round1"
    assert config["actor_rollout_ref"]["model"]["path"] == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"


def test_thinkprune_later_round_without_the_previous_model_is_an_error_naming_the_fix(tmp_path: Path) -> None:
    done = run_recipe("thinkprune.sh", "--dry-run", DATA_DIR=str(tmp_path), ROUND="2", CHECKPOINT_ROOT=str(tmp_path))
    assert done.returncode == 2
    assert "round 2 starts from round 1's model" in done.stderr
    assert "ROUND=1 bash recipes/thinkprune.sh" in done.stderr and "smartthinker-verl convert" in done.stderr


def test_thinkprune_round_3_continues_from_round_2_with_a_2k_cap(tmp_path: Path) -> None:
    write_data_files(tmp_path)
    previous = tmp_path / "round2" / "hf"
    previous.mkdir(parents=True)
    (previous / "config.json").write_text("{}")
    done = run_recipe("thinkprune.sh", "--dry-run", DATA_DIR=str(tmp_path), ROUND="3", CHECKPOINT_ROOT=str(tmp_path))
    assert done.returncode == 0, done.stderr[-4000:]
    config = yaml.safe_load(done.stdout)
    assert config["data"]["max_response_length"] == 2048
    assert config["actor_rollout_ref"]["model"]["path"] == str(previous)


@pytest.mark.parametrize("method", ["shorter_better", "laser_de"])
def test_run_1_5b_selects_a_baseline_with_one_override(tmp_path: Path, method: str) -> None:
    write_data_files(tmp_path)
    done = run_recipe("run_1.5b.sh", "--dry-run", f"algorithm.adv_estimator={method}", DATA_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr[-4000:]
    assert yaml.safe_load(done.stdout)["algorithm"]["adv_estimator"] == method


def test_compare_cpu_refuses_an_unknown_method_before_training(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(RECIPES / "compare_cpu.sh"), "grpo", "shorterbetter"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable, "OUTPUT_DIR": str(tmp_path)},
        timeout=300,
    )
    assert done.returncode != 0
    assert "unknown method(s) shorterbetter" in done.stderr and "shorter_better" in done.stderr
    assert not (tmp_path / "grpo").exists()
