"""transformers generation backend: CPU or GPU, batched sampling with left padding.

Used for small models and by the tests; for real evaluations at 32k tokens use the ``vllm`` backend.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from smartthinker_verl.errors import ConfigError, SetupError
from smartthinker_verl.evaluation.backends.base import (
    LENGTH,
    STOP,
    Completion,
    SamplingSettings,
    load_chat_template,
    render_prompt,
    stable_seed,
)

logger = logging.getLogger(__name__)

_DTYPES = ("auto", "float32", "bfloat16", "float16")


def _eos_ids(tokenizer: Any, model: Any) -> list[int]:
    """Every token id that ends a response: the tokenizer's EOS and the model's generation-config EOS ids."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if not ids:
        raise SetupError("the tokenizer and the model's generation config define no EOS token; set eos_token")
    return sorted(ids)


class HFBackend:
    """Samples with ``model.generate``: ``batch_size`` sequences at a time, each one independent sample.

    transformers draws one random stream per batch; batch ``b`` of a call is seeded from ``settings.seed`` and ``b``,
    so the same prompts in the same order give the same responses.

    Args:
        model_path: a Hugging Face model folder (or hub id where the hub is reachable).
        settings: the sampling protocol.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``, ...
        dtype: ``auto`` (bfloat16 on CUDA, float32 on CPU), ``float32``, ``bfloat16`` or ``float16``.
        batch_size: sequences per ``generate`` call.
        chat_template: a Jinja file replacing the tokenizer's chat template.
        trust_remote_code: passed to transformers.
    """

    name = "hf"

    def __init__(
        self,
        model_path: str,
        settings: SamplingSettings,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        chat_template: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if dtype not in _DTYPES:
            raise ConfigError(f"--dtype {dtype!r} is not one of {_DTYPES}")
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        self.settings = settings
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.chat_template = load_chat_template(chat_template)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        self.model = AutoModelForCausalLM.from_pretrained(
            model_path, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code
        ).to(self.device)
        self.model.eval()
        self.eos_ids = _eos_ids(self.tokenizer, self.model)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0]
        logger.info("hf backend: %s on %s (%s), batch size %d", model_path, self.device, dtype, batch_size)

    def encode(self, messages: list[dict[str, str]]) -> list[int]:
        return render_prompt(self.tokenizer, messages, self.chat_template)

    def generation_kwargs(self) -> dict[str, Any]:
        """Arguments of ``model.generate``: the settings, with every other sampling filter turned off explicitly.

        Explicit values override what the model's ``generation_config.json`` carries (top-k, repetition penalty,
        min-p, typical-p, its own temperature and top-p), so that the protocol is the same as the vllm backend's.
        """
        neutral: dict[str, Any] = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "min_p": None, "top_k": 0}
        if self.settings.temperature > 0:
            sampling = {"do_sample": True, "temperature": self.settings.temperature, "top_p": self.settings.top_p}
            neutral["typical_p"] = 1.0
        else:
            sampling = {"do_sample": False, "temperature": None, "top_p": None, "typical_p": None}
        return {
            "max_new_tokens": self.settings.max_tokens,
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.pad_id,
            **neutral,
            **sampling,
        }

    def _generate_batch(self, prompts: Sequence[list[int]], seed: int) -> list[Completion]:
        import torch
        from torch.nn.utils.rnn import pad_sequence

        torch.manual_seed(seed)  # CPU and CUDA
        rows = [torch.tensor(p, dtype=torch.long) for p in prompts]
        # Left padding: every prompt ends at column width - 1, where generation starts.
        input_ids = pad_sequence(rows, batch_first=True, padding_value=self.pad_id, padding_side="left")
        attention_mask = pad_sequence([torch.ones_like(r) for r in rows], batch_first=True, padding_side="left")
        width = input_ids.shape[1]
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention_mask.to(self.device),
                **self.generation_kwargs(),
            )
        generated = output[:, width:].cpu().tolist()  # batch rows of <= max_tokens ids, padded after EOS
        eos = set(self.eos_ids)
        completions = []
        for row in generated:
            end = next((i for i, token in enumerate(row) if token in eos), None)
            if end is not None:  # the EOS token counts as a response token (as vLLM counts it)
                tokens, reason = row[: end + 1], STOP
            else:
                tokens, reason = row, LENGTH
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            completions.append(Completion(text=text, num_tokens=len(tokens), finish_reason=reason))
        return completions

    def generate(self, prompts: Sequence[list[int]]) -> Iterator[list[tuple[int, Completion]]]:
        """One completion per prompt, yielded a batch of ``batch_size`` at a time."""
        for start in range(0, len(prompts), self.batch_size):
            batch = self._generate_batch(
                prompts[start : start + self.batch_size], stable_seed(self.settings.seed, start)
            )
            yield list(enumerate(batch, start))

    def close(self) -> None:
        import torch

        del self.model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
