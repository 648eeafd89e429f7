"""reasoning-gym tasks -> verl RL parquet, by difficulty level: DIR/train.parquet and DIR/val.parquet (disjoint).

    python data_preprocess/reasoning_gym_tasks.py --output_dir data/chain_sum   # chain_sum, 2..5 one-digit terms
    python data_preprocess/reasoning_gym_tasks.py --task chain_sum --set min_digits=1,max_digits=1 \\
        --level terms2:min_terms=2,max_terms=2 --level terms4:min_terms=4,max_terms=4 --train 32 --val 64

Each --level is NAME:KEY=VALUE,... (the task's difficulty knobs, reasoning-gym's config fields); --set applies to
every level. Rows per level: --train and --val. Graded by the task's own scorer (smartthinker_verl/task_grading.py,
which also lists the tasks it accepts). Named ..._tasks.py so that it does not shadow the reasoning_gym package.
"""

import argparse
import sys
from pathlib import Path

from smartthinker_verl.cli import exit_status
from smartthinker_verl.data import write_parquet
from smartthinker_verl.data.reasoning_gym_rows import parse_settings, task_splits

DEFAULT_LEVELS = [f"terms{k}:min_terms={k},max_terms={k}" for k in (2, 3, 4, 5)]


def write_tasks(args: argparse.Namespace) -> None:
    shared = parse_settings(args.set)
    levels = {}
    for spec in args.level or DEFAULT_LEVELS:
        name, _, settings = spec.partition(":")
        levels[name.strip()] = {**shared, **parse_settings(settings)}
    train, val = task_splits(args.task, levels, train=args.train, val=args.val, seed=args.seed)
    for name, rows in (("train", train), ("val", val)):
        if rows:
            print(f"{name}: {write_parquet(rows, args.output_dir / f'{name}.parquet')} ({len(rows)} rows)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="chain_sum", help="reasoning-gym dataset name (default chain_sum)")
    parser.add_argument("--set", default="min_digits=1,max_digits=1", help="KEY=VALUE,... for every level")
    parser.add_argument("--level", action="append", help="NAME:KEY=VALUE,... (repeat; default: chain_sum 2..5 terms)")
    parser.add_argument("--train", type=int, default=64, help="training rows per level")
    parser.add_argument("--val", type=int, default=64, help="validation rows per level")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", type=Path, default=Path("data/reasoning_gym"))
    args = parser.parse_args(argv)
    return exit_status(parser.prog, lambda: write_tasks(args))


if __name__ == "__main__":
    sys.exit(main())
