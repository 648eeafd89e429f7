"""The methods of the arena and the call verl's trainer makes to turn scores into advantages.

Every method is reached through verl: ``grpo`` by the special case of ``ray_trainer.compute_advantage``, every other
name through verl's estimator registry (this package's methods and any a user registers the documented way,
docs/baselines.md), with the composed recipe config's ``algorithm`` node, as in training.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import verl  # noqa: F401  (loads the plugin through its entry point)
from omegaconf import DictConfig
from verl import DataProto
from verl.trainer.ppo.ray_trainer import compute_advantage

from smartthinker_verl.advantage import register_estimators
from smartthinker_verl.errors import ConfigError
from smartthinker_verl.shaping import METHODS

#: verl's own GRPO, the reference every method is compared with.
REFERENCE = "grpo"


def available_methods() -> list[str]:
    """``grpo`` and every method of the shaping registry (registered into verl's estimators on the way)."""
    register_estimators()  # also a method registered after the plugin loaded
    return [REFERENCE, *(method.name for method in METHODS.values())]


def method_config(method: str, max_length: int, group_size: int, overrides: Sequence[str] = ()) -> DictConfig:
    """The full recipe config (compose once per method) for ``method`` with the arena's response limit and group
    size; ``overrides`` are Hydra overrides such as ``+algorithm.shorter_better.beta=0.002`` (the one place config
    is built)."""
    from smartthinker_verl.launch.compose import compose_config

    known = available_methods()
    if method not in known:
        raise ConfigError(f"unknown arena method {method!r}. Fix: use one of {', '.join(known)}")
    arena = [
        f"algorithm.adv_estimator={method}",
        f"data.max_response_length={max_length}",
        f"actor_rollout_ref.rollout.n={group_size}",
    ]
    return compose_config([*arena, *overrides])


def compute_advantages(
    config: DictConfig, token_level_rewards: torch.Tensor, response_mask: torch.Tensor, uid: np.ndarray
) -> torch.Tensor:
    """``[B, L]`` advantages from verl's ``compute_advantage``, called as verl's trainer calls it with the full
    composed ``config`` (its ``algorithm`` node goes to the estimator), ``token_level_rewards`` ``[B, L]`` (the outcome
    score on each response's last valid token), ``response_mask`` ``[B, L]`` (1 on response tokens) and ``uid`` ``[B]``
    (object array: the group, i.e. prompt, of each response)."""
    algorithm = config.algorithm
    data = DataProto.from_dict(
        tensors={"token_level_rewards": token_level_rewards, "response_mask": response_mask},
        non_tensors={"uid": uid},
    )
    data = compute_advantage(
        data,
        adv_estimator=algorithm.adv_estimator,
        gamma=algorithm.gamma,
        lam=algorithm.lam,
        num_repeat=int(config.actor_rollout_ref.rollout.n),
        norm_adv_by_std_in_grpo=algorithm.get("norm_adv_by_std_in_grpo", True),
        config=algorithm,
    )
    return data.batch["advantages"]
