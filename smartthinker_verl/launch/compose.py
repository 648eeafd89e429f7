"""Compose a recipe config: the one path ``check-config``, ``--dry-run``, the doctor and a real launch take.

:func:`compose_config` builds ``config/smartthinker_trainer.yaml`` (verl's ``ppo_trainer`` plus SmartThinker) with
Hydra's compose API and override strings; :func:`prepare` adds validation (:mod:`.validate`) and an absolute
checkpoint folder, so what ``check-config`` and the recipes' ``--dry-run`` print is what would run.

Attention is chosen in the config, never from what the launching machine has installed: the recipe trains with
flash-attn (packed sequences); ``+attention=sdpa`` (``config/attention/sdpa.yaml``) selects PyTorch's sdpa with
padded micro-batches and their smaller token budget. The doctor checks flash-attn on every GPU node.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    from hydra.core.override_parser.types import Override

from smartthinker_verl import resolvers  # noqa: F401  (registers ${smartthinker_sum:...} of the recipe yaml)
from smartthinker_verl.launch.validate import REMOTE_PREFIXES, RecipeConfigError, one_line, validate_config
from smartthinker_verl.options import CONFIG_KEY
from smartthinker_verl.shaping import find_method, get_method

logger = logging.getLogger(__name__)

#: Directory of the recipe yaml files (package data).
CONFIG_DIR = Path(__file__).resolve().parent / "config"
#: The recipe config every recipe composes.
DEFAULT_CONFIG_NAME = "smartthinker_trainer"


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The Hydra overrides and ``--config-name`` of every command that composes a recipe config."""
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="OVERRIDE",
        help="Hydra overrides, e.g. trainer.total_epochs=7 +algorithm.smartthinker.penalty=symmetric +attention=sdpa",
    )
    parser.add_argument(
        "--config-name", default=DEFAULT_CONFIG_NAME, help=f"recipe yaml in {CONFIG_DIR} (default: %(default)s)"
    )


def compose_config(overrides: Sequence[str] = (), *, config_name: str = DEFAULT_CONFIG_NAME) -> DictConfig:
    """Compose ``config/<config_name>.yaml`` with Hydra's compose API and override strings, e.g.
    ``["trainer.total_epochs=7", "+algorithm.smartthinker.x=1"]``.

    Returns the unresolved config (interpolations stay, as verl expects), ``trainer.experiment_name`` filled from
    :func:`build_run_name` when the yaml and the overrides leave it null. Raises :class:`RecipeConfigError` for an
    override with bad syntax or an unknown key, or a yaml that does not exist.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    if not (CONFIG_DIR / f"{config_name}.yaml").is_file():
        raise RecipeConfigError(
            [
                f"config {config_name!r} not found: {CONFIG_DIR / (config_name + '.yaml')} does not exist. "
                f"Fix: pass --config-name with one of {sorted(p.stem for p in CONFIG_DIR.glob('*.yaml'))}."
            ]
        )
    parser, parsed, problems = OverridesParser.create(), [], []
    for line in overrides:
        try:
            parsed += parser.parse_overrides([line])
        except OverrideParseException as exc:
            problems.append(
                f"override {line!r} is not valid Hydra syntax ({one_line(exc.message)}). Fix: write key=value, "
                "+new.key=value or ~key; quote values with special characters: key='a,b'."
            )
    if problems:
        raise RecipeConfigError(problems)
    GlobalHydra.instance().clear()  # e.g. called from inside another Hydra app
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            config = compose(config_name=config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise RecipeConfigError([_composition_problem(exc, parsed)]) from exc
    if config.trainer.get("experiment_name") is None:
        config.trainer.experiment_name = build_run_name(config)
    return config


def _composition_problem(exc: Exception, overrides: Sequence[Override]) -> str:
    """Hydra's message plus the fix, chosen by the exception type and the override it concerns."""
    from hydra.errors import MissingConfigException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    message = one_line(exc).rstrip(".")
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
        message += f" ({one_line(cause)})"
    return (
        f"bad override: {message}. Fix: key=value changes a key, +key=value adds one, ++key=value adds or "
        "changes, ~key removes one."
    )


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
    if find_method(str(algorithm.adv_estimator)) is smartthinker and isinstance(options, DictConfig):  # ablations
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


def prepare(overrides: Sequence[str], *, config_name: str, require_files: bool) -> DictConfig:
    """Compose, validate (:class:`RecipeConfigError`: every problem, each with its fix) and make a relative
    ``trainer.default_local_dir`` absolute against the launch folder, keeping its interpolations: the config every
    launch path runs. (The trainer's Ray actor has another working directory; the resume guard, the doctor and
    ``convert`` look in the launch folder.)"""
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the YAML
        config = compose_config(overrides, config_name=config_name)
        errors = validate_config(config, require_files=require_files)
    if errors:
        raise RecipeConfigError(errors)
    directory, raw = str(config.trainer.default_local_dir), config.trainer._get_node("default_local_dir")._value()
    if directory.startswith("~"):
        config.trainer.default_local_dir = str(Path(directory).expanduser())
    elif not directory.startswith(REMOTE_PREFIXES) and not Path(directory).is_absolute():
        config.trainer.default_local_dir = str(Path.cwd() / str(raw))
    logger.info("%s", attention_note(config))
    return config


def uses_flash_attn(config: DictConfig) -> bool:
    """Whether the workers import flash-attn: ``flash_attention_2`` (verl's default) or packed sequences."""
    model = config.actor_rollout_ref.model
    implementation = OmegaConf.select(model, "override_config.attn_implementation", default="flash_attention_2")
    return implementation == "flash_attention_2" or bool(model.get("use_remove_padding", False))


def attention_note(config: DictConfig) -> str:
    """One line: the attention the workers will use, and how to switch (read from the config alone)."""
    model = config.actor_rollout_ref.model
    budget = f"ppo_max_token_len_per_gpu={config.actor_rollout_ref.actor.ppo_max_token_len_per_gpu}"
    if uses_flash_attn(config):
        return (
            f"attention: flash-attn, packed sequences ({budget}); every GPU node needs flash-attn (`smartthinker-verl "
            "doctor` checks). Without it: add +attention=sdpa (docs/gpu.md, 'Without flash-attn')"
        )
    implementation = OmegaConf.select(model, "override_config.attn_implementation")
    return f"attention: {implementation}, use_remove_padding={model.use_remove_padding}, {budget}"
