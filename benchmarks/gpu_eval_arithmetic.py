"""Arithmetic, not a measurement: GPU hours of the paper's evaluation protocol, `eval`'s old path against its new one.

    python benchmarks/gpu_eval_arithmetic.py [--gpus 4] [--k 16]

A decode-step model of vLLM on H100s run through simulated response lengths (docs/gpu.md, "Evaluation time", lists
the assumptions). Per engine, a decode step of ``B`` running sequences holding ``C`` tokens of KV cache in all takes

    STEP_OVERHEAD_S + weights / BANDWIDTH + C x KV bytes per token / BANDWIDTH (+ B x SEEDED_SAMPLE_S, old path)

(decoding is memory bound: every step reads the weights and the whole KV cache of the running sequences). Between
two finishing sequences ``B`` is fixed and ``C`` grows by ``B`` a step, so time advances event by event.

- **old**: one engine (``--eval-tp 1``: one GPU, the others idle), per-sample seeds (each running sequence adds
  ``SEEDED_SAMPLE_S`` a step: vLLM samples seeded requests one at a time), each benchmark in chunks of 1,024
  samples that wait for their longest response, vLLM's default ``max_num_seqs`` (1,024 on an H100): sequences are
  admitted while the cache has room and, when it is full, the newest is preempted and later recomputed (its
  prompt and tokens prefilled again at ``PREFILL_TOKENS_PER_S``).
- **new**: one engine per GPU, each on a round-robin share of all four benchmarks' samples at once, no seeds per
  sample, no barrier, ``max_num_seqs`` = the full-length sequences that fit (never preempted).
"""

from __future__ import annotations

import argparse
import heapq
import math
import random

from smartthinker_verl.launch.memory import KNOWN_MODELS, GiB, kv_bytes_per_token, max_full_length_sequences

#: H100 SXM 80 GB: usable memory bandwidth (about 80% of 3.35 TB/s) and memory.
BANDWIDTH = 2.7e12
GPU_GIB = 79.6
#: Per decode step: scheduling, launches and the batched sampler (CUDA graphs on).
STEP_OVERHEAD_S = 1.5e-3
#: Per seeded request and decode step: vLLM draws a seeded request's noise with its own generator, one at a time.
SEEDED_SAMPLE_S = 15e-6
#: Recomputing a preempted sequence (prefill is compute bound): tokens a second, 1.5B on an H100.
PREFILL_TOKENS_PER_S = 50_000
PROMPT_TOKENS = 150
MAX_TOKENS = 32768
CHUNK = 1024
#: (benchmark, problems, mean response tokens of R1-Distill-Qwen-1.5B: the paper's baseline row; AIME24 taken as
#: AIME25's).
BENCHMARKS = (("aime24", 30, 15199), ("aime25", 30, 15199), ("amc23", 40, 9320), ("math500", 500, 5420))
SIGMA = 0.8  # log-normal spread of response lengths (assumed)


def lengths(mean: float, count: int, rng: random.Random) -> list[int]:
    """``count`` log-normal response lengths cut at MAX_TOKENS whose mean is ``mean`` (bisection on the median)."""
    normals = [rng.gauss(0.0, SIGMA) for _ in range(count)]
    low, high = 1.0, 2.0 * mean
    for _ in range(60):
        median = (low + high) / 2
        drawn = [min(MAX_TOKENS, max(16, round(median * math.exp(z)))) for z in normals]
        low, high = (median, high) if sum(drawn) / count < mean else (low, median)
    return drawn


def engine_time(responses: list[int], *, weights: float, kv: float, cache: float, max_seqs: int, seeded: bool) -> float:
    """Seconds one engine takes for ``responses`` (token counts, submitted in this order) until the last finishes."""
    waiting = [(PROMPT_TOKENS, r, 0) for r in responses]  # (prompt, response, tokens already generated)
    waiting.reverse()
    running: list[tuple[int, int, int, int]] = []  # heap of (finish step, admitted order, prompt, response)
    step, clock, held, order = 0, 0.0, 0, 0  # held: KV tokens of the running sequences at `step`
    capacity = cache / kv
    while waiting or running:
        while waiting and len(running) < max_seqs and held + waiting[-1][0] + waiting[-1][2] < capacity:
            prompt, response, done = waiting.pop()
            if done:  # a preempted sequence: prefill its prompt and tokens again
                clock += (prompt + done) / PREFILL_TOKENS_PER_S
            heapq.heappush(running, (step + response - done, order, prompt, response))
            held += prompt + done
            order += 1
        batch = len(running)
        finish = running[0][0]
        room = math.floor((capacity - held) / batch)  # steps until the cache is full
        steps = max(1, min(finish - step, room))
        fixed = STEP_OVERHEAD_S + weights / BANDWIDTH + (batch * SEEDED_SAMPLE_S if seeded else 0.0)
        clock += steps * fixed + kv / BANDWIDTH * (steps * held + batch * steps * (steps - 1) / 2)
        step += steps
        held += batch * steps
        finished = False
        while running and running[0][0] <= step:
            _, _, prompt, response = heapq.heappop(running)
            held -= prompt + response
            finished = True
        if not finished and held >= capacity:  # preempt the newest sequence; it keeps its tokens and waits at the front
            newest = max(running, key=lambda item: item[1])
            running.remove(newest)
            heapq.heapify(running)
            finish, _, prompt, response = newest
            done = response - (finish - step)
            held -= prompt + done
            waiting.append((prompt, response, done))
    return clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=4)
    parser.add_argument("--k", type=int, default=16)
    args = parser.parse_args()
    shape = KNOWN_MODELS["deepseek-r1-distill-qwen-1.5b"]
    weights = 1.78e9 * 2
    kv = kv_bytes_per_token(shape)
    cache = 0.9 * GPU_GIB * GiB - weights - 3 * GiB
    fit = max_full_length_sequences(cache, shape, MAX_TOKENS + 2048)
    print(f"R1-Distill-Qwen-1.5B on {args.gpus} x H100 80 GB, k = {args.k}: KV cache {cache / GiB:.1f} GiB a GPU, ")
    print(f"{kv / 1024:.0f} KiB a token; new max_num_seqs {fit} (full length {MAX_TOKENS + 2048}); old 1,024")
    rng = random.Random(0)
    samples = {name: lengths(mean, problems * args.k, rng) for name, problems, mean in BENCHMARKS}
    old_total = new_total = 0.0
    for name, drawn in samples.items():
        old = sum(
            engine_time(drawn[i : i + CHUNK], weights=weights, kv=kv, cache=cache, max_seqs=1024, seeded=True)
            for i in range(0, len(drawn), CHUNK)
        )
        new = max(
            engine_time(drawn[g :: args.gpus], weights=weights, kv=kv, cache=cache, max_seqs=fit, seeded=False)
            for g in range(args.gpus)
        )
        old_total += old
        new_total += new
        print(
            f"{name}: {len(drawn)} samples, mean {sum(drawn) / len(drawn):,.0f} tokens, "
            f"{sum(d == MAX_TOKENS for d in drawn) / len(drawn):.0%} at the limit: old {old / 60:.0f} min, "
            f"new {new / 60:.0f} min (alone)"
        )
    everything = [d for drawn in samples.values() for d in drawn]
    together = max(
        engine_time(everything[g :: args.gpus], weights=weights, kv=kv, cache=cache, max_seqs=fit, seeded=False)
        for g in range(args.gpus)
    )
    one_gpu = engine_time(everything, weights=weights, kv=kv, cache=cache, max_seqs=fit, seeded=False)
    crowded = max(
        engine_time(everything[g :: args.gpus], weights=weights, kv=kv, cache=cache, max_seqs=1024, seeded=False)
        for g in range(args.gpus)
    )
    print(f"all four: old {old_total / 3600:.2f} h, new {together / 3600:.2f} h in one pass (benchmarks one by one: ")
    print(f"{new_total / 3600:.2f} h); ratio {old_total / together:.1f}x per model evaluated; the new path on one GPU ")
    print(f"{one_gpu / 3600:.2f} h (ratio {old_total / one_gpu:.1f}x without data parallelism); the new path with ")
    print(f"--max-num-seqs 1024 (preempting) {crowded / 3600:.2f} h (ratio {old_total / crowded:.1f}x)")


if __name__ == "__main__":
    main()
