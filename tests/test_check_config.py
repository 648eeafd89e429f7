"""`smartthinker-verl check-config`, smartthinker_verl.launch.compose and .validate: compose the recipe yaml over verl's
real `ppo_trainer` config, validate with verl's real validate_config and the real plugin registries, and report
every problem with the key and the fix. All in process (no GPUs, no Ray).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from smartthinker_verl import cli
from smartthinker_verl.launch import compose, validate
from smartthinker_verl.launch.compose import build_run_name, compose_config
from smartthinker_verl.launch.validate import RecipeConfigError, validate_config


def errors_for(*overrides: str, require_files: bool = False) -> list[str]:
    return validate_config(compose_config(overrides), require_files=require_files)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    for relative in ("deepscaler/train.parquet", "aime25/test.parquet", "amc23/test.parquet", "math500/test.parquet"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"")
    return tmp_path


def data_overrides(root: Path) -> list[str]:
    val = ",".join(f"'{root}/{name}/test.parquet'" for name in ("aime25", "amc23", "math500"))
    return [f"data.train_files='{root}/deepscaler/train.parquet'", f"data.val_files=[{val}]"]


def test_recipe_yaml_composes_verls_ppo_trainer_with_the_smartthinker_deltas() -> None:
    config = compose_config()
    # Deltas from the recipe yaml...
    assert config.algorithm.adv_estimator == "smartthinker"
    assert config.reward.reward_manager.name == "smartthinker"
    assert config.data.train_batch_size == 64 and config.actor_rollout_ref.rollout.n == 8
    # ...on top of verl's own defaults (composed, not copied).
    assert config.algorithm.gamma == 1.0 and config.actor_rollout_ref.actor.clip_ratio == 0.2
    assert config.trainer.use_v1 is True
    # No option block copies a default: the defaults live in the options dataclasses only.
    from smartthinker_verl.shaping import METHODS

    assert not {m.name for m in METHODS.values()} & set(config.algorithm) and "smartthinker" not in config.reward


def test_the_run_context_is_interpolated_from_the_config() -> None:
    """algorithm.run_context follows the rollout's response length and n, and verl's separate_async sub-steps."""
    from smartthinker_verl.options import RunContext

    config = compose_config(["actor_rollout_ref.rollout.response_length=6000", "actor_rollout_ref.rollout.n=4"])
    assert RunContext.from_algorithm(config.algorithm) == RunContext(response_limit=6000, group_size=4)
    config = compose_config(
        ["trainer.v1.trainer_mode=separate_async", "trainer.v1.separate_async.parameter_sync_step=3"]
    )
    assert RunContext.from_algorithm(config.algorithm).calls_per_step == 3


@pytest.mark.parametrize("method", ["shorter_better", "efficient_reasoning", "kimi_length", "laser_de"])
def test_each_baseline_is_one_override(method: str) -> None:
    assert errors_for(f"algorithm.adv_estimator={method}") == []


def test_options_of_a_method_that_is_not_selected_are_refused_with_the_fix() -> None:
    (error,) = errors_for("algorithm.adv_estimator=shorter_better", "+algorithm.smartthinker.penalty=symmetric")
    assert "algorithm.smartthinker.penalty='symmetric'" in error and "algorithm.adv_estimator=smartthinker" in error
    (error,) = errors_for("+algorithm.shorter_better.alpha=3")  # the default estimator is smartthinker
    assert "algorithm.shorter_better.alpha=3" in error and "Fix" in error
    (error,) = errors_for("algorithm.adv_estimator=grpo", "+algorithm.laser_de.alpha=1")
    assert "algorithm.laser_de.alpha=1" in error


def test_baseline_options_are_validated_when_selected() -> None:
    (error,) = errors_for("algorithm.adv_estimator=efficient_reasoning", "+algorithm.efficient_reasoning.alpha=2")
    assert "algorithm.efficient_reasoning.alpha=2.0 must lie in [0, 1)" in error


def test_laser_de_needs_the_state_saving_checkpoint_callback() -> None:
    (error,) = errors_for("algorithm.adv_estimator=laser_de", "trainer.checkpoint_callback_class=null")
    assert "trainer.checkpoint_callback_class=smartthinker_verl.shaping_state.ShapingStateCallback" in error


def test_default_config_is_valid_and_missing_data_is_only_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert validate_config(compose_config(), require_files=False) == []
    assert any("data.train_files" in w and "does not exist" in w for w in caplog.messages)


def test_missing_data_is_an_error_for_a_real_run() -> None:
    errors = errors_for("data.train_files=/nowhere/train.parquet", require_files=True)
    assert any(e.startswith("data.train_files: /nowhere/train.parquet does not exist") and "Fix" in e for e in errors)


def test_existing_data_gives_no_warning(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert validate_config(compose_config(data_overrides(data_dir)), require_files=True) == []
    assert not [r for r in caplog.records if r.name == validate.__name__]


def test_missing_local_model_directory_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    assert validate_config(compose_config(["actor_rollout_ref.model.path=/no/such/model"]), require_files=False) == []
    assert any("actor_rollout_ref.model.path: /no/such/model does not exist" in w for w in caplog.messages)


def test_kl_in_reward_is_refused() -> None:
    errors = errors_for("algorithm.use_kl_in_reward=True")
    assert len(errors) == 1 and errors[0].startswith("algorithm.use_kl_in_reward=True") and "Fix" in errors[0]


def test_kl_in_reward_is_allowed_for_a_plain_grpo_baseline() -> None:
    assert errors_for("algorithm.adv_estimator=grpo", "algorithm.use_kl_in_reward=True") == []


def test_unknown_smartthinker_option_without_plus_names_the_key_and_the_plus_fix() -> None:
    with pytest.raises(RecipeConfigError) as caught:
        compose_config(["algorithm.smartthinker.gamma=1"])
    (problem,) = caught.value.problems
    assert problem.startswith("algorithm.smartthinker.gamma: no such key")
    assert "+algorithm.smartthinker.gamma=VALUE" in problem


def test_unknown_smartthinker_option_with_plus_is_refused_by_smartthinker_config() -> None:
    (error,) = errors_for("+algorithm.smartthinker.gamma=1")
    assert "algorithm.smartthinker.gamma" in error and "optimal_length" in error


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+algorithm.smartthinker.penalty=both", "algorithm.smartthinker.penalty='both' is not valid"),
        ("+algorithm.smartthinker.coefficient=fixed", "needs algorithm.smartthinker.fixed_coefficient"),
        ("+algorithm.smartthinker.epsilon=0", "algorithm.smartthinker.epsilon=0 must be > 0"),
    ],
)
def test_invalid_smartthinker_values_are_refused(override: str, message: str) -> None:
    (error,) = errors_for(override)
    assert message in error


def test_fixed_coefficient_ablation_is_valid_and_named() -> None:
    overrides = ["+algorithm.smartthinker.coefficient=fixed", "+algorithm.smartthinker.fixed_coefficient=1e-4"]
    config = compose_config(overrides)
    assert validate_config(config, require_files=False) == []
    assert "-coef-fixed0.0001-" in config.trainer.experiment_name


@pytest.mark.parametrize(
    ("overrides", "messages"),
    [
        (["data.train_batch_size=60"], ["data.train_batch_size=60 is not a multiple of"]),
        (
            ["trainer.n_gpus_per_node=3"],
            ["do not split evenly over 3 GPUs", "do not split over 3 data-parallel ranks"],
        ),
        (
            ["actor_rollout_ref.actor.use_dynamic_bsz=false", "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=3"],
            ["ppo_micro_batch_size_per_gpu=3 does not divide the 32 responses"],
        ),
        (["actor_rollout_ref.actor.ppo_max_token_len_per_gpu=4096"], ["is below one full sequence"]),
        (["actor_rollout_ref.rollout.tensor_model_parallel_size=3"], ["tensor_model_parallel_size=3 does not divide"]),
    ],
)
def test_indivisible_batch_sizes_are_refused(overrides: list[str], messages: list[str]) -> None:
    errors = errors_for(*overrides)
    for message in messages:
        assert any(message in e and "Fix" in e for e in errors), errors


def test_verls_own_validation_runs() -> None:
    errors = errors_for("actor_rollout_ref.actor.loss_agg_mode=bogus")
    assert any(e.startswith("verl's validate_config rejected the config") and "bogus" in e for e in errors)


def test_verls_batch_split_check_reaches_the_user_without_a_second_copy() -> None:
    errors = errors_for("actor_rollout_ref.actor.use_dynamic_bsz=false", "trainer.n_gpus_per_node=3")
    assert any(e.startswith("verl's validate_config rejected the config") and "(512)" in e for e in errors), errors
    assert not any("do not split evenly over 3 GPUs" in e for e in errors)


def test_unregistered_estimator_and_reward_manager_list_the_registered_names() -> None:
    errors = errors_for("algorithm.adv_estimator=nope", "reward.reward_manager.name=nope")
    estimator = next(e for e in errors if e.startswith("algorithm.adv_estimator='nope'"))
    assert "'smartthinker'" in estimator and "'grpo'" in estimator
    manager = next(e for e in errors if e.startswith("reward.reward_manager.name='nope'"))
    assert "'smartthinker'" in manager and "'naive'" in manager


def test_a_scorer_that_does_not_load_is_reported() -> None:
    (error,) = errors_for(
        "reward.custom_reward_function.path=pkg://smartthinker_verl.scoring",
        "reward.custom_reward_function.name=no_such_function",
    )
    assert error.startswith("reward.custom_reward_function") and "no_such_function" in error


def test_reward_options_the_grading_route_would_ignore_are_reported() -> None:
    (error,) = errors_for("+reward.custom_reward_function.reward_kwargs.require_think_close=false")
    assert "reward.smartthinker.require_think_close=false" in error
    (error,) = errors_for("+reward.smartthinker.gate=false")
    assert "unknown key(s) reward.smartthinker.gate" in error


def test_a_plugin_that_does_not_import_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validate, "PLUGIN_MODULE", "smartthinker_verl._no_such_plugin")
    errors = errors_for()
    assert any("smartthinker_verl._no_such_plugin does not import" in e and "pip install -e ." in e for e in errors)


def test_bad_override_syntax_names_every_bad_override() -> None:
    with pytest.raises(RecipeConfigError) as caught:
        compose_config(["trainer.total_epochs=[", "trainer.save_freq=5", "trainer.test_freq=]"])
    first, second = caught.value.problems
    assert first.startswith("override 'trainer.total_epochs=[' is not valid Hydra syntax") and "Fix" in first
    assert second.startswith("override 'trainer.test_freq=]' is not valid Hydra syntax")


@pytest.mark.parametrize(
    ("override", "messages"),
    [
        ("+trainer.total_epochs=3", ["An item is already at 'trainer.total_epochs'", "++trainer.total_epochs=3"]),
        ("~trainer.no_such_key", ["'trainer.no_such_key' does not exist", "~key removes one"]),
        ("+platform=nope", ["platform/nope: no such config", "platform is one of cpu"]),
    ],
)
def test_overrides_hydra_refuses_give_hydras_reason_and_the_fix(override: str, messages: list[str]) -> None:
    with pytest.raises(RecipeConfigError) as caught:
        compose_config([override])
    (problem,) = caught.value.problems
    for message in messages:
        assert message in problem and "Fix" in problem, problem


def test_every_problem_is_reported_at_once() -> None:
    errors = errors_for("algorithm.use_kl_in_reward=True", "data.train_batch_size=60", "reward.reward_manager.name=x")
    assert len(errors) == 3


def test_run_name_follows_the_settings() -> None:
    assert build_run_name(compose_config()) == "deepseek-r1-distill-qwen-1.5b-smartthinker-g8-b64-lr1e-06-resp8000"
    config = compose_config(
        [
            "actor_rollout_ref.model.path=/m/Qwen3-4B/",
            "+algorithm.smartthinker.penalty=symmetric",
            "data.max_response_length=4096",
        ]
    )
    assert config.trainer.experiment_name == "qwen3-4b-smartthinker-symmetric-g8-b64-lr1e-06-resp4096"
    assert compose_config(["trainer.experiment_name=mine"]).trainer.experiment_name == "mine"


def test_check_config_cli_prints_only_the_resolved_yaml(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "resolved.yaml"
    code = cli.main(["check-config", "trainer.total_epochs=7", "-o", str(out_file)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    config = yaml.safe_load(captured.out)
    assert config["trainer"]["total_epochs"] == 7
    # resolved, and absolute against the launch folder (verl's trainer runs in a Ray actor with another cwd)
    assert config["trainer"]["default_local_dir"].startswith(f"{Path.cwd()}/checkpoints/smartthinker/")
    assert out_file.read_text() == captured.out
    assert "[validate_config]" in captured.err  # verl's print went to stderr


def test_check_config_cli_strict_files_and_bad_override_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    errors = ""
    for overrides in (
        ["--strict-files", "data.train_files=/nowhere.parquet"],
        ["algorithm.use_kl_in_reward=True"],
        ["algorithm.smartthinker.gamma=1"],
        ["trainer.total_epochs=["],
    ):
        assert cli.main(["check-config", *overrides]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("smartthinker-verl check-config: error: ") == 1
        errors += captured.err
    assert "data.train_files: /nowhere.parquet does not exist" in errors
    assert "+algorithm.smartthinker.gamma=VALUE" in errors and "not valid Hydra syntax" in errors


def test_check_config_console_script_runs() -> None:
    script = Path(sys.executable).parent / "smartthinker-verl"
    if not script.exists():
        pytest.skip("console script not installed next to this interpreter")
    done = subprocess.run([str(script), "check-config", "data.train_batch_size=32"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert yaml.safe_load(done.stdout)["data"]["train_batch_size"] == 32


def test_max_model_len_is_prompt_plus_response_and_checked() -> None:
    from omegaconf import OmegaConf

    config = compose_config(["data.max_prompt_length=100", "data.max_response_length=300"])
    assert OmegaConf.to_container(config.actor_rollout_ref.rollout, resolve=True)["max_model_len"] == 400
    (error,) = errors_for("actor_rollout_ref.rollout.max_model_len=4096")
    assert error.startswith("actor_rollout_ref.rollout.max_model_len=4096 is below one full sequence")


def test_relative_checkpoint_dir_is_refused_on_several_nodes_and_in_ray_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert errors_for("trainer.nnodes=1") == []
    (error,) = errors_for("trainer.nnodes=2")
    assert "is relative: with trainer.nnodes=2" in error and "CHECKPOINT_DIR=/shared/checkpoints" in error
    assert errors_for("trainer.nnodes=2", "trainer.default_local_dir=/shared/ck/run") == []
    monkeypatch.setenv(validate.RAY_JOB_ENV, "1")
    (error,) = errors_for()
    assert "is relative: with a Ray job" in error and "working_dir" in error


def test_attention_is_the_configs_choice_never_the_launching_machines(caplog: pytest.LogCaptureFixture) -> None:
    """flash-attn with packed sequences unless ``+attention=sdpa`` says otherwise; this machine has no flash-attn
    and that changes nothing. The launch says which attention the workers use and how to switch."""
    import importlib.util

    assert importlib.util.find_spec("flash_attn") is None  # the point of this test: nothing here decides
    caplog.set_level("INFO", logger=compose.__name__)
    config = compose.prepare([], config_name=compose.DEFAULT_CONFIG_NAME, require_files=False)
    model = config.actor_rollout_ref.model
    assert (model.override_config.attn_implementation, model.use_remove_padding) == ("flash_attention_2", True)
    assert config.actor_rollout_ref.actor.ppo_max_token_len_per_gpu == 32768
    assert "attention: flash-attn" in caplog.text and "add +attention=sdpa" in caplog.text
    caplog.clear()
    config = compose.prepare(["+attention=sdpa"], config_name=compose.DEFAULT_CONFIG_NAME, require_files=False)
    model, actor = config.actor_rollout_ref.model, config.actor_rollout_ref.actor
    assert (model.override_config.attn_implementation, model.use_remove_padding) == ("sdpa", False)
    # the padded budget, followed by the log-prob passes (verl's defaults interpolate the actor's)
    assert actor.ppo_max_token_len_per_gpu == 12288
    assert config.actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu == 12288
    assert config.actor_rollout_ref.ref.log_prob_max_token_len_per_gpu == 12288
    assert "attention: sdpa, use_remove_padding=False" in caplog.text
    config = compose.prepare(["+platform=cpu"], config_name=compose.DEFAULT_CONFIG_NAME, require_files=False)
    assert config.actor_rollout_ref.model.override_config.attn_implementation == "sdpa"  # the CPU config chose
    with pytest.raises(RecipeConfigError, match="attention/flash: no such config. Fix: attention is one of sdpa"):
        compose_config(["+attention=flash"])


def test_the_cpu_layer_composes_over_the_recipe_config() -> None:
    """`+platform=cpu` (launch/config/platform/cpu.yaml) keeps the recipe config and changes only what CPU needs."""
    config = compose.prepare(["+platform=cpu"], config_name=compose.DEFAULT_CONFIG_NAME, require_files=False)
    gpu = compose.prepare([], config_name=compose.DEFAULT_CONFIG_NAME, require_files=False)
    assert (config.trainer.device, config.trainer.n_gpus_per_node, config.trainer.nnodes) == ("cpu", 1, 1)
    for role in ("actor", "ref"):
        assert config.actor_rollout_ref[role].strategy == "fsdp2"
        assert dict(config.actor_rollout_ref[role].fsdp_config.mixed_precision) == {
            "param_dtype": "fp32", "reduce_dtype": "fp32", "buffer_dtype": "fp32"
        }  # fmt: skip
    assert config.actor_rollout_ref.rollout.name == "vllm" and config.actor_rollout_ref.rollout.dtype == "float32"
    assert config.ray_kwargs.ray_init.address == "local" and list(config.trainer.logger) == ["console", "file"]
    # the recipe config's own settings are the GPU run's: estimator, reward manager, sampling, options
    for key in (
        "algorithm",
        "reward.reward_manager",
        "actor_rollout_ref.rollout.temperature",
        "data.max_response_length",
    ):
        assert OmegaConf.select(config, key) == OmegaConf.select(gpu, key), key


def test_grading_pool_options_are_validated_with_the_fix() -> None:
    assert errors_for("+reward.smartthinker.grade_timeout_s=30", "+reward.smartthinker.grader_processes=2") == []
    (error,) = errors_for("+reward.smartthinker.grade_timeout_s=-5")
    assert "reward.smartthinker.grade_timeout_s=-5 must be > 0" in error
    (error,) = errors_for("+reward.smartthinker.grader_processes=0")
    assert "reward.smartthinker.grader_processes=0" in error and "or null for the default" in error
    (error,) = errors_for("+reward.smartthinker.grader_procs=2")
    assert "unknown key(s) reward.smartthinker.grader_procs" in error and "grader_processes" in error


def test_grading_pool_options_with_a_manager_that_ignores_them_are_refused() -> None:
    (error,) = errors_for(
        "reward.reward_manager.name=naive",
        "reward.custom_reward_function.path=pkg://smartthinker_verl.scoring",
        "reward.custom_reward_function.name=compute_score",
        "+reward.smartthinker.grader_processes=2",
    )
    assert "only the smartthinker reward manager reads it" in error and "reward_kwargs" in error
    assert (
        errors_for(
            "reward.reward_manager.name=naive",
            "reward.custom_reward_function.path=pkg://smartthinker_verl.scoring",
            "reward.custom_reward_function.name=compute_score",
        )
        == []
    )


def test_a_relative_checkpoint_folder_becomes_absolute_against_the_launch_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    config = compose.prepare([], config_name=compose.DEFAULT_CONFIG_NAME, require_files=False)
    name = config.trainer.experiment_name
    assert config.trainer.default_local_dir == f"{tmp_path}/checkpoints/smartthinker/{name}"
    # The interpolations stay: the folder follows the run name.
    assert "${trainer.experiment_name}" in OmegaConf.to_container(config.trainer)["default_local_dir"]
    config = compose.prepare(
        ["trainer.default_local_dir=/abs/run"], config_name=compose.DEFAULT_CONFIG_NAME, require_files=False
    )
    assert config.trainer.default_local_dir == "/abs/run"
