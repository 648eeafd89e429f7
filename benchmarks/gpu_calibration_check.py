"""On a CUDA machine without verl: the calibration maths on the GPU equals the CPU result, and what it costs.

    python benchmarks/gpu_calibration_check.py            # CUDA
    python benchmarks/gpu_calibration_check.py --smoke    # any machine, small: that the script runs (CPU vs CPU)

Imports only ``smartthinker_verl.shaping`` (pure torch). The baseline is plain GRPO built from the same segment
reductions (score sum, group mean/std, broadcast); the SmartThinker path adds the length sum and the calibration.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from smartthinker_verl.shaping import calibrate, grpo_normalize

SHAPES = ((512, 8192, 8), (4096, 16384, 16), (32768, 1024, 8))


def batch(b: int, width: int, group: int, device: str, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, width + 1, (b,), generator=gen)
    mask = (torch.arange(width)[None] < lengths[:, None]).to(torch.int64)
    rewards = torch.zeros(b, width)
    rewards[torch.arange(b), lengths - 1] = (torch.rand(b, generator=gen) < 0.5).float()
    ids = torch.randperm(b, generator=gen) // group
    return rewards.to(device), mask.to(device), ids.to(device), b // group


def grpo_path(rewards, mask, ids, groups):
    scores = rewards.sum(-1)
    return grpo_normalize(scores, ids, groups).unsqueeze(-1) * mask


def smartthinker_path(rewards, mask, ids, groups):
    scores = rewards.sum(-1)
    result = calibrate(mask.sum(-1), scores >= 0.5, ids, groups)
    shaped = (scores.double() - result.coefficient * result.penalty).to(scores.dtype)
    return grpo_normalize(shaped, ids, groups).unsqueeze(-1) * mask


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, *args, repeats=10):
    fn(*args)
    synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="few small batches, on CUDA if present, else CPU")
    smoke = parser.parse_args().smoke
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not smoke:
        raise SystemExit("gpu_calibration_check.py: no CUDA device; run with --smoke to check the script itself")
    print(torch.__version__, torch.cuda.get_device_name() if device == "cuda" else "CPU only (smoke)")
    worst = 0.0
    trials = 5 if smoke else 200
    for trial in range(trials):
        gen = torch.Generator().manual_seed(trial)
        n = int(torch.randint(8, 200, (1,), generator=gen))
        lengths = torch.randint(0, 3000, (n,), generator=gen)
        correct = torch.rand(n, generator=gen) < 0.5
        ids = torch.randint(0, max(1, n // 6), (n,), generator=gen)
        ids = torch.unique(ids, return_inverse=True)[1]
        for rule in ("reference", "argmax"):
            cpu = calibrate(lengths, correct, ids, optimal_length=rule)
            gpu = calibrate(lengths.to(device), correct.to(device), ids.to(device), optimal_length=rule)
            diff = (cpu.shaped_reward - gpu.shaped_reward.cpu()).abs().max().item()
            worst = max(worst, diff)
    print(f"cpu vs {device} shaped rewards, {2 * trials} random batches: max abs difference {worst:.3e}")
    if worst > 1e-9:  # float64 segment sums in another order differ by ulps, not more
        raise SystemExit(f"FAIL: the calibration differs between cpu and {device} by {worst:.3e}")
    for b, width, group in ((64, 256, 8),) if smoke else SHAPES:
        args = batch(b, width, group, device)
        t_grpo = timed(grpo_path, *args)
        t_ours = timed(smartthinker_path, *args)
        print(
            f"{b} x {width} ({group}): grpo {t_grpo * 1e3:.2f} ms, smartthinker {t_ours * 1e3:.2f} ms, "
            f"ratio {t_ours / t_grpo:.2f}x"
        )


if __name__ == "__main__":
    main()
