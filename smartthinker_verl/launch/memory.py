"""What verl's actor holds per micro-batch without flash-attn (the sdpa fallback), and what vLLM's KV cache holds.

Without flash-attn the recipes train with ``use_remove_padding=false`` (``compose.apply_attention_fallback``).
verl 0.9.1 then packs micro-batches by *real* tokens (``verl.utils.seqlen_balancing.rearrange_micro_batches``:
at most ``max_token_len_per_gpu`` real tokens, workloads ``24576 L + L^2`` balanced over the micro-batches) and pads
each micro-batch to its longest sequence: a micro-batch of ``n`` sequences, the longest ``L_max`` tokens, runs the
model over ``P = n * L_max`` padded positions. Its FSDP engine (``workers/engine/fsdp/transformer_impl.py``,
``prepare_model_outputs``) then holds, in the model dtype (bf16: 2 bytes), per vocabulary entry:

- the model's logits over every padded position: ``P x V``;
- their copy divided by the sampling temperature (0.6, so not skipped): ``P x V``;
- the entropy (log-prob pass: ``calculate_entropy=True``): a softmax and a product, ``2 x P x V``, transient;
- the padding cut away and the rows concatenated: ``R x V`` (``R`` real tokens);
- without flash-attn's fused cross-entropy, ``logprobs_from_logits_v2``: a Python loop over the ``R`` rows, each a
  ``log_softmax`` whose output autograd keeps for the backward pass: ``R x V`` in the update;
- in the update's backward pass the gradient of the padded logits: ``P x V``.

So the peak is ``V x 2 bytes x (c_P P + c_R R)`` with ``(c_P, c_R) = (3, 2)`` for the actor update and ``(4, 0)``
for the log-prob pass (:data:`UPDATE_COPIES`, :data:`LOG_PROB_COPIES`). Activations are small beside it:
gradient checkpointing keeps each layer's input (``layers x hidden x 2`` bytes per padded token), one layer is
recomputed at a time (about ``(6 hidden + 4 intermediate) x 2`` bytes per padded token), and sdpa gets a
``n x L_max x L_max`` boolean mask (``L_max`` bytes per padded token).

Everything here is a pure function of lengths and model shapes; :func:`simulate_step` runs verl's own partitioner on
simulated length distributions (:func:`simulated_lengths`). ``benchmarks/bench_sdpa_budgets.py`` prints the tables
of docs/gpu.md, "Without flash-attn".
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

GiB = 1024**3
#: Bytes of one bf16 value (logits, activations, KV cache).
BF16 = 2
#: Copies of the full-vocabulary logits at the peak of one micro-batch: (per padded position, per real token).
UPDATE_COPIES = (3, 2)
LOG_PROB_COPIES = (4, 0)
#: Length regimes of :func:`simulated_lengths`: (median response tokens, log-normal sigma). "start": the distilled
#: models' long answers; "short": after length shaping has shortened them (docs/gpu.md: the share cut at the limit).
REGIMES = {"start": (4000.0, 0.7), "short": (1200.0, 0.9)}


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


#: The recipes' models, from their ``config.json``: the shape of a hub id that is not in the local cache (a dry run
#: offline still states the logits' cost).
KNOWN_MODELS = {
    "deepseek-r1-distill-qwen-1.5b": ModelShape("DeepSeek-R1-Distill-Qwen-1.5B", 151936, 1536, 28, 2, 128, 8960),
    "deepseek-r1-distill-qwen-7b": ModelShape("DeepSeek-R1-Distill-Qwen-7B", 152064, 3584, 28, 4, 128, 18944),
    "qwen3-4b-thinking-2507": ModelShape("Qwen3-4B-Thinking-2507", 151936, 2560, 36, 8, 128, 9728),
}


def model_shape(path: str) -> ModelShape | None:
    """The shape of the model at ``path`` (a folder, or a hub id in the local Hugging Face cache), else the recipes'
    table by name; None when neither knows it."""
    from transformers import AutoConfig

    name = Path(str(path).rstrip("/")).name
    try:
        config = AutoConfig.from_pretrained(str(Path(path).expanduser()), local_files_only=True)
        return ModelShape.from_hf_config(name, config.to_dict())
    except Exception as exc:  # not local, not cached, or not a Qwen-style config: the table, else unknown
        logger.debug("no local config for %s (%s)", path, exc)
    return KNOWN_MODELS.get(name.lower())


def logits_bytes_per_token(shape: ModelShape, dtype_bytes: int = BF16) -> int:
    """One copy of the full-vocabulary logits of one position: ``V x dtype`` bytes."""
    return shape.vocab_size * dtype_bytes


def kv_bytes_per_token(shape: ModelShape, tensor_parallel: int = 1, dtype_bytes: int = BF16) -> float:
    """vLLM's KV cache per token and GPU: ``layers x kv_heads x head_dim x 2 (K, V) x dtype / TP``."""
    return shape.num_layers * shape.num_kv_heads * shape.head_dim * 2 * dtype_bytes / tensor_parallel


def max_full_length_sequences(kv_cache_bytes: float, shape: ModelShape, tokens: int, tensor_parallel: int = 1) -> int:
    """Full-length sequences (``tokens`` each) that fit in a KV cache of ``kv_cache_bytes`` per GPU (docs/gpu.md,
    "GPU memory": the recipes' ``max_num_seqs`` and ``smartthinker-verl eval``'s default)."""
    return math.floor(kv_cache_bytes / (kv_bytes_per_token(shape, tensor_parallel) * tokens))


@dataclass(frozen=True)
class MicroBatch:
    """One micro-batch as verl pads it: ``sequences`` rows of ``longest`` positions, ``real`` of them tokens."""

    sequences: int
    longest: int
    real: int

    @property
    def padded(self) -> int:
        return self.sequences * self.longest


def micro_batch_bytes(shape: ModelShape, batch: MicroBatch, *, update: bool) -> int:
    """Peak bytes of one padded micro-batch: logits copies (module docstring) + checkpointed activations + mask."""
    per_padded, per_real = UPDATE_COPIES if update else LOG_PROB_COPIES
    logits = logits_bytes_per_token(shape) * (per_padded * batch.padded + per_real * batch.real)
    activations = 0
    if update:
        per_token = BF16 * (shape.num_layers * shape.hidden_size + 6 * shape.hidden_size + 4 * shape.intermediate_size)
        activations = per_token * batch.padded
    mask = batch.padded * batch.longest
    return int(logits + activations + mask)


def simulated_lengths(
    regime: str, *, prompts: int, group: int, max_prompt: int, max_response: int, seed: int
) -> list[int]:
    """Sequence lengths (prompt + response tokens) of one step: ``prompts x group`` values.

    Prompts are log-normal (DeepScaleR's chat-formatted problems); responses are log-normal with the regime's median
    and sigma (:data:`REGIMES`), scaled per prompt by a difficulty factor shared by its group, and cut at
    ``max_response``. An assumption, not a measurement: the tables in docs/gpu.md say which regime they use.
    """
    import torch

    if regime not in REGIMES:
        raise ValueError(f"unknown length regime {regime!r}; use one of {sorted(REGIMES)}")
    median, sigma = REGIMES[regime]
    generator = torch.Generator().manual_seed(seed)
    prompt = (120 * torch.exp(0.5 * torch.randn(prompts, generator=generator))).clamp(30, max_prompt).round()
    difficulty = torch.exp(0.4 * torch.randn(prompts, 1, generator=generator))
    response = median * difficulty * torch.exp(sigma * torch.randn(prompts, group, generator=generator))
    response = response.clamp(16, max_response).round()
    return (prompt.unsqueeze(1) + response).long().flatten().tolist()


def split_micro_batches(lengths: Sequence[int], max_token_len: int, min_num_micro_batch: int | None = None) -> list:
    """verl's own ``rearrange_micro_batches`` on sequences of these lengths: one index list per micro-batch.

    The caller checks ``max_token_len >= max(lengths)`` (verl asserts it against the padded width)."""
    import torch
    from tensordict import TensorDict
    from verl.utils.seqlen_balancing import rearrange_micro_batches

    # The partitioner reads only ``attention_mask.sum(-1)`` (the real lengths) from a padded batch; a one-column
    # "mask" holding the lengths gives it the same numbers without copying ``B x L`` masks per micro-batch.
    column = torch.tensor(list(lengths), dtype=torch.long).unsqueeze(1)
    batch = TensorDict({"input_ids": column, "attention_mask": column}, batch_size=[len(lengths)])
    _, indices = rearrange_micro_batches(batch, max_token_len, min_num_micro_batch=min_num_micro_batch)
    return indices


@dataclass(frozen=True)
class StepSimulation:
    """Micro-batches of one training step on one GPU count: every update and log-prob micro-batch of every rank."""

    update: list[MicroBatch]
    log_prob: list[MicroBatch]

    @staticmethod
    def ratio(batches: Sequence[MicroBatch]) -> float:
        """Padded over real tokens."""
        return sum(b.padded for b in batches) / max(1, sum(b.real for b in batches))

    @staticmethod
    def largest(batches: Sequence[MicroBatch]) -> MicroBatch:
        """The micro-batch with the most padded positions."""
        return max(batches, key=lambda b: b.padded)


def _dp_micro_batches(rank_lengths: list[list[int]], max_token_len: int) -> list[MicroBatch]:
    """Micro-batches of each rank, the count agreed over ranks (verl takes the maximum over the DP group)."""
    counts = [len(split_micro_batches(lengths, max_token_len)) for lengths in rank_lengths]
    batches = []
    for lengths in rank_lengths:
        for index in split_micro_batches(lengths, max_token_len, min_num_micro_batch=max(counts)):
            chosen = [lengths[i] for i in index]
            batches.append(MicroBatch(len(chosen), max(chosen), sum(chosen)))
    return batches


def simulate_step(
    lengths: Sequence[int], *, n_gpus: int, mini_batch_responses: int, update_budget: int, log_prob_budget: int
) -> StepSimulation:
    """One step as verl 0.9.1 splits it: balanced over the data-parallel ranks (``_balance_batch``: equal-size
    partitions of the workloads), then per rank the log-prob pass over the whole share and the update over each
    mini-batch (``mini_batch_responses / n_gpus`` sequences), both through :func:`split_micro_batches`."""
    import torch
    from verl.utils.seqlen_balancing import calculate_workload, get_seqlen_balanced_partitions

    workloads = calculate_workload(torch.tensor(list(lengths))).tolist()
    ranks = get_seqlen_balanced_partitions(workloads, k_partitions=n_gpus, equal_size=True)
    rank_lengths = [[lengths[i] for i in rank] for rank in ranks]
    log_prob = _dp_micro_batches(rank_lengths, log_prob_budget)
    per_rank = mini_batch_responses // n_gpus
    update = []
    for start in range(0, len(rank_lengths[0]), per_rank):
        update += _dp_micro_batches([r[start : start + per_rank] for r in rank_lengths], update_budget)
    return StepSimulation(update, log_prob)


# ------------------------------------------------------------------------------------------ launch-time warning


def _fallback_budgets(config) -> tuple[int, int]:
    actor, rollout = config.actor_rollout_ref.actor, config.actor_rollout_ref.rollout
    update = int(actor.ppo_max_token_len_per_gpu)
    log_prob = rollout.get("log_prob_max_token_len_per_gpu")
    return update, int(log_prob) if log_prob is not None else update


def sdpa_fallback_warning(config, *, regime: str = "short", seed: int = 0) -> str | None:
    """What training without remove-padding costs for this config, as one warning line; None when it packs.

    None when ``use_remove_padding`` is on (flash-attn's varlen kernels) or the run is on CPU (``trainer.device``).
    Otherwise: the token budgets, the padded/real ratio and the largest padded micro-batch that verl's partitioner
    gives on simulated short answers (:func:`simulated_lengths`, the regime where padding costs most), the bytes
    of its logits, and the loss of flash-attn's fused cross-entropy. Needs verl importable (its partitioner).
    """
    model = config.actor_rollout_ref.model
    if model.get("use_remove_padding", True) or str(config.trainer.get("device", "cuda")) == "cpu":
        return None
    data, rollout, actor = config.data, config.actor_rollout_ref.rollout, config.actor_rollout_ref.actor
    update_budget, log_prob_budget = _fallback_budgets(config)
    n_gpus = int(config.trainer.n_gpus_per_node) * int(config.trainer.nnodes)
    lengths = simulated_lengths(
        regime,
        prompts=int(data.train_batch_size),
        group=int(rollout.n),
        max_prompt=int(data.max_prompt_length),
        max_response=int(data.max_response_length),
        seed=seed,
    )
    if not actor.get("use_dynamic_bsz", False) or len(lengths) % n_gpus:
        costs = "every micro-batch is padded to its longest sequence"
    else:
        step = simulate_step(
            lengths,
            n_gpus=n_gpus,
            mini_batch_responses=int(actor.ppo_mini_batch_size) * int(rollout.n),
            update_budget=update_budget,
            log_prob_budget=log_prob_budget,
        )
        largest = step.largest(step.update)
        costs = (
            f"on simulated short answers verl pads {step.ratio(step.update):.1f}x the real tokens, up to "
            f"{largest.padded:,} padded positions a micro-batch"
        )
        shape = model_shape(str(model.path))
        if shape is not None:
            peak = max(micro_batch_bytes(shape, b, update=True) for b in step.update)
            peak = max([peak] + [micro_batch_bytes(shape, b, update=False) for b in step.log_prob])
            costs += (
                f" ({shape.vocab_size:,}-entry logits at {logits_bytes_per_token(shape) / 1024:.0f} KiB a position and "
                f"copy: peak about {peak / GiB:.1f} GiB a micro-batch)"
            )
    return (
        "training without flash-attn (sdpa, use_remove_padding=false): token budgets "
        f"ppo_max_token_len_per_gpu={update_budget}, log_prob_max_token_len_per_gpu={log_prob_budget}; {costs}; "
        "no fused cross-entropy (log-probs in a per-token loop), so actor updates are slower. Install flash-attn "
        "(docs/gpu.md, 'flash-attention') to pack sequences without padding."
    )
