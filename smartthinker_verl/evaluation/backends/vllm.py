"""vLLM generation backend: GPUs, tensor parallelism, the paper's long (32k-token) evaluations; vLLM's CPU build too.

GPU machines get vLLM with the ``gpu`` extra; ``make install`` puts vLLM's CPU build into the CPU environment, where
the KV cache is ``VLLM_CPU_KVCACHE_SPACE`` GiB (1 unless the environment sets it: vLLM would otherwise size it from
the machine's memory). Prompts are rendered by the same :func:`render_prompt` as the ``hf`` backend and passed to
vLLM as token ids.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from smartthinker_verl.errors import ConfigError, SetupError
from smartthinker_verl.evaluation.backends.base import (
    STOP,
    Completion,
    SamplingSettings,
    load_chat_template,
    render_prompt,
)

logger = logging.getLogger(__name__)


def import_vllm() -> Any:
    """Import vLLM, or raise :class:`SetupError` saying how to install it."""
    try:
        import vllm
    except ImportError as error:
        raise SetupError(
            f"the vllm backend needs vLLM, which is not installed ({error}); on a GPU machine run "
            "`pip install -e .[gpu]` (or `make install-gpu`), on a CPU machine `make install` (vLLM's CPU build), "
            "or evaluate with `--backend hf` (transformers, CPU or GPU)"
        ) from error
    return vllm


def _cpu_settings() -> None:
    """On vLLM's CPU build: the project's KV-cache size and thread binding, unless the environment sets them."""
    from vllm.platforms import current_platform

    if current_platform.is_cpu():
        from smartthinker_verl.platforms.cpu.platform import vllm_cpu_env

        for key, value in vllm_cpu_env().items():
            os.environ.setdefault(key, value)
        logger.info("vllm backend on CPU: KV cache %s GiB", os.environ["VLLM_CPU_KVCACHE_SPACE"])


class VLLMBackend:
    """Samples with ``vllm.LLM.generate``, one request per sample (prefix caching shares a problem's prompt).

    Args:
        model_path: a Hugging Face model folder (e.g. the output of ``smartthinker-verl convert``) or hub id.
        settings: the sampling protocol. Its seed seeds the engine; each request carries its sample's own seed, so
            a sample's response does not depend on batching, resuming or the other requests.
        tensor_parallel_size: GPUs per model replica.
        dtype: vLLM's ``dtype`` (``auto``, ``bfloat16``, ...).
        gpu_memory_utilization: fraction of each GPU's memory vLLM may use (ignored by vLLM's CPU build).
        max_model_len: context length (prompt + response); ``None``: the model's own.
        chat_template: a Jinja file replacing the tokenizer's chat template.
        enforce_eager: disable CUDA graphs (slower, less memory, faster start).
        trust_remote_code: passed to vLLM and transformers.
    """

    name = "vllm"

    def __init__(
        self,
        model_path: str,
        settings: SamplingSettings,
        *,
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        chat_template: str | None = None,
        enforce_eager: bool = False,
        trust_remote_code: bool = False,
    ) -> None:
        vllm = import_vllm()
        from transformers import AutoTokenizer

        if tensor_parallel_size < 1:
            raise ConfigError(f"--tensor-parallel-size must be >= 1, got {tensor_parallel_size}")
        self.settings = settings
        self.chat_template = load_chat_template(chat_template)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        engine_args: dict[str, Any] = {
            "model": model_path,
            "tensor_parallel_size": tensor_parallel_size,
            "dtype": dtype,
            "seed": settings.seed,
            "gpu_memory_utilization": gpu_memory_utilization,
            "enforce_eager": enforce_eager,
            "trust_remote_code": trust_remote_code,
        }
        if max_model_len is not None:
            engine_args["max_model_len"] = max_model_len
        _cpu_settings()
        self.llm = vllm.LLM(**engine_args)
        self._sampling_params = vllm.SamplingParams
        logger.info("vllm backend: %s, tensor parallel %d", model_path, tensor_parallel_size)

    def encode(self, messages: list[dict[str, str]]) -> list[int]:
        return render_prompt(self.tokenizer, messages, self.chat_template)

    def sampling_params(self, seed: int) -> Any:
        """vLLM's sampling parameters of one sample: the protocol and the sample's seed."""
        return self._sampling_params(
            n=1,
            temperature=self.settings.temperature,
            top_p=self.settings.top_p,
            max_tokens=self.settings.max_tokens,
            seed=seed,
            skip_special_tokens=True,
        )

    def generate(self, prompts: Sequence[list[int]], seeds: Sequence[int]) -> list[Completion]:
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds: pass one seed per prompt")
        outputs = self.llm.generate(
            [{"prompt_token_ids": list(p)} for p in prompts],
            [self.sampling_params(seed) for seed in seeds],
            use_tqdm=False,
        )
        completions = []
        for output in outputs:
            sample = output.outputs[0]
            reason = sample.finish_reason or STOP  # "stop", "length" (token limit) or "abort"
            completions.append(Completion(text=sample.text, num_tokens=len(sample.token_ids), finish_reason=reason))
        return completions

    def close(self) -> None:
        del self.llm
