"""``smartthinker-verl check-config [--strict-files] [-o FILE] [OVERRIDE ...]``: compose and validate a recipe's
config without GPUs; the resolved config goes to stdout as YAML, logs to stderr."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from smartthinker_verl.launch.compose import add_recipe_arguments, prepare, render_yaml

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recipe_arguments(parser)
    parser.add_argument(
        "--strict-files",
        action="store_true",
        help="treat missing data files / model directory as errors (a real run does); default: warnings",
    )
    parser.add_argument("-o", "--output", type=Path, help="also write the resolved YAML to this file")


def run(args: argparse.Namespace) -> int:
    """Raises :class:`~smartthinker_verl.launch.validate.RecipeConfigError` (exit 2, by the CLI) on a bad config."""
    config = prepare(args.overrides, config_name=args.config_name, require_files=args.strict_files)
    text = render_yaml(config)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        logger.info("wrote %s", args.output)
    sys.stdout.write(text)
    logger.info("config OK: %s", config.trainer.experiment_name)
    return 0
