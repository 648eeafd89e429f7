"""On one GPU with torch and transformers only: the 1.5B recipe's largest actor micro-batch, measured against the
estimate of docs/gpu.md ("Without flash-attn").

    python benchmarks/gpu_memory_check.py            # CUDA: the real shapes
    python benchmarks/gpu_memory_check.py --smoke    # any machine: a tiny model, that the script runs

The model is DeepSeek-R1-Distill-Qwen-1.5B's architecture (``benchmarks/models/.../config.json``, no hub access)
with random bf16 weights, sdpa attention and gradient checkpointing, as the recipe trains without flash-attn. The
micro-batch is the largest update micro-batch verl's partitioner gives at the recipe's fallback budget
(``ppo_max_token_len_per_gpu=12288`` real tokens) on short answers: 40,370 padded positions (docs/gpu.md's table),
here 5 sequences padded to 8,074 tokens holding 12,288 real ones. One update pass as verl's FSDP engine runs it:
logits over every padded position, divided by the temperature, padding cut away, log-softmax of the real rows,
a policy-gradient loss, backward. Printed: the peak CUDA memory above the resident weights and their gradients,
and :func:`smartthinker_verl.launch.memory.micro_batch_bytes`'s estimate for the same micro-batch.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForCausalLM

from smartthinker_verl.launch.memory import GiB, ModelShape, micro_batch_bytes

CONFIG = Path(__file__).resolve().parent / "models" / "deepseek-r1-distill-qwen-1.5b"
#: (sequence lengths) of the micro-batch: 12,288 real tokens padded to 5 x 8,074 = 40,370 positions.
LENGTHS = (8074, 1054, 1054, 1053, 1053)
SMOKE_LENGTHS = (48, 16, 12)
TEMPERATURE = 0.6


def build_model(smoke: bool, device: torch.device) -> tuple[torch.nn.Module, ModelShape]:
    config = AutoConfig.from_pretrained(CONFIG)
    if smoke:
        config.update({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "vocab_size": 1000})
        config.update({"num_attention_heads": 4, "num_key_value_heads": 2})
    config._attn_implementation = "sdpa"
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    with device:
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.gradient_checkpointing_enable()
    model.config.use_cache = False
    return model, ModelShape.from_hf_config(CONFIG.name, config.to_dict())


def update_pass(model: torch.nn.Module, lengths: tuple[int, ...], vocab: int, device: torch.device) -> float:
    """One padded micro-batch through forward and backward as verl's update does; the loss."""
    width = max(lengths)
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, vocab, (len(lengths), width), generator=generator).to(device)
    mask = (torch.arange(width)[None] < torch.tensor(lengths)[:, None]).to(device)  # [n, L_max], right padding
    logits = model(input_ids=input_ids, attention_mask=mask.long()).logits  # [n, L_max, V]
    logits = logits / TEMPERATURE  # a copy, as verl's engine
    real = logits[mask]  # [R, V]: padding cut away, rows concatenated
    log_probs = F.log_softmax(real, dim=-1)  # [R, V], kept for the backward pass
    taken = log_probs.gather(-1, input_ids[mask].unsqueeze(-1)).squeeze(-1)  # [R]
    advantages = torch.randn(taken.shape, generator=generator).to(device, taken.dtype)
    loss = -(taken * advantages).mean()
    loss.backward()
    return float(loss.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny model on any device: that the script runs")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.smoke:
        raise SystemExit("gpu_memory_check.py: no CUDA device; run with --smoke to check the script itself")
    lengths = SMOKE_LENGTHS if args.smoke else LENGTHS
    model, shape = build_model(args.smoke, device)
    params = sum(p.numel() for p in model.parameters())
    estimate = micro_batch_bytes(shape, lengths, update=True)
    print(
        f"model {shape.name}{' (smoke: shrunk)' if args.smoke else ''}: {params / 1e6:,.1f} M parameters, "
        f"{next(model.parameters()).dtype}, sdpa, gradient checkpointing; micro-batch {len(lengths)} x "
        f"{max(lengths)} = {len(lengths) * max(lengths):,} padded positions, {sum(lengths):,} real tokens"
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
        resident = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    loss = update_pass(model, lengths, shape.vocab_size, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(f"forward + backward: {seconds:.2f} s, loss {loss:.4f}")
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - resident
        gradients = sum(p.numel() * p.element_size() for p in model.parameters())
        above = peak - gradients
        print(
            f"peak above the resident weights ({resident / GiB:.2f} GiB): {peak / GiB:.2f} GiB, of which gradients "
            f"{gradients / GiB:.2f} GiB; the micro-batch itself {above / GiB:.2f} GiB against the estimate "
            f"{estimate / GiB:.2f} GiB (docs/gpu.md, memory.micro_batch_bytes): ratio {above / estimate:.2f}; "
            f"GPU {torch.cuda.get_device_name()} {torch.cuda.get_device_properties(0).total_memory / GiB:.1f} GiB"
        )
    else:
        print(f"estimate for this micro-batch {estimate / GiB:.4f} GiB (no peak memory measured on {device.type})")


if __name__ == "__main__":
    main()
