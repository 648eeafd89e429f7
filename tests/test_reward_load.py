"""A GPU step's reward load on CPU: 512 responses of up to ~8,000 tokens through verl's own reward loop workers,
with answers past the limit and grader processes killed mid-request and while idle.

The step runs on daemon threads joined without a bound of its own; the test-level bound (``HANG_BOUND_S``) turns a
hang into a failure, and is no performance assertion (timings: benchmarks/bench_reward_load.py).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import reward_step  # noqa: E402
from conftest import qwen_tokenizer_dir  # noqa: E402

from smartthinker_verl import grading_pool  # noqa: E402

HANG_BOUND_S = 900.0
GRADERS, TIMEOUT_S, WORKERS = 2, 2.0, 4


def graders() -> list[int]:
    _generation, pool = grading_pool.get_pool(GRADERS, TIMEOUT_S)._current()
    return list(pool._pool_manager.worker_manager.workers)  # pebble's own map of its live workers


def run_bounded(step, data):
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("out", step(data)), daemon=True)
    thread.start()
    thread.join(HANG_BOUND_S)
    assert "out" in box, "the reward step did not finish: it hangs"
    return box["out"]


def check(batch, scores, extras):
    kinds = batch.kinds
    assert len(scores) == len(kinds) == 512
    assert set(extras) >= {"score", "acc", "think_closed", "truncated", "grading_timed_out", "response_length"}
    right = [kind == "right" for kind in kinds]
    assert [score == 1.0 for score in scores] == right  # right ones graded right, every other one 0
    assert list(extras["grading_timed_out"]) == [kind == "pathological" for kind in kinds]
    assert all(extras["truncated"][i] for i, kind in enumerate(kinds) if kind == "truncated")
    assert max(extras["response_length"]) > 7000


@pytest.mark.slow
def test_a_step_of_512_long_responses_survives_timeouts_and_killed_graders(qwen_tokenizer):
    config = reward_step.reward_config(qwen_tokenizer_dir(), GRADERS, TIMEOUT_S, WORKERS)
    step = reward_step.RewardStep(config)
    batch = reward_step.make_batch(qwen_tokenizer)

    def kill_one_busy_grader() -> None:  # mid-request: the step keeps every grader busy
        deadline = time.monotonic() + HANG_BOUND_S
        while not graders() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.0)
        os.kill(graders()[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_one_busy_grader, daemon=True)
    killer.start()
    check(batch, *run_bounded(step, batch.data))
    killer.join(HANG_BOUND_S)

    for pid in graders():  # while idle, between steps
        os.kill(pid, signal.SIGKILL)
    check(batch, *run_bounded(step, batch.data))
