"""OmegaConf resolvers of the recipe yaml, registered on import (idempotent) by the plugin and the entry point.

``${smartthinker_sum:${data.max_prompt_length},${data.max_response_length}}`` keeps vLLM's ``max_model_len`` equal
to prompt + response whatever the overrides: OmegaConf has no arithmetic of its own.
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
