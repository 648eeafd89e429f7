"""Time the `smartthinker` estimator against verl's `grpo_vectorized` on the same batches.

Target: SmartThinker at most 1.2x grpo_vectorized on every batch. Calls are interleaved, best of ``--repeats`` is
reported (the least disturbed run: this machine is shared). Batches are laid out as verl's trainer holds them:
float32 token_level_rewards with the 0/1 score on the last valid token, an int64 response_mask, uid strings.

    python benchmarks/bench_estimator.py [--repeats 15] [--device cpu|cuda] [--shapes 512x8192x8 ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import verl  # noqa: F401  (registers smartthinker through the plugin entry point)
from omegaconf import OmegaConf
from verl.trainer.ppo.core_algos import get_adv_estimator_fn

DEFAULT_SHAPES = ("512x8192x8", "4096x16384x16", "32768x1024x8")


def make_batch(batch: int, width: int, group: int, device: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    lengths = torch.from_numpy(rng.integers(1, width + 1, batch))
    mask = (torch.arange(width)[None] < lengths[:, None]).to(torch.int64)
    scores = torch.from_numpy((rng.random(batch) < 0.5).astype(np.float32))
    rewards = torch.zeros(batch, width, dtype=torch.float32)
    rewards[torch.arange(batch), lengths - 1] = scores
    uids = np.array([f"uid-{i // group}" for i in range(batch)], dtype=object)
    perm = rng.permutation(batch)  # groups interleaved, as after verl's balancing
    return rewards[perm].to(device), mask[perm].to(device), uids[perm]


def time_pair(first, second, repeats: int, device: str) -> tuple[float, float]:
    """Best-of-``repeats`` seconds of two calls, interleaved so that load from elsewhere hits both alike."""
    first(), second()  # warm-up
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, bucket in ((first, times[0]), (second, times[1])):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            bucket.append(time.perf_counter() - start)
    return min(times[0]), min(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--shapes", nargs="+", default=list(DEFAULT_SHAPES), help="BATCHxWIDTHxGROUP")
    args = parser.parse_args()

    config = OmegaConf.create({"norm_adv_by_std_in_grpo": True, "use_kl_in_reward": False})
    grpo = get_adv_estimator_fn("grpo_vectorized")
    ours = get_adv_estimator_fn("smartthinker")
    print(f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} repeats={args.repeats}")
    print(f"{'batch x width (group)':<26}{'grpo_vectorized':>17}{'smartthinker':>15}{'ratio':>8}")
    worst = 0.0
    for shape in args.shapes:
        batch, width, group = (int(x) for x in shape.split("x"))
        rewards, mask, uids = make_batch(batch, width, group, args.device)
        kwargs = {"token_level_rewards": rewards, "response_mask": mask, "index": uids, "config": config}
        t_grpo, t_ours = time_pair(
            lambda kw=kwargs: grpo(**kw), lambda kw=kwargs: ours(**kw), args.repeats, args.device
        )
        ratio = t_ours / t_grpo
        worst = max(worst, ratio)
        print(f"{f'{batch} x {width} ({group})':<26}{t_grpo * 1e3:>14.1f} ms{t_ours * 1e3:>12.1f} ms{ratio:>7.2f}x")
        del rewards, mask
    print(f"worst ratio {worst:.2f}x (target <= 1.20x)")


if __name__ == "__main__":
    main()
