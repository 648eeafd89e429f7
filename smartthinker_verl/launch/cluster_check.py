"""The plugin check: ``python -m smartthinker_verl.launch.cluster_check [--estimator NAME] [--local]``.

:func:`run_checks` is the project's one plugin check, run by ``smartthinker-verl doctor`` on every node and by this
entry point on a Ray job's driver and on a worker (``recipes/submit_ray_job.sh --entrypoint "python -m
smartthinker_verl.launch.cluster_check"``: does ``VERL_USE_EXTERNAL_MODULES`` bring the plugin to nodes without the
package?). ``import verl`` must register the estimator and the reward manager; the estimator, composed from the
package yaml and called through verl's registry, must give the paper's worked example (one group of 8;
docs/algorithm.md section 5); the scorer must grade a few responses as expected. One JSON report on stdout; exit 0
when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from typing import Any

from smartthinker_verl.options import CONFIG_KEY

logger = logging.getLogger("smartthinker_verl.launch.cluster_check")

#: The worked example (one group, G = 8): lengths, correctness and the expected SmartThinker advantages.
WORKED_LENGTHS = (1200, 1800, 2500, 3100, 4000, 5200, 6500, 8000)
WORKED_CORRECT = (1, 1, 1, 1, 0, 1, 0, 0)
WORKED_ADVANTAGES = (0.989204, 0.989204, 0.824165, 0.641017, -1.147863, 0.0, -1.147863, -1.147863)
#: (response, ground truth, expected score): both think shapes, a wrong answer, a response that never closes.
SCORER_CASES = (
    ("<think>\n27 is 3 cubed.\n</think>\nThe answer is \\boxed{27}.", "27", 1.0),
    ("3^3 = 27, done.\n</think>\n\\boxed{27}", "27.0", 1.0),
    ("<think>\nmaybe 26\n</think>\n\\boxed{26}", "27", 0.0),
    ("<think>\nstill thinking... \\boxed{27}", "27", 0.0),
)
TOLERANCE = 1e-5


def run_checks(estimator: str) -> dict[str, Any]:
    """Run every check in this process; returns a JSON-able report with ``ok``."""
    import verl  # noqa: F401  (loads VERL_USE_EXTERNAL_MODULES and the verl.plugins entry points)
    from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY

    import smartthinker_verl

    plugin_loaded = "smartthinker_verl.plugin" in sys.modules
    estimator_registered = estimator in ADV_ESTIMATOR_REGISTRY
    managers = set(REWARD_MANAGER)  # before the import below, which registers the manager itself
    from smartthinker_verl.reward_manager import MANAGER_NAME

    checks = {  # report key: (passed, the error otherwise)
        "plugin_loaded_by_verl": (
            plugin_loaded,
            "`import verl` did not load smartthinker_verl.plugin: set VERL_USE_EXTERNAL_MODULES",
        ),
        "reward_manager_registered": (MANAGER_NAME in managers, f"reward manager {MANAGER_NAME!r} is not registered"),
        "estimator_registered": (estimator_registered, f"advantage estimator {estimator!r} is not registered"),
    }
    report: dict[str, Any] = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "verl_use_external_modules": os.environ.get("VERL_USE_EXTERNAL_MODULES", ""),
        "package_file": smartthinker_verl.__file__,
        **{key: passed for key, (passed, _) in checks.items()},
        "errors": [error for passed, error in checks.values() if not passed],
    }
    if estimator_registered:
        report["errors"] += worked_example_errors(estimator, report) + scorer_errors(report)
    report["ok"] = not report["errors"]
    return report


def worked_example_errors(estimator: str, report: dict[str, Any]) -> list[str]:
    """Run ``estimator`` through verl's registry on the worked example; its per-response advantages go to
    ``report``. Only SmartThinker (under any of its names) is compared with the paper's numbers."""
    import numpy as np
    import torch
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    from smartthinker_verl.launch.compose import compose_config
    from smartthinker_verl.shaping import METHODS

    algorithm = compose_config([f"algorithm.adv_estimator={estimator}"]).algorithm
    # one group of 8 responses, each rewarded (correct or not) at its last token
    lengths = torch.tensor(WORKED_LENGTHS)
    mask = (torch.arange(max(WORKED_LENGTHS)).unsqueeze(0) < lengths.unsqueeze(1)).to(torch.float32)
    rewards = torch.zeros_like(mask)
    rewards[torch.arange(len(WORKED_LENGTHS)), lengths - 1] = torch.tensor(WORKED_CORRECT, dtype=torch.float32)
    index = np.array(["prompt-0"] * len(WORKED_LENGTHS), dtype=object)
    advantages, _returns = get_adv_estimator_fn(estimator)(
        token_level_rewards=rewards, response_mask=mask, index=index, config=algorithm
    )
    report["advantages"] = [round(float(a), 6) for a in advantages.sum(-1) / mask.sum(-1)]
    if tuple(advantages.shape) != tuple(rewards.shape) or not bool(advantages.isfinite().all()):
        return [f"estimator returned shape {tuple(advantages.shape)} or non-finite values"]
    if METHODS.get(estimator) is METHODS[CONFIG_KEY]:
        worst = max(abs(a - e) for a, e in zip(report["advantages"], WORKED_ADVANTAGES, strict=True))
        if worst > TOLERANCE:
            return [f"advantages differ from the worked example by {worst:.2e}"]
    return []


def scorer_errors(report: dict[str, Any]) -> list[str]:
    """Grade :data:`SCORER_CASES`; the scores go to ``report``."""
    from smartthinker_verl.scoring import compute_score

    report["scores"] = [compute_score("cluster_check", response, truth)["score"] for response, truth, _ in SCORER_CASES]
    expected = [case[2] for case in SCORER_CASES]
    return [] if report["scores"] == expected else [f"scorer gave {report['scores']}, expected {expected}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m smartthinker_verl.launch.cluster_check", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--estimator", default=CONFIG_KEY, help="registered estimator to run (default: %(default)s)")
    parser.add_argument("--local", action="store_true", help="run in this process only, without Ray")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    driver = run_checks(args.estimator)
    result: dict[str, Any] = {"driver": driver}
    if not args.local:
        import ray

        ray.init()  # inside a Ray job this joins the job's cluster (RAY_ADDRESS)
        try:
            remote = ray.remote(num_cpus=1)(run_checks)
            result["worker"] = ray.get(remote.remote(args.estimator))
        finally:
            ray.shutdown()
    result["ok"] = all(part["ok"] for part in result.values() if isinstance(part, dict))
    print(json.dumps(result, indent=2, sort_keys=True))
    logger.info("cluster check %s", "passed" if result["ok"] else "FAILED")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
