"""Token budgets for training without flash-attn (sdpa, ``use_remove_padding=false``): verl's partitioner on
simulated lengths, the padded micro-batches it makes, and the largest budget whose worst micro-batch fits.

    PYTHONPATH=. python benchmarks/bench_sdpa_budgets.py [--gpu-gib 79.6] [--gpus 4] [--seeds 3]

For each recipe model and budget: padded/real ratio and the largest padded micro-batch (update and log-prob pass)
at the start (long answers) and once answers are short (``memory.REGIMES``), and the peak bytes of that micro-batch
(``memory.micro_batch_bytes``). The memory a micro-batch may take on one GPU is

    target = 0.85 x GPU memory - 16 bytes x parameters / GPUs (fp32 weights, gradients, Adam's two moments) - 2 GiB

(0.85: allocator fragmentation and CUDA context; 2 GiB: vLLM asleep, NCCL buffers). Prints the tables and the
chosen budgets of docs/gpu.md, "Without flash-attn". Runs on CPU in about a minute.
"""

from __future__ import annotations

import argparse

from smartthinker_verl.launch.memory import (
    KNOWN_MODELS,
    REGIMES,
    GiB,
    StepSimulation,
    micro_batch_bytes,
    simulate_step,
    simulated_lengths,
)

BUDGETS = (9728, 10240, 11264, 12288, 13312, 14336, 16384, 20480, 24576, 32768)
#: Parameters of the recipes' models as their model cards count them (the target's actor state; offline, so no
#: safetensors header is read here).
PARAMETERS = {
    "deepseek-r1-distill-qwen-1.5b": 1.78e9,
    "deepseek-r1-distill-qwen-7b": 7.62e9,
    "qwen3-4b-thinking-2507": 4.02e9,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu-gib", type=float, default=79.6, help="GPU memory (H100 80 GB: 79.6 GiB)")
    parser.add_argument("--gpus", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    steps: dict[tuple[str, int], list[StepSimulation]] = {}
    for regime in REGIMES:
        for seed in range(args.seeds):
            lengths = simulated_lengths(regime, prompts=64, group=8, max_prompt=1500, max_response=8000, seed=seed)
            for budget in BUDGETS:
                step = simulate_step(
                    lengths, n_gpus=args.gpus, mini_batch_responses=128, update_budget=budget, log_prob_budget=budget
                )
                steps.setdefault((regime, budget), []).append(step)
    print(
        "| budget | regime | update padded/real | largest update micro-batch (padded) | log-prob padded/real | "
        "largest log-prob micro-batch (padded) |"
    )
    print("|---|---|---|---|---|---|")
    for budget in BUDGETS:
        for regime in REGIMES:
            runs = steps[(regime, budget)]
            update = [b for s in runs for b in s.update]
            log_prob = [b for s in runs for b in s.log_prob]
            print(
                f"| {budget} | {regime} | {StepSimulation.ratio(update):.2f} | "
                f"{StepSimulation.largest(update).padded:,} | {StepSimulation.ratio(log_prob):.2f} | "
                f"{StepSimulation.largest(log_prob).padded:,} |"
            )
    print()
    for key, shape in KNOWN_MODELS.items():
        target = 0.85 * args.gpu_gib * GiB - 16 * PARAMETERS[key] / args.gpus - 2 * GiB
        chosen = {"update": None, "log-prob": None}
        print(f"{shape.name}: target {target / GiB:.1f} GiB a micro-batch")
        for budget in BUDGETS:
            runs = steps[("start", budget)] + steps[("short", budget)]
            peak_update = max(micro_batch_bytes(shape, b, update=True) for s in runs for b in s.update)
            peak_log_prob = max(micro_batch_bytes(shape, b, update=False) for s in runs for b in s.log_prob)
            print(
                f"  {budget:>6}: update peak {peak_update / GiB:6.1f} GiB, log-prob peak {peak_log_prob / GiB:6.1f} GiB"
            )
            if peak_update <= target:
                chosen["update"] = budget
            if peak_log_prob <= target:
                chosen["log-prob"] = budget
        print(f"  chosen ({key}): {chosen}")


if __name__ == "__main__":
    main()
