"""Batched token sampling with transformers on CPU: the generation core of the ``hf`` rollout.

Pure torch + transformers (no Ray, no verl), so it is unit-tested directly. One call generates a batch of prompts
that share sampling settings: left-padded prompts, a KV cache, temperature / top-k / top-p sampling (greedy when the
temperature is 0), a per-row token limit, stop at any end-of-sequence id (the stop token is kept, as vLLM does), and
the log-probability of every sampled token.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import torch

logger = logging.getLogger(__name__)

LOGPROBS_MODES = ("raw_logprobs", "processed_logprobs")


@dataclasses.dataclass(frozen=True)
class SamplingSettings:
    """Settings shared by one generation batch (vLLM's meaning: ``top_k <= 0`` and ``top_p == 1`` disable them)."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    logprobs_mode: str = "processed_logprobs"

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 means greedy), got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.logprobs_mode not in LOGPROBS_MODES:
            raise ValueError(f"logprobs_mode must be one of {LOGPROBS_MODES}, got {self.logprobs_mode!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0 or self.top_k == 1


@dataclasses.dataclass(frozen=True)
class Generation:
    """One sampled response: its token ids, their log-probs and why it stopped (``stop`` or ``length``)."""

    token_ids: list[int]
    log_probs: list[float]
    finish_reason: str


def process_logits(logits: torch.Tensor, settings: SamplingSettings) -> torch.Tensor:
    """Apply temperature, top-k and top-p to ``logits`` [B, V] (float32); filtered entries become -inf."""
    if settings.greedy:
        return logits
    logits = logits / settings.temperature
    vocab = logits.shape[-1]
    if 0 < settings.top_k < vocab:
        kth = torch.topk(logits, settings.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if settings.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # Drop a token when the mass before it already reaches top_p (the most likely token always stays).
        drop_sorted = (cumulative - sorted_logits.softmax(dim=-1)) >= settings.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(
    logits: torch.Tensor, settings: SamplingSettings, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick the next token of every row. ``logits`` [B, V] -> (token ids [B], their log-probs [B])."""
    logits = logits.float()
    processed = process_logits(logits, settings)
    if settings.greedy:
        tokens = processed.argmax(dim=-1)
    else:
        probs = processed.softmax(dim=-1)
        tokens = torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)
    source = logits if settings.logprobs_mode == "raw_logprobs" or settings.greedy else processed
    log_probs = source.log_softmax(dim=-1).gather(-1, tokens[:, None]).squeeze(-1)
    return tokens, log_probs


@torch.no_grad()
def generate_batch(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: Sequence[int],
    settings: SamplingSettings,
    eos_token_ids: Sequence[int],
    pad_token_id: int,
    generator: torch.Generator | None = None,
) -> list[Generation]:
    """Sample one response per prompt with a KV cache.

    Args:
        model: a transformers causal LM (eval mode, CPU).
        prompts: B token-id lists (any lengths; left-padded here).
        max_new_tokens: B per-row limits (>= 1).
        settings: temperature / top-k / top-p / log-prob mode for the whole batch.
        eos_token_ids: ids that end a response (the stop token is part of the response).
        pad_token_id: id used for padding (never attended to).
        generator: RNG for sampling (reproducible runs).

    Returns:
        B :class:`Generation` in prompt order.
    """
    if len(prompts) != len(max_new_tokens):
        raise ValueError(f"{len(prompts)} prompts but {len(max_new_tokens)} token limits")
    if not prompts:
        return []
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    if any(limit < 1 for limit in max_new_tokens):
        raise ValueError(f"token limits must be >= 1, got {list(max_new_tokens)}")

    batch = len(prompts)
    width = max(len(p) for p in prompts)
    input_ids = torch.full((batch, width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((batch, width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        input_ids[row, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
        attention_mask[row, width - len(prompt) :] = 1
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)

    limits = torch.tensor(list(max_new_tokens), dtype=torch.long)
    eos = torch.tensor(sorted(set(eos_token_ids)), dtype=torch.long)
    finished = torch.zeros(batch, dtype=torch.bool)
    stopped = torch.zeros(batch, dtype=torch.bool)
    steps = int(limits.max())
    out_tokens = torch.full((batch, steps), pad_token_id, dtype=torch.long)
    out_logprobs = torch.zeros((batch, steps), dtype=torch.float32)
    lengths = torch.zeros(batch, dtype=torch.long)

    outputs = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=True)
    cache = outputs.past_key_values
    next_logits = outputs.logits[:, -1, :]
    next_position = position_ids[:, -1:] + 1
    for step in range(steps):
        tokens, log_probs = sample_next(next_logits, settings, generator)
        active = ~finished
        out_tokens[active, step] = tokens[active]
        out_logprobs[active, step] = log_probs[active]
        lengths += active.long()
        hit_eos = active & torch.isin(tokens, eos)
        stopped |= hit_eos
        finished |= hit_eos | (lengths >= limits)
        if bool(finished.all()):
            break
        tokens = tokens.masked_fill(finished, pad_token_id)
        attention_mask = torch.cat([attention_mask, (~finished).long()[:, None]], dim=-1)
        outputs = model(
            input_ids=tokens[:, None],
            attention_mask=attention_mask,
            position_ids=next_position,
            past_key_values=cache,
            use_cache=True,
        )
        cache = outputs.past_key_values
        next_logits = outputs.logits[:, -1, :]
        next_position = next_position + 1

    return [
        Generation(
            token_ids=out_tokens[row, : lengths[row]].tolist(),
            log_probs=out_logprobs[row, : lengths[row]].tolist(),
            finish_reason="stop" if bool(stopped[row]) else "length",
        )
        for row in range(batch)
    ]
