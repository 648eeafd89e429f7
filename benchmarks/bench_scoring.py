"""Scorer throughput: answers graded per second with 1 and 2 grading processes, called from threads as verl does.

    python benchmarks/bench_scoring.py [--answers 512] [--processes 1 2]

Answers imitate a GRPO step: a paragraph of reasoning, then a boxed answer (integers, fractions, LaTeX, tuples),
half of them wrong. Each measurement uses a fresh pool and excludes worker start-up (reported separately).

Measured once (2 loaded cores): math-verify's first grading in a fresh worker takes about 0.5 s (grammar loading;
the pool's warm-up grades one answer off the clock for it), and pebble needs about 3 s to kill and replace a worker
past its limit (covered by grading_pool.STUCK_GRACE_S).
"""

from __future__ import annotations

import argparse
import random
import time
from concurrent.futures import ThreadPoolExecutor

from smartthinker_verl.grading_pool import GradingPool
from smartthinker_verl.scoring import split_answer

GOLDS = ["72", "\\frac{3}{4}", "2\\sqrt{2}", "(1, 2)", "0.25", "18", "\\pi/3", "1600"]
WRONG = ["71", "\\frac{4}{3}", "2\\sqrt{3}", "(2, 1)", "0.5", "81", "\\pi/6", "1,500"]


def make_answers(count: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    reasoning = "Let me compute this step by step. First we expand the expression and collect terms. " * 6
    answers = []
    for i in range(count):
        j = i % len(GOLDS)
        predicted = GOLDS[j] if rng.random() < 0.5 else WRONG[j]
        answers.append((f"<think>{reasoning}</think>\nThe final answer is $\\boxed{{{predicted}}}$.", GOLDS[j]))
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=512)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    answers = make_answers(args.answers)
    print(f"{args.answers} answers per run (a 64 x 8 GRPO step)")
    for processes in args.processes:
        pool = GradingPool(num_processes=processes)
        start = time.perf_counter()
        with ThreadPoolExecutor(processes) as threads:  # start the workers
            list(threads.map(lambda _, p=pool: p.verify("\\boxed{1}", "1"), range(processes)))
        startup = time.perf_counter() - start
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as threads:  # verl grades from several threads at once
            results = list(threads.map(lambda pair, p=pool: p.verify(split_answer(pair[0])[1], pair[1]), answers))
        elapsed = time.perf_counter() - start
        pool.close()
        correct = sum(ok for ok, _ in results)
        print(
            f"processes={processes}: {args.answers / elapsed:7.1f} answers/s  ({elapsed:.2f} s; "
            f"start-up {startup:.2f} s; {correct} correct, {sum(t for _, t in results)} timed out)"
        )


if __name__ == "__main__":
    main()
