"""The ground-truth check's speed on a DeepScaleR-sized set: 40,315 rows, as a dry-run would check them.

    python benchmarks/bench_ground_truths.py [--rows 40315] [--distinct 16000] [--integers 0.6] [--processes 2]

Answers: a share ``--integers`` of plain integers (not sent to math-verify; DeepScaleR's share is assumed, not
measured here), the rest fractions, radicals, tuples, intervals, LaTeX expressions and text choices drawn from
``--distinct`` texts (each parsed once), and 10 unparseable ones. Prints rows, distinct answers, the unparseable rows
found, wall seconds (worker start-up included) and the workers' CPU seconds (what a loaded machine does not distort),
then the time for a file data_preprocess/ marked as checked.
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from pathlib import Path

from smartthinker_verl.data import build_row, write_parquet
from smartthinker_verl.data.gradable import checked_mark, ground_truth_problems

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


def make_answers(rows: int, distinct: int, integers: float, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    pool = [
        rng.choice(SHAPES[1:]).format(a=rng.randint(1, 999), b=rng.randint(2, 99), c=rng.choice("ABCDE"))
        for _ in range(distinct)
    ]
    answers = [str(rng.randint(0, 9999)) if rng.random() < integers else rng.choice(pool) for _ in range(rows)]
    for position in range(0, rows, rows // 10):
        answers[position] = BAD[position % 2]
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40315)
    parser.add_argument("--distinct", type=int, default=16000)
    parser.add_argument("--integers", type=float, default=0.6)
    parser.add_argument("--processes", type=int, default=None)
    args = parser.parse_args()
    answers = make_answers(args.rows, args.distinct, args.integers)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train.parquet"
        rows = [
            build_row(data_source="bench", problem=f"Problem {i}", ground_truth=a, split="train", index=i)
            for i, a in enumerate(answers)
        ]
        write_parquet(rows, path)
        start, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        problems = ground_truth_problems([path], processes=args.processes)
        seconds = time.perf_counter() - start
        workers_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_seconds = workers_cpu.ru_utime + workers_cpu.ru_stime - cpu.ru_utime - cpu.ru_stime
        write_parquet([row for i, row in enumerate(rows) if i % (len(rows) // 10)], path, metadata=checked_mark())
        start = time.perf_counter()
        ground_truth_problems([path])
        marked = time.perf_counter() - start
    print(
        f"rows {len(answers)}, distinct answers {len(set(answers))}, unparseable rows found {len(problems)}, "
        f"{seconds:.1f} s wall, {cpu_seconds:.1f} s CPU in {args.processes or 'default'} worker processes; "
        f"a file marked by data_preprocess/: {marked:.2f} s"
    )


if __name__ == "__main__":
    main()
