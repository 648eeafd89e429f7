"""Train with SmartThinker through verl's own trainer (the recipes' entry point).

``python -m smartthinker_verl.launch.train [--dry-run] [--config-name NAME] [OVERRIDE ...]``

The config is composed and validated by :func:`smartthinker_verl.launch.compose.prepare`, as ``check-config`` does,
so a dry run (the resolved YAML on stdout; missing data files are warnings there, errors in a real run) validates
exactly what a real run hands to verl's ``run_ppo``. A real run into a folder that already holds a checkpoint stops
unless told what to do (:func:`resume_decision`). Not ``@hydra.main``: Hydra's app wrapper would change the working
directory, write an ``outputs/`` tree per launch and compose the config by a second path.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from smartthinker_verl.cli import exit_status
from smartthinker_verl.errors import ResumeError
from smartthinker_verl.launch.compose import add_recipe_arguments, prepare, render_yaml

logger = logging.getLogger("smartthinker_verl.launch.train")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m smartthinker_verl.launch.train", description=__doc__.splitlines()[0].split(": ", 1)[0]
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="compose and validate without GPUs, print the resolved config as YAML on stdout, and exit",
    )
    add_recipe_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return exit_status("smartthinker_verl.launch.train", lambda: _train(args))


def resume_decision(
    config, overrides: Sequence[str], environ: Mapping[str, str] | None = None
) -> tuple[str | None, str | None]:
    """How a real run treats an existing checkpoint in ``trainer.default_local_dir``: ``(resume_mode, message)``, the
    ``trainer.resume_mode`` to set (None: keep the config's) and a line to log first (None: nothing to say).

    An explicit ``trainer.resume_mode=...`` override is obeyed; else ``RESUME=1`` resumes (``auto``), ``RESUME=0``
    starts over in the same folder (``disable``), and a folder with a checkpoint stops the run (:class:`ResumeError`):
    verl's ``resume_mode=auto`` would silently continue an old run of the same name.
    """
    environ = os.environ if environ is None else environ
    directory = str(config.trainer.default_local_dir)
    try:  # verl writes the marker after each save
        step: int | None = int((Path(directory) / "latest_checkpointed_iteration.txt").read_text().strip())
    except (OSError, ValueError):
        step = None
    explicit = any(o.lstrip("+").startswith("trainer.resume_mode=") for o in overrides)
    resume = environ.get("RESUME", "").strip()
    if explicit:
        mode = str(config.trainer.resume_mode)
        if mode == "auto" and step is not None:
            return None, f"RESUMING {directory} from global_step_{step} (trainer.resume_mode=auto)"
        if mode == "resume_path":
            return None, f"RESUMING from {config.trainer.resume_from_path} (trainer.resume_mode=resume_path)"
        return None, None
    if resume == "1":
        if step is None:
            return "auto", f"RESUME=1 but {directory} has no checkpoint yet: starting a new run there"
        return "auto", f"RESUMING {directory} from global_step_{step} (RESUME=1)"
    if resume == "0":
        note = f" (its checkpoint global_step_{step} is ignored and later overwritten)" if step is not None else ""
        return "disable", f"RESUME=0: starting from scratch in {directory}{note}" if note else None
    if step is not None:
        raise ResumeError(
            f"{directory} already holds run {config.trainer.experiment_name} up to global_step_{step}. "
            "Fix: RESUME=1 to continue it from that checkpoint; or a new run name (EXPERIMENT=NAME, or "
            "trainer.experiment_name=NAME) for a new run; or RESUME=0 to start over in that folder."
        )
    return None, None


def launch(config) -> None:
    """Start training with verl's ``run_ppo`` and TaskRunner. The config is resolved here, in the driver, so the
    recipe's own resolvers need not be registered in Ray's processes."""
    from omegaconf import OmegaConf
    from verl.trainer.main_ppo import TaskRunnerV1, run_ppo
    from verl.utils.device import auto_set_device

    OmegaConf.resolve(config)
    auto_set_device(config)
    if config.trainer.use_v1:
        run_ppo(config, task_runner_class=TaskRunnerV1)
    else:
        from verl.trainer.main_ppo_v0 import TaskRunner

        logger.warning("trainer.use_v1=false: verl's legacy trainer (deprecated by verl)")
        run_ppo(config, task_runner_class=TaskRunner)


def _train(args: argparse.Namespace) -> int:
    config = prepare(args.overrides, config_name=args.config_name, require_files=not args.dry_run)
    if args.dry_run:
        sys.stdout.write(render_yaml(config))
        logger.info("dry run: config OK (%s); nothing launched", config.trainer.experiment_name)
        return 0
    mode, message = resume_decision(config, args.overrides)
    if message:
        logger.warning("%s", message)
    if mode is not None:
        config.trainer.resume_mode = mode
    logger.info(
        "launching %s/%s on %d node(s) x %d GPU(s)",
        config.trainer.project_name,
        config.trainer.experiment_name,
        config.trainer.nnodes,
        config.trainer.n_gpus_per_node,
    )
    save_run_config(config)
    launch(config)
    return 0


def save_run_config(config) -> Path:
    """Keep the resolved config beside the checkpoints (``<default_local_dir>/config.yaml``): ``smartthinker-verl
    convert`` reads it for the model card (base model, algorithm options, data)."""
    path = Path(config.trainer.default_local_dir) / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_yaml(config))
    logger.info("resolved config saved to %s", path)
    return path


if __name__ == "__main__":
    sys.exit(main())
