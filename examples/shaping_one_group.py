"""SmartThinker on one hand-made group: each response's length, correctness, penalty, shaped reward and advantage.

    python examples/shaping_one_group.py [--penalty one_sided|symmetric] [--optimal-length reference|argmax]

The group is docs/algorithm.md's worked example (section 5) (8 responses, 5 correct). Runs on CPU in about a second.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import verl  # noqa: F401  (loads the smartthinker plugin, as verl's trainer does)
from omegaconf import OmegaConf
from verl.trainer.ppo.core_algos import get_adv_estimator_fn

LENGTHS = [1200, 1800, 2500, 3100, 4000, 5200, 6500, 8000]
CORRECT = [1, 1, 1, 1, 0, 1, 0, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--penalty", default="one_sided", choices=["one_sided", "symmetric"])
    parser.add_argument("--optimal-length", default="reference", choices=["reference", "argmax"])
    args = parser.parse_args()

    # The batch as verl's trainer holds it: the 0/1 score on each response's last valid token.
    width = max(LENGTHS)
    lengths = torch.tensor(LENGTHS)
    mask = (torch.arange(width)[None] < lengths[:, None]).to(torch.int64)
    rewards = torch.zeros(len(LENGTHS), width)
    rewards[torch.arange(len(LENGTHS)), lengths - 1] = torch.tensor(CORRECT, dtype=torch.float32)
    config = OmegaConf.create(
        {
            "norm_adv_by_std_in_grpo": True,
            "smartthinker": {"penalty": args.penalty, "optimal_length": args.optimal_length},
        }
    )

    # The estimator exactly as verl calls it, plus the calibration it is built on (for the intermediate values).
    estimator = get_adv_estimator_fn("smartthinker")
    advantages, _ = estimator(
        token_level_rewards=rewards,
        response_mask=mask,
        index=np.array(["q"] * len(LENGTHS), dtype=object),
        config=config,
    )
    from smartthinker_verl.advantage import shaped_advantages
    from smartthinker_verl.options import SmartThinkerConfig

    _, output = shaped_advantages(rewards, mask, ["q"] * len(LENGTHS), SmartThinkerConfig.from_algorithm_config(config))
    result = output.detail  # SmartThinker's CalibrationResult

    group = result.groups
    print(f"group: {len(LENGTHS)} responses, {int(group.num_correct[0])} correct")
    print(f"optimal length l_opt = {group.optimal_length[0].item():.4f} tokens ({args.optimal_length} rule)")
    print(f"coefficient coef   = {group.coefficient[0].item():.6e} (dynamic)")
    print(f"mean shaped reward = {result.shaped_reward.mean().item():.6f}\n")
    print(f"{'i':>2} {'length':>7} {'correct':>8} {'penalty':>10} {'reward':>9} {'advantage':>10}")
    for i in range(len(LENGTHS)):
        print(
            f"{i + 1:>2} {LENGTHS[i]:>7} {CORRECT[i]:>8} {result.penalty[i].item():>10.2f} "
            f"{result.shaped_reward[i].item():>9.6f} {advantages[i, 0].item():>10.6f}"
        )


if __name__ == "__main__":
    main()
