"""Generation backends: ``hf`` (transformers; CPU or GPU) and ``vllm`` (GPUs, tensor parallel; or vLLM's CPU build).

Both render prompts with the model's chat template through :meth:`GenerationBackend.encode` and sample with the same
:class:`SamplingSettings`, so a benchmark's prompts and protocol do not depend on the backend.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smartthinker_verl.errors import ConfigError, MissingFileError, SetupError

BACKENDS: tuple[str, ...] = ("vllm", "hf")
#: ``finish_reason`` values: the model ended the response / the token limit cut it off.
STOP, LENGTH = "stop", "length"


@dataclass(frozen=True)
class SamplingSettings:
    """The sampling protocol, identical for every benchmark (defaults: the paper's, docs/algorithm.md section 7).

    ``top_k`` is never applied (all backends sample from the full nucleus), and neither is any repetition penalty
    or default a model's ``generation_config.json`` might carry.
    """

    temperature: float = 0.6
    top_p: float = 1.0
    max_tokens: int = 32768
    seed: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ConfigError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must lie in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {self.max_tokens}")


@dataclass(frozen=True)
class Completion:
    """One sampled response: decoded text (special tokens skipped), its token count and why it ended."""

    text: str
    num_tokens: int
    finish_reason: str


def stable_seed(base_seed: int, *parts: object) -> int:
    """A stable 31-bit seed derived from ``base_seed`` and ``parts`` (e.g. a run's pending samples, a batch index)."""
    key = "\x1f".join(map(str, (base_seed, *parts))).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") % (2**31 - 1)


class GenerationBackend:
    """A model that renders chat prompts and samples one completion per prompt with fixed settings.

    ``settings.seed`` seeds the whole engine once: no request carries a seed of its own (vLLM samples requests with
    their own seeds one at a time, docs/evaluation.md "Reproducibility"). This base loads the tokenizer and the
    ``--chat-template FILE`` (``None`` keeps the tokenizer's own); a backend adds ``generate`` and ``close``.
    """

    def __init__(
        self, model_path: str, settings: SamplingSettings, chat_template: str | None, trust_remote_code: bool
    ) -> None:
        from transformers import AutoTokenizer

        if chat_template is not None and not Path(chat_template).is_file():
            raise MissingFileError(f"--chat-template {chat_template} does not exist; pass a Jinja template file")
        self.settings = settings
        self.chat_template = Path(chat_template).read_text(encoding="utf-8") if chat_template else None
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)

    def encode(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of the chat-templated prompt (generation prompt added), the same for every backend; the
        template's own special tokens (BOS, role markers) are kept, no extra BOS is added on top."""
        if self.chat_template is None and not self.tokenizer.chat_template:
            raise SetupError(
                f"tokenizer {self.tokenizer.name_or_path!r} has no chat template; pass --chat-template FILE (a Jinja "
                "template) to evaluate a model without one"
            )
        text = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False, chat_template=self.chat_template
        )
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, prompts: Sequence[list[int]]) -> Iterator[list[tuple[int, Completion]]]:
        """Sample one completion per prompt (a repeated prompt: independent samples); yield ``(prompt index,
        completion)`` pairs as they finish, in groups."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the model (GPU memory, worker processes)."""
        raise NotImplementedError


def make_backend(name: str, model: str, settings: SamplingSettings, **options: Any) -> GenerationBackend:
    """Load ``model`` into backend ``name`` (one of ``BACKENDS``, the ``--backend`` choices); ``options`` go to the
    backend's constructor."""
    if name == "hf":
        from smartthinker_verl.evaluation.backends.hf import HFBackend

        return HFBackend(model, settings, **options)
    from smartthinker_verl.evaluation.backends.vllm import VLLMBackend

    return VLLMBackend(model, settings, **options)
