"""Validate a composed recipe config: every problem at once, each naming the key and the fix.

:func:`validate_config` runs verl's own ``validate_config``, the checks the estimator makes when its process starts
(the same functions), and what neither checks (plugin import, registries, divisibility verl leaves to the workers,
data files, checkpoint folder). :class:`RecipeConfigError` is how composition and validation report a user error;
the CLIs turn it into exit code 2 (:func:`smartthinker_verl.cli.exit_status`).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from smartthinker_verl.errors import ConfigError
from smartthinker_verl.options import CONFIG_KEY
from smartthinker_verl.shaping import METHODS

logger = logging.getLogger(__name__)

#: The module whose import registers every SmartThinker name into verl.
PLUGIN_MODULE = "smartthinker_verl.plugin"
#: Set (to 1) in a Ray job's environment by recipes/submit_ray_job.sh: checkpoints must then go to an absolute path.
RAY_JOB_ENV = "SMARTTHINKER_RAY_JOB"
#: Path prefixes that are not local files (checked by the cluster, not here).
REMOTE_PREFIXES = ("hdfs://", "s3://", "gs://", "gcs://", "http://", "https://", "oss://")


class RecipeConfigError(ConfigError):
    """The recipe config is invalid; the message lists every problem with the key and the fix."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid recipe config ({len(self.problems)} problem(s)):\n{lines}")


def one_line(value: object) -> str:
    return " ".join(str(value).split())


def validate_config(config: DictConfig, *, require_files: bool) -> list[str]:
    """Run verl's ``validate_config`` and the checks verl leaves to the GPU run on a copy of ``config``; return every
    problem. With ``require_files`` (a real run) missing data files and a missing local model folder are problems,
    else logged warnings (a dry run on a machine without the data)."""
    from omegaconf.errors import OmegaConfBaseException

    errors: list[str] = []
    resolved = copy.deepcopy(config)
    try:
        OmegaConf.resolve(resolved)
    except OmegaConfBaseException as exc:
        return [
            f"{getattr(exc, 'full_key', '?')}: interpolation does not resolve ({one_line(exc)}). "
            "Fix: set the referenced key, or replace the ${...} value."
        ]
    _check_batch_sizes(resolved, errors)
    if _check_plugin(errors):
        _check_reward(resolved, errors)
        _check_estimator(resolved, errors)
    _check_verl(resolved, errors)
    _check_files(resolved, errors, require_files=require_files)
    _check_checkpoint_dir(resolved, errors)
    return errors


def _check_batch_sizes(config: DictConfig, errors: list[str]) -> None:
    """Divisibility that verl's ``validate_config`` leaves to the workers (prompts, mini-batches, GPUs,
    micro-batches), and sequence lengths that fit the token budget and the rollout's context."""
    actor, rollout = config.actor_rollout_ref.actor, config.actor_rollout_ref.rollout
    longest = int(config.data.max_prompt_length) + int(config.data.max_response_length)
    full = f"one full sequence (data.max_prompt_length + data.max_response_length = {longest})"
    max_model_len = rollout.get("max_model_len")
    if max_model_len is not None and int(max_model_len) < longest:
        errors.append(
            f"actor_rollout_ref.rollout.max_model_len={max_model_len} is below {full}. Fix: remove the override (the "
            f"recipe sets prompt + response) or raise it to {longest}."
        )
    n_gpus = int(config.trainer.n_gpus_per_node) * int(config.trainer.nnodes)
    train_bs, mini_bs, n = int(config.data.train_batch_size), int(actor.ppo_mini_batch_size), int(rollout.n)
    if n_gpus <= 0:
        errors.append(
            f"trainer.n_gpus_per_node * trainer.nnodes = {n_gpus}: need at least one GPU. "
            "Fix: set NGPUS/NNODES (recipes) or trainer.n_gpus_per_node / trainer.nnodes."
        )
        return
    if mini_bs <= 0 or train_bs % mini_bs != 0:
        divisor = max(d for d in range(1, max(1, min(train_bs, mini_bs)) + 1) if train_bs % d == 0)
        errors.append(
            f"data.train_batch_size={train_bs} is not a multiple of actor_rollout_ref.actor.ppo_mini_batch_size="
            f"{mini_bs} (both count prompts). Fix: choose a mini-batch that divides the batch, e.g. "
            f"actor_rollout_ref.actor.ppo_mini_batch_size={divisor}."
        )
    # without dynamic batching, verl's validate_config makes this check
    if actor.use_dynamic_bsz and (train_bs * n) % n_gpus != 0:
        errors.append(
            f"data.train_batch_size * actor_rollout_ref.rollout.n = {train_bs} * {n} = {train_bs * n} responses do "
            f"not split evenly over {n_gpus} GPUs. Fix: make the product a multiple of trainer.n_gpus_per_node * "
            "trainer.nnodes."
        )
    sp = int(actor.get("ulysses_sequence_parallel_size", 1) or 1)
    tp = int(rollout.get("tensor_model_parallel_size", 1) or 1)
    for key, size in (("actor.ulysses_sequence_parallel_size", sp), ("rollout.tensor_model_parallel_size", tp)):
        if size <= 0 or n_gpus % size != 0:
            errors.append(
                f"actor_rollout_ref.{key}={size} does not divide the {n_gpus} GPUs. Fix: use a divisor of the GPU "
                "count."
            )
    dp = n_gpus // sp if sp > 0 and n_gpus % sp == 0 else 0  # 0: reported above
    if dp and mini_bs > 0 and (mini_bs * n) % dp != 0:
        errors.append(
            f"actor_rollout_ref.actor.ppo_mini_batch_size * rollout.n = {mini_bs * n} responses per mini-batch do "
            f"not split over {dp} data-parallel ranks. Fix: make ppo_mini_batch_size * rollout.n a multiple of {dp}."
        )
    elif dp and not actor.use_dynamic_bsz and actor.get("ppo_micro_batch_size_per_gpu"):
        per_gpu, micro = mini_bs * n // dp, int(actor.ppo_micro_batch_size_per_gpu)
        if per_gpu % micro != 0:
            errors.append(
                f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={micro} does not divide the {per_gpu} "
                "responses each GPU gets per mini-batch. Fix: choose a divisor, or set "
                "actor_rollout_ref.actor.use_dynamic_bsz=true."
            )
    if actor.use_dynamic_bsz and int(actor.ppo_max_token_len_per_gpu) < longest:
        errors.append(
            f"actor_rollout_ref.actor.ppo_max_token_len_per_gpu={actor.ppo_max_token_len_per_gpu} is below {full}. "
            f"Fix: raise it to at least {longest}."
        )


def _check_plugin(errors: list[str]) -> bool:
    """Import the plugin ourselves: verl swallows a failing entry point and only says 'Unknown ...' later."""
    try:
        import verl  # noqa: F401  (loads entry points and VERL_USE_EXTERNAL_MODULES)

        importlib.import_module(PLUGIN_MODULE)
    except Exception as exc:  # any import-time failure must reach the user
        errors.append(
            f"the plugin {PLUGIN_MODULE} does not import: {type(exc).__name__}: {exc}. Fix: install the project "
            "(`pip install -e .`, or `make install`) with verl pinned as in setup.py, and read the traceback above."
        )
        return False
    return True


def _check_reward(config: DictConfig, errors: list[str]) -> None:
    from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER
    from verl.trainer.ppo.reward import resolve_reward_manager_cls
    from verl.utils.import_utils import load_extern_object

    from smartthinker_verl.options import RewardOptions
    from smartthinker_verl.reward_manager import MANAGER_NAME, OPTIONS_KEY, check_one_route

    manager = config.reward.reward_manager
    try:
        resolve_reward_manager_cls(config)
    except Exception as exc:
        known = sorted(REWARD_MANAGER) if manager.source == "register" else "a class in reward_manager.module.path"
        errors.append(
            f"reward.reward_manager.name={manager.name!r} (source={manager.source}) does not resolve: {exc}. "
            f"Fix: use one of {known} (SmartThinker's is {MANAGER_NAME!r})."
        )
    function = config.reward.get("custom_reward_function") or {}
    try:  # reward.smartthinker: the gate and the grading pool (grade_timeout_s, grader_processes)
        options = RewardOptions.from_mapping(config.reward.get("smartthinker"))
        if manager.source == "register" and manager.name == MANAGER_NAME:
            check_one_route(config, options, custom=bool(function.get("path")))
        elif options != RewardOptions():
            errors.append(
                f"{OPTIONS_KEY} sets {options}, but only the smartthinker reward manager reads it "
                f"(reward.reward_manager.name={manager.name!r}). Fix: set reward.reward_manager.name={MANAGER_NAME}, "
                "or pass them to SmartThinker's compute_score as +reward.custom_reward_function.reward_kwargs.<key>="
            )
    except ConfigError as exc:
        errors.append(str(exc))
    if not function.get("path"):
        return
    try:
        scorer = load_extern_object(module_path=function.path, object_name=function.name)
    except Exception as exc:
        errors.append(
            f"reward.custom_reward_function (path={function.path}, name={function.name}) does not load: "
            f"{type(exc).__name__}: {exc}. Fix: point path at a module (pkg://dotted.module or a .py file) "
            "that defines that function; SmartThinker's is pkg://smartthinker_verl.scoring, compute_score."
        )
        return
    if not callable(scorer):
        errors.append(
            f"reward.custom_reward_function.name={function.name!r} in {function.path} is not callable. "
            "Fix: name a function."
        )


def _check_estimator(config: DictConfig, errors: list[str]) -> None:
    """The lookup verl's trainer makes at step 1 (the registered names as the fix); what the active shaping method's
    estimator checks at step 1, by the functions it calls: options valid, normaliser usable, no other method's block
    changed; plus KL kept out of the reward and the state callback."""
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, get_adv_estimator_fn

    from smartthinker_verl.advantage import check_settings
    from smartthinker_verl.run_state import CALLBACK_CLASS
    from smartthinker_verl.shaping import find_method, foreign_option_errors

    active = str(config.algorithm.adv_estimator)
    try:
        get_adv_estimator_fn(active)
    except ValueError as exc:
        errors.append(
            f"algorithm.adv_estimator={active!r} is not a registered advantage estimator ({exc}). Fix: use one of "
            f"{sorted(ADV_ESTIMATOR_REGISTRY)} (SmartThinker's is {CONFIG_KEY!r}; the length baselines are "
            f"{', '.join(sorted(m.name for m in METHODS.values() if m.name != CONFIG_KEY))}; docs/baselines.md)."
        )
    method = find_method(active)
    if method is None:
        errors.extend(foreign_option_errors(config.algorithm, active))
        return
    errors.extend(check_settings(config.algorithm, method)[2])
    if method.state_type is not None and config.trainer.get("checkpoint_callback_class") != CALLBACK_CLASS:
        errors.append(
            f"algorithm.adv_estimator={active} keeps state across steps, which must be saved with every "
            f"checkpoint. Fix: trainer.checkpoint_callback_class={CALLBACK_CLASS} (the recipe yaml sets it)"
        )


def _check_verl(config: DictConfig, errors: list[str]) -> None:
    """verl's own ``validate_config`` (it prints; stdout is kept for the YAML)."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config as verl_validate_config

    try:
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            # need_critic warns that a non-GAE estimator disables the critic: expected here.
            warnings.filterwarnings("ignore", message="Disabled critic")
            verl_validate_config(
                config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config)
            )
    except Exception as exc:  # verl raises AssertionError, ValueError and others
        errors.append(
            f"verl's validate_config rejected the config: {type(exc).__name__}: {one_line(exc)}. "
            "Fix: change the key it names."
        )


def _check_files(config: DictConfig, errors: list[str], *, require_files: bool) -> None:
    """The data files and a local model folder exist; every ground truth of the local data files parses with the
    grader (a row math-verify cannot parse would score 0 for every response); files written by data_preprocess/
    carry a mark and are not read again."""
    from smartthinker_verl.data import ground_truth_problems

    warnings: list[str] = []
    target = errors if require_files else warnings
    local = []
    for key in ("data.train_files", "data.val_files"):
        value = OmegaConf.select(config, key)
        files = list(value) if isinstance(value, ListConfig | list) else [] if value is None else [value]
        if not files:
            errors.append(f"{key} is empty. Fix: point it at the parquet files of data_preprocess/.")
        for name in [str(f) for f in files if not str(f).startswith(REMOTE_PREFIXES)]:
            path = Path(name).expanduser()
            if not path.is_file():
                target.append(
                    f"{key}: {name} does not exist. Fix: write it with data_preprocess/ (see docs/gpu.md), set "
                    "DATA_DIR for the recipes, or override the key."
                )
            elif path.stat().st_size > 0:
                local.append(path)
    model = str(config.actor_rollout_ref.model.path)
    if model.startswith(("/", "./", "../", "~")) and not Path(model).expanduser().exists():
        target.append(
            f"actor_rollout_ref.model.path: {model} does not exist. Fix: set MODEL_PATH (recipes) to a local "
            "checkpoint directory or a Hugging Face model id."
        )
    for warning in warnings:
        logger.warning("%s", warning)
    problems = ground_truth_problems(local) if local else []
    errors.extend(problems[:20])
    if len(problems) > 20:
        errors.append(f"... and {len(problems) - 20} more rows whose ground truth math-verify cannot parse")


def _check_checkpoint_dir(config: DictConfig, errors: list[str]) -> None:
    """A relative checkpoint folder is per node (and, in a Ray job, inside Ray's per-job working_dir copy)."""
    directory, nnodes = str(config.trainer.default_local_dir), int(config.trainer.nnodes)
    if Path(directory).is_absolute() or directory.startswith(REMOTE_PREFIXES):
        return
    if nnodes > 1 or os.environ.get(RAY_JOB_ENV) == "1":
        where = f"trainer.nnodes={nnodes}" if nnodes > 1 else "a Ray job"
        errors.append(
            f"trainer.default_local_dir={directory} is relative: with {where} every rank writes its shards to its "
            "own node's disk (in a Ray job: into Ray's per-job working_dir copy, which Ray may delete), so resume and "
            "`smartthinker-verl convert` break. Fix: CHECKPOINT_DIR=/shared/checkpoints (recipes; a folder every "
            "node mounts at the same path) or trainer.default_local_dir=/shared/checkpoints/RUN."
        )
