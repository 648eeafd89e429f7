"""Memory arithmetic of the recipes (docs/gpu.md, "GPU memory" and "Without flash-attn"): what vLLM's KV cache holds
per token (``eval``'s default ``max_num_seqs``), and what verl's actor holds per padded micro-batch under
``+attention=sdpa`` (``benchmarks/gpu_memory_check.py`` compares it with a measured peak).

With sdpa (``use_remove_padding=false``) verl pads each micro-batch to its longest sequence: ``n`` sequences, the
longest ``L_max`` tokens, make ``P = n * L_max`` padded positions. Its FSDP engine then holds, in bf16, per
vocabulary entry: the logits over every padded position, their copy divided by the temperature, the entropy's softmax
and product (log-prob pass), the ``R`` real rows cut out, ``log_softmax`` outputs kept for the backward pass (update),
and the gradient of the padded logits (update). So the peak is ``V x 2 bytes x (c_P P + c_R R)`` with
``(c_P, c_R) = (3, 2)`` for the update and ``(4, 0)`` for the log-prob pass, plus small checkpointed activations and
sdpa's boolean mask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

GiB = 1024**3
#: Bytes of one bf16 value (logits, activations, KV cache).
BF16 = 2
#: Copies of the full-vocabulary logits at the peak of one micro-batch: (per padded position, per real token).
UPDATE_COPIES = (3, 2)
LOG_PROB_COPIES = (4, 0)


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a Hugging Face ``config.json`` the arithmetic needs (no parameter count: the doctor reads it
    from the safetensors headers, :func:`smartthinker_verl.launch.doctor.parameter_count`)."""

    name: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int

    @classmethod
    def from_hf_config(cls, name: str, config: dict) -> ModelShape:
        """From a ``config.json``'s keys (Qwen2 / Qwen3 style)."""
        hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        return cls(
            name,
            vocab_size=int(config["vocab_size"]),
            hidden_size=hidden,
            num_layers=int(config["num_hidden_layers"]),
            num_kv_heads=int(config.get("num_key_value_heads") or heads),
            head_dim=int(config.get("head_dim") or hidden // heads),
            intermediate_size=int(config["intermediate_size"]),
        )


#: The recipes' models, from their ``config.json`` (docs/gpu.md's figures, without a download).
KNOWN_MODELS = {
    "deepseek-r1-distill-qwen-1.5b": ModelShape("DeepSeek-R1-Distill-Qwen-1.5B", 151936, 1536, 28, 2, 128, 8960),
    "deepseek-r1-distill-qwen-7b": ModelShape("DeepSeek-R1-Distill-Qwen-7B", 152064, 3584, 28, 4, 128, 18944),
    "qwen3-4b-thinking-2507": ModelShape("Qwen3-4B-Thinking-2507", 151936, 2560, 36, 8, 128, 9728),
}


def kv_bytes_per_token(shape: ModelShape, tensor_parallel: int = 1) -> float:
    """vLLM's KV cache per token and GPU: ``layers x kv_heads x head_dim x 2 (K, V) x bf16 / TP``."""
    return shape.num_layers * shape.num_kv_heads * shape.head_dim * 2 * BF16 / tensor_parallel


def max_full_length_sequences(kv_cache_bytes: float, shape: ModelShape, tokens: int, tensor_parallel: int = 1) -> int:
    """Full-length sequences (``tokens`` each) that fit in a KV cache of ``kv_cache_bytes`` per GPU (docs/gpu.md,
    "GPU memory": the recipes' ``max_num_seqs`` and ``smartthinker-verl eval``'s default)."""
    return math.floor(kv_cache_bytes / (kv_bytes_per_token(shape, tensor_parallel) * tokens))


def micro_batch_bytes(shape: ModelShape, lengths: Sequence[int], *, update: bool) -> int:
    """Peak bytes of one micro-batch of sequences of ``lengths`` tokens, padded to the longest: logits copies (module
    docstring) + checkpointed activations + mask."""
    per_padded, per_real = UPDATE_COPIES if update else LOG_PROB_COPIES
    padded = len(lengths) * max(lengths)
    logits = shape.vocab_size * BF16 * (per_padded * padded + per_real * sum(lengths))
    activations = 0
    if update:
        per_token = BF16 * (shape.num_layers * shape.hidden_size + 6 * shape.hidden_size + 4 * shape.intermediate_size)
        activations = per_token * padded
    return int(logits + activations + padded * max(lengths))
