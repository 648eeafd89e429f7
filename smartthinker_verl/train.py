"""Train with SmartThinker through verl's own trainer: ``python -m smartthinker_verl.train [--dry-run] [OVERRIDE ...]``.

The config is the package recipe yaml (``config/smartthinker_trainer.yaml``: verl's ``ppo_trainer`` + SmartThinker)
composed with the Hydra overrides given, by the same function ``smartthinker-verl check-config`` uses, so a dry run
validates exactly what a real run launches. Then, as verl's ``main_ppo`` does, it hands the config to
``verl.trainer.main_ppo.run_ppo`` with verl's TaskRunner (Ray cluster, rollouts, training loop: all verl's).

Before launching it checks what verl would only find out later or hide: the plugin imports, the estimator and
reward manager are registered, batch sizes divide, KL stays out of the reward, the data files exist.

``--dry-run`` composes and validates without GPUs and prints the resolved config as YAML on stdout (logs on
stderr); missing data files are warnings there and errors in a real run.

This is an entry point, not ``@hydra.main``: Hydra's app wrapper would change the working directory and write an
``outputs/`` tree per launch, and would compose the config by a second path.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from smartthinker_verl.recipe_config import DEFAULT_CONFIG_NAME, RecipeConfigError, prepare, render_yaml

logger = logging.getLogger("smartthinker_verl.train")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m smartthinker_verl.train", description=__doc__.splitlines()[0].split(": ", 1)[0]
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="compose and validate without GPUs, print the resolved config as YAML on stdout, and exit",
    )
    parser.add_argument("--config-name", default=DEFAULT_CONFIG_NAME, help="recipe yaml (default: %(default)s)")
    parser.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra overrides (key=value, +key=value)")
    return parser.parse_args(argv)


def launch(config) -> None:
    """Start training: verl's ``run_ppo`` with verl's TaskRunner (as ``verl.trainer.main_ppo.main`` does)."""
    from verl.trainer.main_ppo import TaskRunnerV1, run_ppo
    from verl.utils.device import auto_set_device

    auto_set_device(config)
    if config.trainer.use_v1:
        run_ppo(config, task_runner_class=TaskRunnerV1)
    else:
        from verl.trainer.main_ppo_v0 import TaskRunner

        logger.warning("trainer.use_v1=false: verl's legacy trainer (deprecated by verl)")
        run_ppo(config, task_runner_class=TaskRunner)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        config = prepare(args.overrides, config_name=args.config_name, require_files=not args.dry_run)
    except RecipeConfigError as exc:
        logger.error("%s", exc)
        return 2
    if args.dry_run:
        sys.stdout.write(render_yaml(config))
        logger.info("dry run: config OK (%s); nothing launched", config.trainer.experiment_name)
        return 0
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
