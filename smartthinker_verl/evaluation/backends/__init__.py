"""Generation backends: ``hf`` (transformers; CPU or GPU) and ``vllm`` (GPUs, tensor parallel; or vLLM's CPU build).

Both render prompts with the model's chat template through :func:`render_prompt` and sample with the same
:class:`SamplingSettings`, so a benchmark's prompts and protocol do not depend on the backend.
"""

from __future__ import annotations

from typing import Any

from smartthinker_verl.errors import ConfigError
from smartthinker_verl.evaluation.backends.base import (
    LENGTH,
    STOP,
    Completion,
    GenerationBackend,
    SamplingSettings,
    render_prompt,
    stable_seed,
)

BACKENDS: tuple[str, ...] = ("vllm", "hf")


def make_backend(name: str, model: str, settings: SamplingSettings, **options: Any) -> GenerationBackend:
    """Load ``model`` into backend ``name`` (``vllm`` or ``hf``); ``options`` go to the backend's constructor."""
    if name == "hf":
        from smartthinker_verl.evaluation.backends.hf import HFBackend

        return HFBackend(model, settings, **options)
    if name == "vllm":
        from smartthinker_verl.evaluation.backends.vllm import VLLMBackend

        return VLLMBackend(model, settings, **options)
    raise ConfigError(f"unknown backend {name!r}; choose one of {BACKENDS}")


__all__ = [
    "BACKENDS",
    "LENGTH",
    "STOP",
    "Completion",
    "GenerationBackend",
    "SamplingSettings",
    "make_backend",
    "render_prompt",
    "stable_seed",
]
