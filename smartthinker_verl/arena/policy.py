"""The arena's policy: per prompt, a log-normal distribution over response length, trained by REINFORCE.

Prompt p samples ``log l = mu_p + sigma_p * eps`` with eps ~ N(0, 1). A step moves (mu_p, log sigma_p) along the
natural gradient (the Fisher-scaled REINFORCE gradient, which makes the step independent of the length scale) of
the mean advantage-weighted log-likelihood of the group's G samples:

    d mu_p        = lr * sigma_p * mean_g(A_pg * eps_pg)
    d log sigma_p = lr * mean_g(A_pg * (eps_pg ** 2 - 1)) / 2

With advantages of unit spread (GRPO) the median moves by at most about ``lr * sigma`` nats per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

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
    """``mu`` ``[P]`` and ``log_sigma`` ``[P]`` (float64) of P prompts' log-normal length distributions."""

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
