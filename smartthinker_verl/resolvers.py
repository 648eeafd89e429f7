"""OmegaConf resolvers of the recipe yaml, registered on import (idempotent).

``${smartthinker_sum:${data.max_prompt_length},${data.max_response_length}}`` keeps vLLM's
``actor_rollout_ref.rollout.max_model_len`` equal to prompt + response whatever the overrides: OmegaConf has no
arithmetic of its own. The training entry point resolves the config before handing it to verl, and the plugin
imports this module too, so any process that resolves the recipe config knows the resolver.
"""

from __future__ import annotations

from omegaconf import OmegaConf

#: Resolver name used in ``config/smartthinker_trainer.yaml``.
SUM = "smartthinker_sum"


def _sum(*values: object) -> int:
    """Integer sum of the arguments (OmegaConf passes interpolated ints, or strings from the command line)."""
    return sum(int(value) for value in values)


def register() -> None:
    """Register the resolvers once per process."""
    if not OmegaConf.has_resolver(SUM):
        OmegaConf.register_new_resolver(SUM, _sum)


register()
