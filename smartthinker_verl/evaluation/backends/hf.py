"""transformers generation backend: CPU or GPU, batched sampling with left padding.

Used for small models and by the tests; for real evaluations at 32k tokens use the ``vllm`` backend.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from smartthinker_verl.errors import SetupError
from smartthinker_verl.evaluation.backends import (
    LENGTH,
    STOP,
    Completion,
    GenerationBackend,
    SamplingSettings,
    stable_seed,
)

logger = logging.getLogger(__name__)


class HFBackend(GenerationBackend):
    """Samples with ``model.generate``: ``batch_size`` sequences at a time, each one independent sample.

    transformers draws one random stream per batch; batch ``b`` of a call is seeded from ``settings.seed`` and ``b``,
    so the same prompts in the same order give the same responses. Keyword arguments: the ``eval`` flags so named.
    """

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
        from transformers import AutoModelForCausalLM

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        super().__init__(model_path, settings, chat_template, trust_remote_code)
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.model = AutoModelForCausalLM.from_pretrained(
            model_path, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code
        ).to(self.device)  # from_pretrained returns the model in eval mode
        # Every token id that ends a response: the tokenizer's EOS and the model's generation-config EOS ids.
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        eos = {configured} if isinstance(configured, int) else set(configured or ())
        eos |= {self.tokenizer.eos_token_id} - {None}
        if not eos:
            raise SetupError("the tokenizer and the model's generation config define no EOS token; set eos_token")
        self.eos_ids = sorted(int(i) for i in eos)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0]
        logger.info("hf backend: %s on %s (%s), batch size %d", model_path, self.device, dtype, batch_size)

    def generation_kwargs(self) -> dict[str, Any]:
        """Arguments of ``model.generate``: the settings, with every other sampling filter turned off explicitly.

        Explicit values override what the model's ``generation_config.json`` carries (top-k, repetition penalty,
        min-p, typical-p, its own temperature and top-p), so that the protocol is the same as the vllm backend's.
        """
        s = self.settings
        greedy = s.temperature == 0
        return {
            "max_new_tokens": s.max_tokens,
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.pad_id,
            "repetition_penalty": 1.0,
            "no_repeat_ngram_size": 0,
            "min_p": None,
            "top_k": 0,
            "do_sample": not greedy,
            # Greedy: None, so that transformers does not warn about sampling settings it ignores.
            "temperature": None if greedy else s.temperature,
            "top_p": None if greedy else s.top_p,
            "typical_p": None if greedy else 1.0,
        }

    def generate(self, prompts: Sequence[list[int]]) -> Iterator[list[tuple[int, Completion]]]:
        """One completion per prompt, yielded a batch of ``batch_size`` at a time."""
        import torch
        from torch.nn.utils.rnn import pad_sequence

        eos = set(self.eos_ids)
        for start in range(0, len(prompts), self.batch_size):
            torch.manual_seed(stable_seed(self.settings.seed, start))  # CPU and CUDA
            rows = [torch.tensor(p, dtype=torch.long) for p in prompts[start : start + self.batch_size]]
            # Left padding: every prompt ends at column width - 1, where generation starts.
            input_ids = pad_sequence(rows, batch_first=True, padding_value=self.pad_id, padding_side="left")
            attention_mask = pad_sequence([torch.ones_like(r) for r in rows], batch_first=True, padding_side="left")
            with torch.inference_mode():
                output = self.model.generate(
                    input_ids=input_ids.to(self.device),
                    attention_mask=attention_mask.to(self.device),
                    **self.generation_kwargs(),
                )
            completions = []
            for i, row in enumerate(output[:, input_ids.shape[1] :].cpu().tolist(), start):  # padded after EOS
                end = next((j for j, token in enumerate(row) if token in eos), None)
                # The EOS token counts as a response token (as vLLM counts it).
                tokens, reason = (row, LENGTH) if end is None else (row[: end + 1], STOP)
                text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                completions.append((i, Completion(text=text, num_tokens=len(tokens), finish_reason=reason)))
            yield completions

    def close(self) -> None:
        import torch

        del self.model
        torch.cuda.empty_cache()  # a no-op where CUDA was never initialised
