"""Compose and validate a SmartThinker recipe config without GPUs (the ``check-config`` subcommand).

:func:`compose_config` builds ``config/smartthinker_trainer.yaml`` (verl's ``ppo_trainer`` plus SmartThinker) with
Hydra's compose API and override strings, the same path ``python -m smartthinker_verl.launch.train`` takes, so what
``check-config`` and the recipes' ``--dry-run`` print is what would run. :func:`validate_config` runs verl's own
``validate_config``, the checks the estimator would make at step 1 (the same functions), and what neither checks
(plugin import, registries, divisibility verl leaves to the workers, data files, checkpoint folder); every problem
is reported at once, each naming the key and the fix.

``smartthinker-verl check-config [--strict-files] [-o FILE] [OVERRIDE ...]`` prints the resolved config as YAML on
stdout; logs go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import importlib.util
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, ListConfig, OmegaConf

if TYPE_CHECKING:
    from hydra.core.override_parser.types import Override

from smartthinker_verl import resolvers  # noqa: F401  (registers ${smartthinker_sum:...} of the recipe yaml)
from smartthinker_verl.errors import ConfigError
from smartthinker_verl.options import CONFIG_KEY
from smartthinker_verl.shaping import METHODS, get_method, primary_methods

logger = logging.getLogger(__name__)

#: Directory of the recipe yaml files (package data).
CONFIG_DIR = Path(__file__).resolve().parent / "config"
#: The recipe config every recipe composes.
DEFAULT_CONFIG_NAME = "smartthinker_trainer"
#: The module whose import registers every SmartThinker name into verl.
PLUGIN_MODULE = "smartthinker_verl.plugin"
#: Set (to 1) in a Ray job's environment by recipes/submit_ray_job.sh: checkpoints must then go to an absolute path.
RAY_JOB_ENV = "SMARTTHINKER_RAY_JOB"
#: What makes verl's FSDP actor train without flash-attn (``apply_attention_fallback``): the keys and values set.
SDPA_SETTINGS = (
    ("actor_rollout_ref.model.override_config.attn_implementation", "sdpa"),
    ("actor_rollout_ref.model.use_remove_padding", False),
)
#: The token budgets the sdpa fallback caps, each with its key under ``sdpa_fallback`` in the recipe yaml: padded
#: micro-batches need smaller ones (docs/gpu.md, "Without flash-attn").
FALLBACK_BUDGETS = (
    ("actor_rollout_ref.actor.ppo_max_token_len_per_gpu", "ppo_max_token_len_per_gpu"),
    ("actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu", "log_prob_max_token_len_per_gpu"),
    ("actor_rollout_ref.ref.log_prob_max_token_len_per_gpu", "log_prob_max_token_len_per_gpu"),
)
#: Path prefixes that are not local files (checked by the cluster, not here).
_REMOTE_PREFIXES = ("hdfs://", "s3://", "gs://", "gcs://", "http://", "https://", "oss://")


class RecipeConfigError(ConfigError):
    """The recipe config is invalid; the message lists every problem with the key and the fix."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid recipe config ({len(self.problems)} problem(s)):\n{lines}")


@dataclass
class ValidationReport:
    """Outcome of :func:`validate_config`: ``errors`` make the config unusable, ``warnings`` do not."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def raise_if_errors(self) -> None:
        if self.errors:
            raise RecipeConfigError(self.errors)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send ``print`` output of verl (and anything else) to stderr, so stdout carries only the YAML."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


# --------------------------------------------------------------------------------------------------- composing


def compose_config(
    overrides: Sequence[str] = (),
    *,
    config_name: str = DEFAULT_CONFIG_NAME,
    config_dir: str | Path | None = None,
) -> DictConfig:
    """Compose the recipe config with Hydra's compose API.

    Args:
        overrides: Hydra override strings, e.g. ``["trainer.total_epochs=7", "+algorithm.smartthinker.x=1"]``.
        config_name: yaml file (without ``.yaml``) in ``config_dir``.
        config_dir: directory of recipe yaml files; default: this package's ``config/``.

    Returns:
        The composed, unresolved config (interpolations stay, as verl expects). ``trainer.experiment_name`` is
        filled from :func:`build_run_name` when the yaml or the overrides leave it null.

    Raises:
        RecipeConfigError: an override has bad syntax or names an unknown key, or the yaml does not exist.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    directory = Path(config_dir) if config_dir is not None else CONFIG_DIR
    if not (directory / f"{config_name}.yaml").is_file():
        raise RecipeConfigError(
            [
                f"config {config_name!r} not found: {directory / (config_name + '.yaml')} does not exist. "
                f"Fix: pass --config-name with one of {sorted(p.stem for p in directory.glob('*.yaml'))}."
            ]
        )
    parsed = _parse_overrides(overrides)
    if GlobalHydra.instance().is_initialized():  # e.g. called from inside another Hydra app
        GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(directory.resolve()), version_base=None):
            config = compose(config_name=config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise RecipeConfigError([_composition_problem(exc, parsed)]) from exc
    if config.trainer.get("experiment_name") is None:
        config.trainer.experiment_name = build_run_name(config)
    return config


def _parse_overrides(overrides: Sequence[str]) -> list[Override]:
    """Parse with Hydra's override parser; :class:`RecipeConfigError` names every override that does not parse."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    parsed, problems = [], []
    for line in overrides:
        try:
            parsed += parser.parse_overrides([line])
        except OverrideParseException as exc:
            problems.append(
                f"override {line!r} is not valid Hydra syntax ({_one_line(exc.message)}). Fix: write key=value, "
                "+new.key=value or ~key; quote values with special characters: key='a,b'."
            )
    if problems:
        raise RecipeConfigError(problems)
    return parsed


def _composition_problem(exc: Exception, overrides: Sequence[Override]) -> str:
    """Hydra's message plus the fix, chosen by the exception type and the override it concerns."""
    from hydra.errors import MissingConfigException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    message = _one_line(exc).rstrip(".")
    if isinstance(exc, MissingConfigException) and exc.options:
        group = exc.missing_cfg_file.rpartition("/")[0]
        return f"{exc.missing_cfg_file}: no such config. Fix: {group} is one of {', '.join(exc.options)}."
    cause = exc.__cause__
    if isinstance(cause, ConfigAttributeError | ConfigKeyError) and cause.full_key:
        missing = cause.full_key  # the first key on the path that does not exist
        for override in overrides:
            key = override.key_or_group
            changes = not (override.is_add() or override.is_force_add() or override.is_delete())
            if changes and (key == missing or key.startswith(f"{missing}.")):
                return (
                    f"{key}: no such key in the recipe config ({message}). Fix: correct the spelling "
                    f"(`smartthinker-verl check-config` prints every key), or add a new key with a leading '+': "
                    f"+{key}=VALUE."
                )
    if cause is not None:
        message += f" ({_one_line(cause)})"
    return (
        f"bad override: {message}. Fix: key=value changes a key, +key=value adds one, ++key=value adds or "
        "changes, ~key removes one."
    )


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def build_run_name(config: DictConfig) -> str:
    """A run name from what matters: model, estimator, non-default SmartThinker options, group size, batch, lr.

    Example: ``deepseek-r1-distill-qwen-1.5b-smartthinker-g8-b64-lr1e-06-resp8000``; an ablation with
    ``+algorithm.smartthinker.penalty=symmetric`` gets ``-symmetric`` after the estimator.
    """
    model = Path(str(config.actor_rollout_ref.model.path).rstrip("/")).name.lower() or "model"
    algorithm = config.algorithm
    parts = [model, str(algorithm.adv_estimator)]
    smartthinker = get_method(CONFIG_KEY)
    options = algorithm.get(smartthinker.name)
    if METHODS.get(str(algorithm.adv_estimator)) is smartthinker and isinstance(options, DictConfig):  # ablations
        default = smartthinker.options_type()
        if options.get("optimal_length", default.optimal_length) != default.optimal_length:
            parts.append(f"lopt-{options.optimal_length}")
        if options.get("penalty", default.penalty) != default.penalty:
            parts.append(str(options.penalty))
        if options.get("coefficient", default.coefficient) != default.coefficient:
            parts.append(f"coef-{options.coefficient}{options.get('fixed_coefficient') or ''}")
    if not algorithm.get("norm_adv_by_std_in_grpo", True):
        parts.append("nostd")
    rollout = config.actor_rollout_ref.rollout
    parts += [
        f"g{rollout.n}",
        f"b{config.data.train_batch_size}",
        f"lr{config.actor_rollout_ref.actor.optim.lr:g}",
        f"resp{config.data.max_response_length}",
    ]
    return re.sub(r"[^A-Za-z0-9._+-]", "_", "-".join(parts))


def render_yaml(config: DictConfig) -> str:
    """The config as YAML with every interpolation resolved (what verl's TaskRunner will see)."""
    return OmegaConf.to_yaml(config, resolve=True)


# -------------------------------------------------------------------------------------------------- validation


def validate_config(config: DictConfig, *, require_files: bool) -> ValidationReport:
    """Run verl's ``validate_config`` and the checks verl leaves to the GPU run; collect every problem.

    Args:
        config: a composed recipe config (not modified).
        require_files: missing data files (and a missing local model directory) are errors when true (a real
            run), warnings when false (a dry run on a machine without the data).

    Returns:
        The report; call ``report.raise_if_errors()`` to turn errors into :class:`RecipeConfigError`.
    """
    report = ValidationReport()
    resolved = _check_resolves(config, report)
    if resolved is None:
        return report
    _check_batch_sizes(resolved, report)
    if _check_plugin(report):
        _check_estimator(resolved, report)
        _check_reward(resolved, report)
        _check_shaping(resolved, report)
    _check_verl(resolved, report)
    _check_paths(resolved, report, require_files=require_files)
    _check_checkpoint_dir(resolved, report)
    _check_max_model_len(resolved, report)
    for warning in report.warnings:
        logger.warning("%s", warning)
    return report


def _check_resolves(config: DictConfig, report: ValidationReport) -> DictConfig | None:
    from omegaconf.errors import OmegaConfBaseException

    resolved = copy.deepcopy(config)
    try:
        OmegaConf.resolve(resolved)
    except OmegaConfBaseException as exc:
        report.errors.append(
            f"{getattr(exc, 'full_key', '?')}: interpolation does not resolve ({_one_line(exc)}). "
            "Fix: set the referenced key, or replace the ${...} value."
        )
        return None
    return resolved


def _check_batch_sizes(config: DictConfig, report: ValidationReport) -> None:
    """Divisibility that verl's ``validate_config`` leaves to the workers: prompts, mini-batches, GPUs,
    micro-batches."""
    data, actor, rollout, trainer = (
        config.data,
        config.actor_rollout_ref.actor,
        config.actor_rollout_ref.rollout,
        config.trainer,
    )
    n_gpus = int(trainer.n_gpus_per_node) * int(trainer.nnodes)
    train_bs, mini_bs, n = int(data.train_batch_size), int(actor.ppo_mini_batch_size), int(rollout.n)
    if n_gpus <= 0:
        report.errors.append(
            f"trainer.n_gpus_per_node * trainer.nnodes = {n_gpus}: need at least one GPU. "
            "Fix: set NGPUS/NNODES (recipes) or trainer.n_gpus_per_node / trainer.nnodes."
        )
        return
    _check_mini_batch_divides(train_bs, mini_bs, report)
    if actor.use_dynamic_bsz:  # without it, verl's validate_config makes this check
        _check_responses_split_over_gpus(train_bs, n, n_gpus, report)
    _check_data_parallel_split(actor, mini_bs, n, n_gpus, report)
    _check_rollout_tensor_parallel(rollout, n_gpus, report)
    if actor.use_dynamic_bsz:
        _check_token_budget_fits_a_sequence(data, actor, report)


def _check_mini_batch_divides(train_bs: int, mini_bs: int, report: ValidationReport) -> None:
    """The PPO mini-batch (in prompts) must divide the train batch."""
    if mini_bs <= 0 or train_bs % mini_bs != 0:
        report.errors.append(
            f"data.train_batch_size={train_bs} is not a multiple of actor_rollout_ref.actor.ppo_mini_batch_size="
            f"{mini_bs} (both count prompts). Fix: choose a mini-batch that divides the batch, e.g. "
            f"actor_rollout_ref.actor.ppo_mini_batch_size={_largest_divisor_at_most(train_bs, mini_bs)}."
        )


def _check_responses_split_over_gpus(train_bs: int, n: int, n_gpus: int, report: ValidationReport) -> None:
    """The batch's responses (prompts * rollout.n) must split evenly over the GPUs."""
    if (train_bs * n) % n_gpus != 0:
        report.errors.append(
            f"data.train_batch_size * actor_rollout_ref.rollout.n = {train_bs} * {n} = {train_bs * n} responses do "
            f"not split evenly over {n_gpus} GPUs. Fix: make the product a multiple of trainer.n_gpus_per_node * "
            "trainer.nnodes."
        )


def _check_data_parallel_split(actor: DictConfig, mini_bs: int, n: int, n_gpus: int, report: ValidationReport) -> None:
    """Sequence parallelism must divide the GPUs and a mini-batch's responses the data-parallel ranks.

    Without dynamic batching, the micro-batch must also divide each rank's share of a mini-batch.
    """
    sp = int(actor.get("ulysses_sequence_parallel_size", 1) or 1)
    dp = n_gpus // sp if sp > 0 and n_gpus % sp == 0 else 0
    if dp == 0:
        report.errors.append(
            f"actor_rollout_ref.actor.ulysses_sequence_parallel_size={sp} does not divide the {n_gpus} GPUs. "
            "Fix: use a divisor of the GPU count."
        )
    elif mini_bs > 0 and (mini_bs * n) % dp != 0:
        report.errors.append(
            f"actor_rollout_ref.actor.ppo_mini_batch_size * rollout.n = {mini_bs * n} responses per mini-batch do "
            f"not split over {dp} data-parallel ranks. Fix: make ppo_mini_batch_size * rollout.n a multiple of {dp}."
        )
    elif not actor.use_dynamic_bsz and actor.get("ppo_micro_batch_size_per_gpu"):
        per_gpu, micro = mini_bs * n // dp, int(actor.ppo_micro_batch_size_per_gpu)
        if per_gpu % micro != 0:
            report.errors.append(
                f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={micro} does not divide the {per_gpu} "
                "responses each GPU gets per mini-batch. Fix: choose a divisor, or set "
                "actor_rollout_ref.actor.use_dynamic_bsz=true."
            )


def _check_rollout_tensor_parallel(rollout: DictConfig, n_gpus: int, report: ValidationReport) -> None:
    """The rollout's tensor-parallel size must divide the GPUs."""
    tp = int(rollout.get("tensor_model_parallel_size", 1) or 1)
    if tp <= 0 or n_gpus % tp != 0:
        report.errors.append(
            f"actor_rollout_ref.rollout.tensor_model_parallel_size={tp} does not divide the {n_gpus} GPUs. "
            "Fix: use a divisor of the GPU count."
        )


def _check_token_budget_fits_a_sequence(data: DictConfig, actor: DictConfig, report: ValidationReport) -> None:
    """With dynamic batching, each GPU's token budget must hold one full prompt + response."""
    longest = int(data.max_prompt_length) + int(data.max_response_length)
    if int(actor.ppo_max_token_len_per_gpu) < longest:
        report.errors.append(
            f"actor_rollout_ref.actor.ppo_max_token_len_per_gpu={actor.ppo_max_token_len_per_gpu} is below one "
            f"full sequence (data.max_prompt_length + data.max_response_length = {longest}). Fix: raise it to "
            f"at least {longest}."
        )


def _largest_divisor_at_most(value: int, bound: int) -> int:
    return max((d for d in range(1, max(1, min(value, bound)) + 1) if value % d == 0), default=1)


def _check_plugin(report: ValidationReport) -> bool:
    """Import the plugin ourselves: verl swallows a failing entry point and only says 'Unknown ...' later."""
    try:
        import verl  # noqa: F401  (loads entry points and VERL_USE_EXTERNAL_MODULES)

        importlib.import_module(PLUGIN_MODULE)
    except Exception as exc:  # any import-time failure must reach the user
        report.errors.append(
            f"the plugin {PLUGIN_MODULE} does not import: {type(exc).__name__}: {exc}. Fix: install the project "
            "(`pip install -e .`, or `make install`) with verl pinned as in setup.py, and read the traceback above."
        )
        return False
    return True


def _check_estimator(config: DictConfig, report: ValidationReport) -> None:
    """The lookup verl's trainer makes at step 1, with the registered names as the fix."""
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, get_adv_estimator_fn

    name = str(config.algorithm.adv_estimator)
    try:
        get_adv_estimator_fn(name)
    except ValueError as exc:
        report.errors.append(
            f"algorithm.adv_estimator={name!r} is not a registered advantage estimator ({exc}). Fix: use one of "
            f"{sorted(ADV_ESTIMATOR_REGISTRY)} (SmartThinker's is {CONFIG_KEY!r}; the length baselines are "
            f"{', '.join(sorted(m.name for m in primary_methods() if m.name != CONFIG_KEY))}; docs/baselines.md)."
        )


def _check_reward(config: DictConfig, report: ValidationReport) -> None:
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
        report.errors.append(
            f"reward.reward_manager.name={manager.name!r} (source={manager.source}) does not resolve: {exc}. "
            f"Fix: use one of {known} (SmartThinker's is {MANAGER_NAME!r})."
        )
    function = config.reward.get("custom_reward_function") or {}

    try:  # reward.smartthinker: the gate and the grading pool (grade_timeout_s, grader_processes)
        options = RewardOptions.from_mapping(config.reward.get("smartthinker"))
        if manager.source == "register" and manager.name == MANAGER_NAME:
            check_one_route(config, options, custom=bool(function.get("path")))
        elif options != RewardOptions():
            report.errors.append(
                f"{OPTIONS_KEY} sets {options}, but only the smartthinker reward manager reads it "
                f"(reward.reward_manager.name={manager.name!r}). Fix: set reward.reward_manager.name={MANAGER_NAME}, "
                "or pass them to SmartThinker's compute_score as +reward.custom_reward_function.reward_kwargs.<key>="
            )
    except ConfigError as exc:
        report.errors.append(str(exc))
    if function.get("path"):
        try:
            scorer = load_extern_object(module_path=function.path, object_name=function.name)
        except Exception as exc:
            report.errors.append(
                f"reward.custom_reward_function (path={function.path}, name={function.name}) does not load: "
                f"{type(exc).__name__}: {exc}. Fix: point path at a module (pkg://dotted.module or a .py file) "
                "that defines that function; SmartThinker's is pkg://smartthinker_verl.scoring, compute_score."
            )
        else:
            if not callable(scorer):
                report.errors.append(
                    f"reward.custom_reward_function.name={function.name!r} in {function.path} is not callable. "
                    "Fix: name a function."
                )


def _check_shaping(config: DictConfig, report: ValidationReport) -> None:
    """What the active shaping method's estimator checks at step 1, by the functions it calls: options valid,
    normaliser usable, no other method's block changed; plus KL kept out of the reward and the state callback."""
    from smartthinker_verl.advantage import check_settings
    from smartthinker_verl.run_state import CALLBACK_CLASS
    from smartthinker_verl.shaping import find_method, foreign_option_errors

    algorithm = config.algorithm
    active = str(algorithm.adv_estimator)
    method = find_method(active)
    if method is None:
        report.errors.extend(foreign_option_errors(algorithm, active))
        return
    report.errors.extend(check_settings(algorithm, method)[2])
    if method.state_type is not None and config.trainer.get("checkpoint_callback_class") != CALLBACK_CLASS:
        report.errors.append(
            f"algorithm.adv_estimator={active} keeps state across steps, which must be saved with every "
            f"checkpoint. Fix: trainer.checkpoint_callback_class={CALLBACK_CLASS} (the recipe yaml sets it)"
        )


def _check_verl(config: DictConfig, report: ValidationReport) -> None:
    """verl's own ``validate_config`` (it prints; stdout is kept for the YAML)."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config as verl_validate_config

    try:
        with stdout_to_stderr(), warnings.catch_warnings():
            # need_critic warns that a non-GAE estimator disables the critic: expected here.
            warnings.filterwarnings("ignore", message="Disabled critic")
            verl_validate_config(
                config=config,
                use_reference_policy=need_reference_policy(config),
                use_critic=need_critic(config),
            )
    except Exception as exc:  # verl raises AssertionError, ValueError and others
        report.errors.append(
            f"verl's validate_config rejected the config: {type(exc).__name__}: {_one_line(exc)}. "
            "Fix: change the key it names."
        )


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, ListConfig | list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _check_paths(config: DictConfig, report: ValidationReport, *, require_files: bool) -> None:
    target = report.errors if require_files else report.warnings
    for key in ("data.train_files", "data.val_files"):
        value = OmegaConf.select(config, key)
        files = _as_list(value)
        if not files:
            report.errors.append(f"{key} is empty. Fix: point it at the parquet files of data_preprocess/.")
        for name in files:
            if name.startswith(_REMOTE_PREFIXES):
                continue
            if not Path(name).expanduser().is_file():
                target.append(
                    f"{key}: {name} does not exist. Fix: write it with data_preprocess/ (see docs/gpu.md), set "
                    "DATA_DIR for the recipes, or override the key."
                )
    model = str(config.actor_rollout_ref.model.path)
    looks_local = model.startswith(("/", "./", "../", "~"))
    if looks_local and not Path(model).expanduser().exists():
        target.append(
            f"actor_rollout_ref.model.path: {model} does not exist. Fix: set MODEL_PATH (recipes) to a local "
            "checkpoint directory or a Hugging Face model id."
        )


def _check_checkpoint_dir(config: DictConfig, report: ValidationReport) -> None:
    """A relative checkpoint folder is per node (and, in a Ray job, inside Ray's per-job working_dir copy)."""
    directory = str(config.trainer.default_local_dir)
    if Path(directory).is_absolute() or directory.startswith(_REMOTE_PREFIXES):
        return
    nnodes = int(config.trainer.nnodes)
    in_job = os.environ.get(RAY_JOB_ENV) == "1"
    if nnodes > 1 or in_job:
        where = f"trainer.nnodes={nnodes}" if nnodes > 1 else "a Ray job"
        report.errors.append(
            f"trainer.default_local_dir={directory} is relative: with {where} every rank writes its shards to its "
            "own node's disk (in a Ray job: into Ray's per-job working_dir copy, which Ray may delete), so resume and "
            "`smartthinker-verl convert` break. Fix: CHECKPOINT_DIR=/shared/checkpoints (recipes; a folder every "
            "node mounts at the same path) or trainer.default_local_dir=/shared/checkpoints/RUN."
        )


def _check_max_model_len(config: DictConfig, report: ValidationReport) -> None:
    rollout, data = config.actor_rollout_ref.rollout, config.data
    longest = int(data.max_prompt_length) + int(data.max_response_length)
    value = rollout.get("max_model_len")
    if value is not None and int(value) < longest:
        report.errors.append(
            f"actor_rollout_ref.rollout.max_model_len={value} is below one full sequence (data.max_prompt_length + "
            f"data.max_response_length = {longest}). Fix: remove the override (the recipe sets prompt + response) "
            f"or raise it to {longest}."
        )


# ------------------------------------------------------------------------------------------------------ the CLI


def flash_attn_available() -> bool:
    """Whether ``flash_attn`` is importable here (found, not imported: importing it needs a GPU build)."""
    return importlib.util.find_spec("flash_attn") is not None


def apply_attention_fallback(config: DictConfig) -> None:
    """Without flash-attn on the driver, train with :data:`SDPA_SETTINGS` (plain PyTorch attention, padded
    micro-batches) and cap :data:`FALLBACK_BUDGETS` at the recipe's ``sdpa_fallback`` values, since padded
    micro-batches hold more tokens than the packed budgets assume. An ``attn_implementation`` already in the config
    (an override, or ``+platform=cpu``) leaves the config as it is: the user decided."""
    from omegaconf import open_dict

    if OmegaConf.select(config, SDPA_SETTINGS[0][0]) is not None or flash_attn_available():
        return
    with open_dict(config):
        for key, value in SDPA_SETTINGS:
            OmegaConf.update(config, key, value, force_add=True)
        shrunk = _cap_budgets(config)
    logger.warning(
        "flash-attn is not installed here: training attention falls back to sdpa (%s), and the token budgets are "
        "capped for padded micro-batches: %s (docs/gpu.md 'Without flash-attn'; install flash-attn: 'flash-attention')",
        " ".join(f"{key}={value}" for key, value in SDPA_SETTINGS),
        ", ".join(shrunk) or "none (the sdpa_fallback block sets no budget)",
    )


def _cap_budgets(config: DictConfig) -> list[str]:
    """Cap each of :data:`FALLBACK_BUDGETS` at its ``sdpa_fallback`` value; ``key=old->new`` for each change."""
    limits = config.get("sdpa_fallback") or {}
    # Read every budget before changing one: the log-prob budgets interpolate the actor's.
    currents = {key: OmegaConf.select(config, key) for key, _ in FALLBACK_BUDGETS}
    changed = []
    for key, name in FALLBACK_BUDGETS:
        limit = limits.get(name)
        if limit is None or OmegaConf.select(config, key.rsplit(".", 1)[0]) is None:
            continue
        current = currents[key]
        if current is None or int(current) > int(limit):
            OmegaConf.update(config, key, int(limit), force_add=True)
            changed.append(f"{key}={current}->{int(limit)}")
    return changed


def absolute_checkpoint_dir(config: DictConfig, cwd: str | Path | None = None) -> None:
    """Make a relative ``trainer.default_local_dir`` absolute against the launch folder (in place), keeping its
    interpolations: the trainer's Ray actor has another working directory, and the resume guard, the doctor and
    ``convert`` look in the launch folder."""
    from omegaconf import open_dict

    resolved = str(OmegaConf.select(config, "trainer.default_local_dir"))
    if resolved.startswith(_REMOTE_PREFIXES) or Path(resolved).expanduser().is_absolute():
        if resolved.startswith("~"):
            config.trainer.default_local_dir = str(Path(resolved).expanduser())
        return
    raw = config.trainer._get_node("default_local_dir")._value()
    with open_dict(config):
        config.trainer.default_local_dir = str(Path(cwd or os.getcwd()) / str(raw))


def prepare(overrides: Sequence[str], *, config_name: str, require_files: bool) -> DictConfig:
    """Compose, apply the sdpa fallback, validate and make the checkpoint folder absolute: the config every launch
    path runs; :class:`RecipeConfigError` lists every problem. Logs what padding costs when sequences are not
    packed."""
    from smartthinker_verl.launch.memory import sdpa_fallback_warning

    with stdout_to_stderr():
        config = compose_config(overrides, config_name=config_name)
        apply_attention_fallback(config)
        validate_config(config, require_files=require_files).raise_if_errors()
        absolute_checkpoint_dir(config)
        warning = sdpa_fallback_warning(_resolved(config))
        if warning:
            logger.warning("%s", warning)
    return config


def _resolved(config: DictConfig) -> DictConfig:
    resolved = copy.deepcopy(config)
    OmegaConf.resolve(resolved)
    return resolved


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="OVERRIDE",
        help="Hydra overrides, e.g. trainer.total_epochs=7 +algorithm.smartthinker.penalty=symmetric",
    )
    parser.add_argument(
        "--config-name",
        default=DEFAULT_CONFIG_NAME,
        help=f"recipe yaml in {CONFIG_DIR} (default: %(default)s)",
    )
    parser.add_argument(
        "--strict-files",
        action="store_true",
        help="treat missing data files / model directory as errors (a real run does); default: warnings",
    )
    parser.add_argument("-o", "--output", type=Path, help="also write the resolved YAML to this file")


def run(args: argparse.Namespace) -> int:
    try:
        config = prepare(args.overrides, config_name=args.config_name, require_files=args.strict_files)
    except RecipeConfigError as exc:
        logger.error("%s", exc)
        return 2
    text = render_yaml(config)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        logger.info("wrote %s", args.output)
    sys.stdout.write(text)
    logger.info("config OK: %s", config.trainer.experiment_name)
    return 0
