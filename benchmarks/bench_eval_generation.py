"""`smartthinker-verl eval`'s generation, old path against new, on one vLLM engine in one process.

    python benchmarks/bench_eval_generation.py [--model DIR] [--problems 32] [--k 4] [--max-tokens 256]
        [--chunk 32] [--rounds 2]

- **old** (before issue 27): every sample carries its own seed (``SamplingParams(seed=...)``, which vLLM samples one
  request at a time), and samples go to ``LLM.generate`` in chunks of ``--chunk``, each waiting for its longest
  response before the next starts. Written out here for the comparison.
- **new**: the engine's seed only, every sample submitted at once and handed back as it finishes
  (:meth:`VLLMBackend.generate <smartthinker_verl.evaluation.backends.vllm.VLLMBackend.generate>`, the code ``eval``
  runs).

Same engine (so the same model, KV cache and ``max_num_seqs``), same prompts (SmolLM2-135M-Instruct on the demo's
arithmetic, chat-templated), same token budget; the paths alternate ``--rounds`` times so that a change in the
machine's load hits both. Prints each run's seconds, generated tokens and tokens per second, the load average, and
the old/new ratios of the totals. ``eval`` used chunks of 1,024 samples per benchmark (at k = 16 AIME's 480 samples
were one chunk, MATH500's 8,000 eight); here ``--chunk`` defaults to a quarter of the samples (4 chunks).
The data-parallel part of the change (one engine per GPU) and ``max_num_seqs`` act on GPUs only: see docs/gpu.md,
"Evaluation time".
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from typing import Any

from smartthinker_verl.demo.assets import require
from smartthinker_verl.demo.data import arithmetic_problem
from smartthinker_verl.evaluation.backends import SamplingSettings, stable_seed
from smartthinker_verl.evaluation.backends.vllm import VLLMBackend


def prompts(backend: VLLMBackend, problems: int, k: int) -> list[list[int]]:
    """``problems x k`` chat-templated prompts (each problem ``k`` times in a row, as ``eval`` submits them)."""
    rng = random.Random(0)
    questions = [arithmetic_problem(rng, "medium")[0] for _ in range(problems)]
    encoded = [backend.encode([{"role": "user", "content": q}]) for q in questions]
    return [p for p in encoded for _ in range(k)]


def old_path(backend: VLLMBackend, batch: list[list[int]], chunk: int, seed: int) -> list[int]:
    """Per-sample seeds, chunked with a barrier: response token counts."""
    from vllm import SamplingParams

    settings = backend.settings
    tokens = []
    for start in range(0, len(batch), chunk):
        part = batch[start : start + chunk]
        params = [
            SamplingParams(
                n=1,
                temperature=settings.temperature,
                top_p=settings.top_p,
                max_tokens=settings.max_tokens,
                seed=stable_seed(seed, start + i),
                skip_special_tokens=True,
            )
            for i in range(len(part))
        ]
        outputs = backend.llm.generate([{"prompt_token_ids": p} for p in part], params, use_tqdm=False)
        tokens += [len(o.outputs[0].token_ids) for o in outputs]
    return tokens


def new_path(backend: VLLMBackend, batch: list[list[int]]) -> list[int]:
    """The engine seed, everything submitted at once, streamed back: response token counts."""
    return [c.num_tokens for finished in backend.generate(batch) for _, c in finished]


def timed(run: Any) -> tuple[float, int]:
    start = time.perf_counter()
    tokens = run()
    return time.perf_counter() - start, sum(tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: the demo's SmolLM2-135M-Instruct)")
    parser.add_argument("--problems", type=int, default=32)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each result on disk as it is printed

    model = args.model or str(require("smollm2"))
    settings = SamplingSettings(temperature=0.6, top_p=1.0, max_tokens=args.max_tokens, seed=0)
    # float32: without AVX-512 BF16 / AMX, bfloat16 is emulated on CPU (docs/cpu.md).
    backend = VLLMBackend(model, settings, dtype="float32", max_model_len=args.max_tokens + 256, enforce_eager=True)
    batch = prompts(backend, args.problems, args.k)
    print(
        f"model {model}; {len(batch)} samples ({args.problems} problems x {args.k}), max_tokens {args.max_tokens}, ",
        flush=True,
    )
    print(f"old chunk {args.chunk}; vLLM CPU KV cache {os.environ.get('VLLM_CPU_KVCACHE_SPACE')} GiB")
    timed(lambda: new_path(backend, batch[:8]))  # warm-up, off the clock
    totals = {"old": [0.0, 0], "new": [0.0, 0]}
    for round_ in range(args.rounds):
        for name in ("old", "new") if round_ % 2 == 0 else ("new", "old"):
            load = os.getloadavg()[0]
            if name == "old":
                seconds, tokens = timed(lambda r=round_: old_path(backend, batch, args.chunk, r))
            else:
                seconds, tokens = timed(lambda: new_path(backend, batch))
            totals[name][0] += seconds
            totals[name][1] += tokens
            print(
                f"round {round_} {name}: {seconds:7.1f} s, {tokens:6d} tokens, {tokens / seconds:6.1f} tokens/s "
                f"(load average {load:.1f} on {os.cpu_count()} CPUs)"
            )
    (old_s, old_t), (new_s, new_t) = totals["old"], totals["new"]
    print(f"total old: {old_s:.1f} s, {old_t} tokens, {old_t / old_s:.1f} tokens/s")
    print(f"total new: {new_s:.1f} s, {new_t} tokens, {new_t / new_s:.1f} tokens/s")
    speedup = (new_t / new_s) / (old_t / old_s)
    print(f"old/new time ratio {old_s / new_s:.2f}; new/old tokens-per-second ratio {speedup:.2f}")
    backend.close()


if __name__ == "__main__":
    main()
