"""One training step's reward computation through verl 0.9.1's own reward loop, in one process.

verl's ``RewardLoopManager.compute_rm_score`` pads the batch to the number of workers, chunks it, hands each chunk
to a ``RewardLoopWorker`` actor (``compute_score_batch``: one asyncio task per response, the manager's
``run_single``, its ``run_in_executor`` thread pool) and joins the extras by key. Here the workers are verl's own
``RewardLoopWorker`` objects, each on its own thread and event loop as an actor would be; only Ray's transport is
left out (not under test, and each actor would cost a process on a 2-core machine). All workers of this process
share its grading pool, the harshest case for the pool.

Used by tests/test_reward_load.py and benchmarks/bench_reward_load.py.
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from verl import DataProto
from verl.protocol import pad_dataproto_to_divisor

PROMPTS, SAMPLES = 64, 8
RESPONSE_WIDTH = 8192
PATHOLOGICAL = "\\boxed{9^{9^{9^{9^{9}}}}}"
PROMPT = "Find the value. Please reason step by step, and put your final answer within \\boxed{}."


@dataclass
class Batch:
    data: DataProto
    kinds: list[str] = field(default_factory=list)  # right | wrong | truncated | unparsable | pathological


def reasoning(rng: random.Random, words: int) -> str:
    steps = ["Let x be the unknown.", "Then 3x + 2 = 17,", "so 3x = 15 and x = 5.", "Check: 3 * 5 + 2 = 17.", "Hmm,"]
    return " ".join(rng.choice(steps) for _ in range(words // 5))


def make_batch(tokenizer, seed: int = 0, pathological_every: int = 128) -> Batch:
    """64 prompts x 8 responses: reasoning of up to ~8,000 tokens, ``</think>``, a final answer of each kind."""
    rng = random.Random(seed)
    texts, truths, kinds = [], [], []
    for index in range(PROMPTS * SAMPLES):
        gold = str(index // SAMPLES + 10)
        think = reasoning(rng, rng.randint(50, 3900))  # ~2 tokens per word: up to ~7,900 tokens
        kind = ["right", "right", "right", "wrong", "truncated", "unparsable", "right", "wrong"][index % SAMPLES]
        if index % pathological_every == SAMPLES - 1:
            kind = "pathological"
        answer = {
            "right": f"The answer is $\\boxed{{{gold}}}$.",
            "wrong": f"The answer is $\\boxed{{{int(gold) + 1}}}$.",
            "unparsable": "I cannot decide on an answer.",
            "pathological": f"So it is {PATHOLOGICAL}.",
            "truncated": "",
        }[kind]
        texts.append(think + (reasoning(rng, 9000) if kind == "truncated" else f"\n</think>\n\n{answer}"))
        truths.append(gold)
        kinds.append(kind)
    prompt_ids = torch.tensor(
        tokenizer.apply_chat_template(
            [{"role": "user", "content": PROMPT}], add_generation_prompt=True, tokenize=True, return_dict=False
        )
    )
    count = len(texts)
    responses = torch.full((count, RESPONSE_WIDTH), tokenizer.pad_token_id)
    response_mask = torch.zeros((count, RESPONSE_WIDTH), dtype=torch.long)
    for row, ids in enumerate(tokenizer(texts, add_special_tokens=False)["input_ids"]):
        ids = ids[:RESPONSE_WIDTH]
        responses[row, : len(ids)] = torch.tensor(ids)
        response_mask[row, : len(ids)] = 1
    prompts = prompt_ids.expand(count, -1)
    data = DataProto.from_dict(
        tensors={
            "prompts": prompts,
            "responses": responses,
            "input_ids": torch.cat([prompts, responses], dim=1),
            "attention_mask": torch.cat([torch.ones_like(prompts), response_mask], dim=1),
        },
        non_tensors={
            "data_source": np.array(["load"] * count, dtype=object),
            "reward_model": np.array([{"style": "rule", "ground_truth": t} for t in truths], dtype=object),
            "extra_info": np.array([{"index": i} for i in range(count)], dtype=object),
        },
    )
    return Batch(data=data, kinds=kinds)


def reward_config(tokenizer_dir: Path, grader_processes: int, grade_timeout_s: float, workers: int):
    """The recipe config with the tokenizer, the grading options and verl's reward.num_workers set."""
    from smartthinker_verl.launch.compose import compose_config

    return compose_config(
        [
            f"actor_rollout_ref.model.path={tokenizer_dir}",
            f"actor_rollout_ref.rollout.response_length={RESPONSE_WIDTH}",
            f"reward.num_workers={workers}",
            f"+reward.smartthinker.grader_processes={grader_processes}",
            f"+reward.smartthinker.grade_timeout_s={grade_timeout_s}",
        ]
    )


class RewardStep:
    """``config.reward.num_workers`` verl RewardLoopWorkers, each with its own thread and event loop."""

    def __init__(self, config) -> None:
        from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

        self.loops = [asyncio.new_event_loop() for _ in range(int(config.reward.num_workers))]
        self.workers = []
        for loop in self.loops:
            asyncio.set_event_loop(loop)  # verl's manager binds the loop it finds at construction
            self.workers.append(RewardLoopWorker(config))
        asyncio.set_event_loop(None)

    def __call__(self, data: DataProto) -> tuple[list[float], dict[str, np.ndarray]]:
        """Scores and extras as ``RewardLoopManager.compute_rm_score`` joins them."""
        padded, _pad = pad_dataproto_to_divisor(data, len(self.workers))
        chunks = padded.chunk(len(self.workers))
        outputs: list[list[dict] | BaseException] = [[] for _ in self.workers]

        def run(slot: int) -> None:
            try:
                coroutine = self.workers[slot].compute_score_batch(chunks[slot])
                outputs[slot] = self.loops[slot].run_until_complete(coroutine)
            except BaseException as error:
                outputs[slot] = error

        threads = [threading.Thread(target=run, args=(slot,), daemon=True) for slot in range(len(self.workers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for output in outputs:
            if isinstance(output, BaseException):
                raise output
        flat = [item for output in outputs for item in output][: len(data)]
        extras = [item["reward_extra_info"] for item in flat]
        return [item["reward_score"] for item in flat], {key: np.array([e[key] for e in extras]) for key in extras[0]}
