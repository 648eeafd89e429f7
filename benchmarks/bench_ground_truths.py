"""The ground-truth check's speed on a DeepScaleR-sized set: 40,315 rows, as a dry-run would check them.

    python benchmarks/bench_ground_truths.py [--rows 40315] [--distinct 16000] [--processes 2]

Answers imitate DeepScaleR's mix (integers, fractions, radicals, tuples, intervals, LaTeX expressions, text choices,
a few unparseable ones); ``--distinct`` of them differ (each distinct text is parsed once). Prints rows, distinct
answers, the unparseable rows found and the seconds taken, worker start-up included.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from smartthinker_verl.data import build_row, write_parquet
from smartthinker_verl.data.gradable import ground_truth_problems

SHAPES = (
    "{a}",
    "-{a}",
    "\\frac{{{a}}}{{{b}}}",
    "{a}\\sqrt{{{b}}}",
    "({a}, {b})",
    "[{a}, {b})",
    "{a}x^2 + {b}",
    "\\frac{{{a}\\pi}}{{{b}}}",
    "{a}.{b}",
    "{a}^\\circ",
    "\\text{{({c})}}",
    "\\dfrac{{\\sqrt{{{a}}}}}{{{b}}}",
)
BAD = ("}", "\\$")


def make_answers(rows: int, distinct: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    pool = [
        rng.choice(SHAPES).format(a=rng.randint(1, 999), b=rng.randint(2, 99), c=rng.choice("ABCDE"))
        for _ in range(distinct)
    ]
    answers = [rng.choice(pool) for _ in range(rows)]
    for position in range(0, rows, rows // 10):
        answers[position] = BAD[position % 2]
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40315)
    parser.add_argument("--distinct", type=int, default=16000)
    parser.add_argument("--processes", type=int, default=None)
    args = parser.parse_args()
    answers = make_answers(args.rows, args.distinct)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train.parquet"
        rows = [
            build_row(data_source="bench", problem=f"Problem {i}", ground_truth=a, split="train", index=i)
            for i, a in enumerate(answers)
        ]
        write_parquet(rows, path)
        start = time.perf_counter()
        problems = ground_truth_problems([path], processes=args.processes)
        seconds = time.perf_counter() - start
    print(
        f"rows {len(answers)}, distinct answers {len(set(answers))}, unparseable rows found {len(problems)}, "
        f"{seconds:.1f} s (processes: {args.processes or 'default'})"
    )


if __name__ == "__main__":
    main()
