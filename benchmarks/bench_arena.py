"""Time the full default length arena: every method (grpo and the registered ones), 5 seeds, 300 steps, 5 levels x 8
prompts x 8 samples, on ``--workers`` processes.

Target: at most 3 minutes on 2 CPU cores. The machine's load (``os.getloadavg``) is printed before and after: on a
shared machine the wall time measures the machine as much as the arena.

    python benchmarks/bench_arena.py [--workers 2] [--seeds 5] [--steps 300] [--out outputs/bench_arena]
"""

from __future__ import annotations

import argparse
import os
import time

from smartthinker_verl.arena import estimators, loop, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", default="outputs/bench_arena")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}, cpus: {os.cpu_count()}")
    start = time.perf_counter()
    spec = loop.ArenaSpec(steps=args.steps)
    methods = estimators.available_methods()
    configs = {m: estimators.method_config(m, spec.max_length, spec.group_size) for m in methods}
    composed = time.perf_counter()
    trajectories = loop.run_arena(spec, configs, range(args.seeds), workers=args.workers)
    ran = time.perf_counter()
    report.write(report.summarise(spec, trajectories, wall_time_s=ran - start), args.out)
    done = time.perf_counter()
    print(f"{len(methods)} methods x {args.seeds} seeds x {args.steps} steps, {spec.prompts * spec.group_size} samples")
    print(f"compose {composed - start:.1f} s, runs {ran - composed:.1f} s, report {done - ran:.1f} s")
    print(f"wall time {done - start:.1f} s (target <= 180 s on 2 cores); load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
