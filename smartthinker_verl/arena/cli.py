"""``smartthinker-verl arena``: run the length arena and write ``arena.json``, ``arena.md`` and ``arena.png``.

OVERRIDE: Hydra overrides of the recipe config applied to every method, e.g. ``+algorithm.shorter_better.beta=0.002``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from smartthinker_verl.arena import curves, estimators, loop, report
from smartthinker_verl.cli import positive
from smartthinker_verl.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra overrides for every method's config")
    parser.add_argument("--methods", nargs="+", help="estimator names (default: grpo and every registered method)")
    parser.add_argument("--seeds", type=positive, default=5, help="seeds 0..N-1 per method (default: %(default)s)")
    parser.add_argument("--steps", type=positive, default=300, help="policy steps (default: %(default)s)")
    parser.add_argument("--prompts-per-level", type=positive, default=8, help="default: %(default)s")
    parser.add_argument(
        "--group-size", type=positive, default=8, help="samples per prompt per step (default: %(default)s)"
    )
    parser.add_argument("--max-length", type=int, default=curves.DEFAULT_MAX_LENGTH, help="default: %(default)s")
    parser.add_argument("--learning-rate", type=float, default=loop.DEFAULT_LEARNING_RATE, help="default: %(default)s")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--curves", type=Path, help="JSON or YAML file of levels (docs/arena.md)")
    which.add_argument("--overthinking", action="store_true", help="the default levels, declining past their peak")
    parser.add_argument("--workers", type=positive, default=min(2, os.cpu_count() or 1), help="processes (%(default)s)")
    parser.add_argument("--out", type=Path, default=Path("outputs/arena"), help="folder (default: %(default)s)")
    parser.add_argument("--no-plot", action="store_true", help="skip arena.png (no matplotlib needed)")


def run(args: argparse.Namespace) -> int:
    if args.group_size < 2 or args.max_length < 2 * loop.MIN_LENGTH:
        raise ConfigError(f"--group-size must be >= 2 and --max-length >= {2 * loop.MIN_LENGTH}. Fix: raise them")
    levels = curves.load_levels(args.curves) if args.curves else curves.DEFAULT_LEVELS
    levels = curves.overthinking(levels) if args.overthinking else levels
    spec = loop.ArenaSpec(
        levels=levels,
        prompts_per_level=args.prompts_per_level,
        group_size=args.group_size,
        steps=args.steps,
        max_length=args.max_length,
        learning_rate=args.learning_rate,
    )
    methods = args.methods or estimators.available_methods()
    start = time.perf_counter()
    configs = {m: estimators.method_config(m, spec.max_length, spec.group_size, args.overrides) for m in methods}
    trajectories = loop.run_arena(spec, configs, range(args.seeds), workers=args.workers, progress=True)
    summary = report.summarise(spec, trajectories, wall_time_s=time.perf_counter() - start)
    for path in report.write(summary, args.out, with_plot=not args.no_plot):
        print(path)
    print(f"wall time {summary['wall_time_s']:.0f} s ({len(methods)} methods x {args.seeds} seeds)")
    return 0
