"""The arena's length policy and run loop: per (method, seed), G samples per prompt per step -> scores -> verl's
advantages -> one policy step; and every (method, seed) of an arena on worker processes.

A step, for P prompts (``prompts_per_level`` per level) and G samples each (B = P * G responses):

1. lengths ``[P, G]`` from the policy; a sample longer than ``max_length`` is cut: it sits at the limit and is wrong
   (as verl's rollout leaves a truncated response);
2. correct ~ Bernoulli(acc_level(length)); the score (1 or 0) goes on the last valid token of ``[B, L]`` rewards,
   beside the ``[B, L]`` response mask and the prompts' uids;
3. the method's advantages (:func:`~.estimators.compute_advantages`), read at each response's last token;
4. the policy update (:class:`LengthPolicy`).

A seed fixes every random draw, the same for every method (common random numbers).
"""

from __future__ import annotations

import functools
import logging
import math
import multiprocessing
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from smartthinker_verl.arena import estimators
from smartthinker_verl.arena.curves import DEFAULT_LEVELS, DEFAULT_MAX_LENGTH, Level
from smartthinker_verl.run_state import reset_states

#: Learning rate: with sigma = 0.35 a consistent signal moves the median ~0.035 nats per step, so within 300 steps
#: it can cross the whole range from the start to the shortest length (docs/arena.md, "Policy").
DEFAULT_LEARNING_RATE = 0.1
#: The start, as R1-style models begin RL: long responses (median 4,000 tokens) with a spread of e^0.35.
INITIAL_MEDIAN = 4000.0
INITIAL_SPREAD = 0.35
#: The shortest response (an answer needs a few tokens); shorter samples are rounded up to it.
MIN_LENGTH = 16
#: sigma stays within these bounds (a safe behaviour: a collapsed or exploded spread stops the gradient).
SPREAD_BOUNDS = (0.02, 2.0)


@dataclass
class LengthPolicy:
    """Per prompt, a log-normal distribution over response length, trained by REINFORCE: ``mu`` ``[P]`` and
    ``log_sigma`` ``[P]`` (float64) of P prompts.

    Prompt p samples ``log l = mu_p + sigma_p * eps`` with eps ~ N(0, 1). A step moves (mu_p, log sigma_p) along the
    natural gradient (the Fisher-scaled REINFORCE gradient, which makes the step independent of the length scale) of
    the mean advantage-weighted log-likelihood of the group's G samples:

        d mu_p        = lr * sigma_p * mean_g(A_pg * eps_pg)
        d log sigma_p = lr * mean_g(A_pg * (eps_pg ** 2 - 1)) / 2

    With advantages of unit spread (GRPO) the median moves by at most about ``lr * sigma`` nats per step.
    """

    mu: torch.Tensor
    log_sigma: torch.Tensor

    @classmethod
    def initial(cls, prompts: int) -> LengthPolicy:
        full = torch.full((prompts,), 1.0, dtype=torch.float64)
        return cls(mu=full * math.log(INITIAL_MEDIAN), log_sigma=full * math.log(INITIAL_SPREAD))

    def sample(self, group_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(eps [P, G], lengths [P, G] int64 >= MIN_LENGTH, not yet cut at the limit)``."""
        eps = torch.randn((len(self.mu), group_size), generator=generator, dtype=torch.float64)
        log_lengths = self.mu[:, None] + self.log_sigma.exp()[:, None] * eps
        return eps, log_lengths.clamp(max=30).exp().round().clamp(min=MIN_LENGTH).to(torch.int64)

    def update(self, eps: torch.Tensor, advantages: torch.Tensor, learning_rate: float) -> None:
        """One natural-gradient REINFORCE step from ``advantages`` ``[P, G]`` of the samples ``eps`` ``[P, G]``."""
        sigma = self.log_sigma.exp()
        self.mu += learning_rate * sigma * (advantages * eps).mean(dim=1)
        self.log_sigma += learning_rate * (advantages * (eps**2 - 1)).mean(dim=1) / 2
        self.log_sigma.clamp_(math.log(SPREAD_BOUNDS[0]), math.log(SPREAD_BOUNDS[1]))


@dataclass(frozen=True)
class ArenaSpec:
    """What an arena simulates (the defaults: docs/arena.md)."""

    levels: tuple[Level, ...] = DEFAULT_LEVELS
    prompts_per_level: int = 8
    group_size: int = 8
    steps: int = 300
    max_length: int = DEFAULT_MAX_LENGTH
    learning_rate: float = DEFAULT_LEARNING_RATE

    @property
    def prompts(self) -> int:
        return len(self.levels) * self.prompts_per_level


@dataclass
class Trajectory:
    """One (method, seed) run. Per step and level (``[steps, levels]``): the sampled responses' mean length and
    accuracy; per step, the lowest advantage of a correct response (SmartThinker's guarantee: >= 0); per level
    (``[levels]``): the expected length and accuracy under the final policy, cut responses included; the final
    policy itself."""

    method: str
    seed: int
    length: np.ndarray
    accuracy: np.ndarray
    min_correct_advantage: np.ndarray
    final_length: np.ndarray
    final_accuracy: np.ndarray
    policy: LengthPolicy


def run_one(spec: ArenaSpec, config: DictConfig, seed: int) -> Trajectory:
    """Train one fresh policy with the method of ``config`` (:func:`.estimators.method_config`) for ``spec.steps``."""
    reset_states()  # every stateful method (LASER-DE's adaptive targets) starts afresh
    generator = torch.Generator().manual_seed(seed)
    level = torch.arange(len(spec.levels)).repeat_interleave(spec.prompts_per_level)  # [P] level of each prompt
    accuracy_table = torch.stack([lv.table(spec.max_length) for lv in spec.levels])  # [levels, max_length + 1]
    policy = LengthPolicy.initial(spec.prompts)
    batch = spec.prompts * spec.group_size
    rows = torch.arange(batch)
    # Row max_length - k of this [max_length + 1, max_length] view is k ones then zeros: a k-token response's mask.
    staircase = torch.cat([torch.ones(spec.max_length), torch.zeros(spec.max_length)]).unfold(0, spec.max_length, 1)
    mask = torch.empty(batch, spec.max_length)
    rewards = torch.zeros(batch, spec.max_length)
    uid = np.array([f"prompt-{p}" for p in range(spec.prompts) for _ in range(spec.group_size)], dtype=object)
    lengths_per_step = np.zeros((spec.steps, len(spec.levels)))
    accuracy_per_step = np.zeros((spec.steps, len(spec.levels)))
    min_correct = np.full(spec.steps, math.inf)
    for step in range(spec.steps):
        eps, sampled = policy.sample(spec.group_size, generator)
        cut = sampled > spec.max_length
        lengths = sampled.clamp(max=spec.max_length)
        chance = accuracy_table[level[:, None], lengths]
        correct = (torch.rand(chance.shape, generator=generator, dtype=torch.float64) < chance) & ~cut
        flat_lengths, last = lengths.flatten(), lengths.flatten() - 1
        torch.index_select(staircase, 0, spec.max_length - flat_lengths, out=mask)
        rewards[rows, last] = correct.flatten().float()
        advantages = estimators.compute_advantages(config, rewards, mask, uid)[rows, last].double()
        rewards[rows, last] = 0.0
        policy.update(eps, advantages.view_as(eps), spec.learning_rate)
        lengths_per_step[step] = _level_means(lengths.double().mean(dim=1), level, len(spec.levels))
        accuracy_per_step[step] = _level_means(correct.double().mean(dim=1), level, len(spec.levels))
        if bool(correct.any()):
            min_correct[step] = float(advantages[correct.flatten()].min())
    final_length, final_accuracy = expected_outcome(policy, accuracy_table, level, spec.max_length)
    return Trajectory(
        method=str(config.algorithm.adv_estimator),
        seed=seed,
        length=lengths_per_step,
        accuracy=accuracy_per_step,
        min_correct_advantage=min_correct,
        final_length=_level_means(final_length, level, len(spec.levels)),
        final_accuracy=_level_means(final_accuracy, level, len(spec.levels)),
        policy=policy,
    )


def _level_means(values: torch.Tensor, level: torch.Tensor, levels: int) -> np.ndarray:
    """``[levels]`` mean of the per-prompt ``values`` ``[P]`` over each level's prompts."""
    sums = torch.zeros(levels, dtype=torch.float64).index_add_(0, level, values.double())
    return (sums / torch.bincount(level, minlength=levels)).numpy()


def expected_outcome(
    policy: LengthPolicy, accuracy_table: torch.Tensor, level: torch.Tensor, max_length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``([P] expected length, [P] expected accuracy)`` under the policy, exactly on the token grid: a sample rounds
    to the nearest token, at least ``MIN_LENGTH``; one beyond ``max_length`` is cut (at the limit, wrong)."""
    normal = torch.distributions.Normal(policy.mu[:, None], policy.log_sigma.exp()[:, None])
    tokens = torch.arange(MIN_LENGTH, max_length + 1, dtype=torch.float64)
    upper = normal.cdf(torch.log(tokens + 0.5))  # [P, n]: P(rounded length <= token)
    mass = torch.diff(upper, dim=1, prepend=torch.zeros(len(policy.mu), 1, dtype=torch.float64))
    cut = 1 - upper[:, -1]
    length = (mass * tokens).sum(dim=1) + cut * max_length
    accuracy = (mass * accuracy_table[level][:, MIN_LENGTH:]).sum(dim=1)
    return length, accuracy


def _run_job(job: tuple[ArenaSpec, DictConfig, int]) -> Trajectory:
    torch.set_num_threads(1)
    # The arena writes no checkpoints: LASER-DE's warning that its state would not reach one does not apply.
    logging.getLogger("smartthinker_verl.run_state").setLevel(logging.ERROR)
    return run_one(*job)


def run_arena(
    spec: ArenaSpec,
    configs: dict[str, DictConfig],
    seeds: Sequence[int],
    workers: int = 1,
    progress: bool = False,
) -> list[Trajectory]:
    """Every (method, seed) of ``configs`` x ``seeds``, on ``workers`` processes (1: in this process), ordered by
    method then seed; ``progress``: a tqdm bar over the runs as they finish."""
    jobs = [(spec, config, seed) for config in configs.values() for seed in seeds]
    bar = functools.partial(tqdm, total=len(jobs), desc="arena (method x seed)", unit="run", disable=not progress)
    if workers <= 1:
        results = list(bar(map(_run_job, jobs)))
    else:
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
        with context.Pool(workers) as pool:
            results = list(bar(pool.imap_unordered(_run_job, jobs)))
    order = {(str(c.algorithm.adv_estimator), s): i for i, (_, c, s) in enumerate(jobs)}
    return sorted(results, key=lambda t: order[(t.method, t.seed)])
