"""A training step's grading wall time through verl's reward loop, per number of grader processes.

    python benchmarks/bench_reward_load.py [--graders 1 2 4] [--repeats 3] [--workers 4] [--timeout 5]

512 responses (64 prompts x 8) of up to ~8,000 tokens (right, wrong, truncated, unparsable and 4 answers that
run past the limit) scored by ``--workers`` verl RewardLoopWorkers with the ``smartthinker`` manager, all sharing
one process's grading pool (tests/reward_step.py). Reports the median and worst step time over the repeats; the
first step of each setting (pool start-up) is excluded.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import reward_step  # noqa: E402
from conftest import qwen_tokenizer_dir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graders", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir()))
    batch = reward_step.make_batch(tokenizer)
    counts = {kind: batch.kinds.count(kind) for kind in sorted(set(batch.kinds))}
    print(f"512 responses, {args.workers} reward workers, {args.timeout:g} s limit per answer; {counts}")
    for graders in args.graders:
        step = reward_step.RewardStep(
            reward_step.reward_config(qwen_tokenizer_dir(), graders, args.timeout, args.workers)
        )
        step(batch.data)  # start the pool
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            scores, extras = step(batch.data)
            times.append(time.perf_counter() - start)
        print(
            f"grader_processes={graders}: median {statistics.median(times):6.2f} s, worst {max(times):6.2f} s "
            f"({sum(s == 1.0 for s in scores)} right, {int(extras['grading_timed_out'].sum())} timed out)",
            flush=True,
        )


if __name__ == "__main__":
    main()
