"""Grading failures through verl 0.9.1's own reward loop and estimator call, on CPU.

verl swallows an exception from ``run_single`` (the v1 agent loop marks the prompt failed and trains on the rest of
its group), so: a data problem must score 0, be counted and logged once, and lose no response; a grading pool that
cannot start must stop the step where verl lets an exception through (the estimator, in the TaskRunner); and the
estimator must count groups verl left short.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import ray
import torch
from omegaconf import OmegaConf
from verl import DataProto
from verl.trainer.ppo.ray_trainer import compute_advantage

sys.path.insert(0, str(Path(__file__).parent))
import reward_step  # noqa: E402
from conftest import qwen_tokenizer_dir  # noqa: E402
from test_reward_manager import make_item  # noqa: E402

from smartthinker_verl import grading_report, step_metrics  # noqa: E402
from smartthinker_verl.errors import SetupError  # noqa: E402
from smartthinker_verl.shaping.groups import group_ids_from_index, incomplete_groups  # noqa: E402

#: Ground truths math-verify cannot parse (found by trying odd answers), and one it can.
UNPARSEABLE = ("}", "\\$")


@pytest.fixture(autouse=True)
def fresh_report():
    grading_report._LOGGED.clear()
    grading_report._LOCAL.pop()
    grading_report._LOCAL.failures.clear()
    step_metrics.PENDING.pop()
    yield
    grading_report._LOCAL.failures.clear()
    grading_report._HANDLE.clear()


def small_batch(tokenizer, truths: list[str | None]) -> DataProto:
    """One right answer (``\\boxed{10}``) per ground truth, as verl's agent loop hands rows to the reward loop."""
    items = [make_item(tokenizer, "<think>5 + 5</think> \\boxed{10}") for _ in truths]
    for row, (item, truth) in enumerate(zip(items, truths, strict=True)):
        item.non_tensor_batch["reward_model"] = np.array([{"ground_truth": truth}], dtype=object)
        item.non_tensor_batch["extra_info"] = np.array([{"index": row}], dtype=object)
    return DataProto.concat(items)


def test_bad_ground_truths_score_zero_are_counted_logged_once_and_lose_no_response(qwen_tokenizer, caplog):
    config = reward_step.reward_config(qwen_tokenizer_dir(), grader_processes=2, grade_timeout_s=15.0, workers=2)
    step = reward_step.RewardStep(config)
    truths = ["10", UNPARSEABLE[0], "10", UNPARSEABLE[1], "10", None, "10", "10"]
    data = small_batch(qwen_tokenizer, truths)
    with caplog.at_level(logging.WARNING, logger="smartthinker_verl.grading_report"):
        scores, extras = step(data)
    assert len(scores) == len(truths)  # no response lost
    assert list(extras["grading_errors"]) == [0, 1, 0, 1, 0, 1, 0, 0]
    assert [scores[i] for i in (1, 3, 5)] == [0.0, 0.0, 0.0]
    assert [scores[i] for i in (0, 2, 4, 6, 7)] == [1.0] * 5  # the group's other rows are graded as usual
    (logged,) = [r.getMessage() for r in caplog.records if "grading error" in r.getMessage()]
    assert "data_source='openai/gsm8k'" in logged and "data_preprocess" in logged
    assert any(f"extra_info.index={row}" in logged for row in (1, 3, 5))
    assert grading_report.collect() == 3 and grading_report.collect() == 0


def break_math_verify(tmp_path: Path, monkeypatch) -> None:
    """A broken install: a ``math_verify`` that fails to import, first on sys.path (grading workers take the
    parent's sys.path when they start). The real package is not touched."""
    fake = tmp_path / "math_verify"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('math_verify is broken in this environment')\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_a_grading_pool_that_cannot_start_stops_the_step_loudly(qwen_tokenizer, tmp_path, monkeypatch):
    break_math_verify(tmp_path, monkeypatch)
    # settings no other test uses, so this is a new pool started under the broken sys.path
    config = reward_step.reward_config(qwen_tokenizer_dir(), grader_processes=1, grade_timeout_s=13.5, workers=1)
    step = reward_step.RewardStep(config)  # verl's RewardLoopWorker builds the manager: the pool fails to start
    with pytest.raises(SetupError, match="did not start"):  # the response is not scored "wrong"
        step(small_batch(qwen_tokenizer, ["10"]))
    lengths, uids = [5, 6], ["a", "a"]
    data = estimator_batch(lengths, uids)
    with pytest.raises(SetupError, match="grading pool could not start.*math_verify is broken"):
        compute_advantage(data, adv_estimator="smartthinker", config=algorithm_config(n=2))


def algorithm_config(n: int | None):
    """``config.algorithm`` wired to the rollout as the recipe yaml wires it (``algorithm.run_context``)."""
    rollout = {"response_length": 16} if n is None else {"response_length": 16, "n": n}
    run_context = {"response_limit": "${actor_rollout_ref.rollout.response_length}"}
    if n is not None:
        run_context["group_size"] = "${actor_rollout_ref.rollout.n}"
    algorithm = {"adv_estimator": "smartthinker", "norm_adv_by_std_in_grpo": True, "use_kl_in_reward": False}
    root = OmegaConf.create(
        {"actor_rollout_ref": {"rollout": rollout}, "algorithm": {**algorithm, "run_context": run_context}}
    )
    return root.algorithm


def estimator_batch(lengths: list[int], uids: list[str]) -> DataProto:
    """Responses as verl's trainer holds them; a length of 0 is verl's padding row (empty response mask)."""
    mask = (torch.arange(16)[None] < torch.tensor(lengths)[:, None]).to(torch.int64)
    rewards = torch.zeros(len(lengths), 16)
    rewards[torch.arange(len(lengths)), (torch.tensor(lengths) - 1).clamp(min=0)] = 1.0 * (torch.tensor(lengths) > 4)
    return DataProto.from_dict(
        tensors={"token_level_rewards": rewards, "response_mask": mask},
        non_tensors={"uid": np.array(uids, dtype=object)},
    )


def test_groups_smaller_than_rollout_n_are_counted_with_a_warning(caplog):
    # group a: 4 responses; b: 3 and a padding row; c: 2; "pad": verl's padding rows only (no group)
    lengths = [5, 6, 7, 3, 5, 6, 2, 0, 5, 6, 0, 0]
    uids = ["a"] * 4 + ["b"] * 4 + ["c"] * 2 + ["pad"] * 2
    with caplog.at_level(logging.WARNING, logger="smartthinker_verl.advantage"):
        compute_advantage(estimator_batch(lengths, uids), adv_estimator="smartthinker", config=algorithm_config(n=4))
    logged = step_metrics.PENDING.pop()
    assert logged["smartthinker/incomplete_group_frac"] == pytest.approx(2 / 3)
    assert logged["smartthinker/grading_errors"] == 0.0
    assert any("2 of 3 groups have fewer than actor_rollout_ref.rollout.n=4" in r.getMessage() for r in caplog.records)


def test_without_rollout_n_the_metric_is_skipped_not_guessed():
    compute_advantage(estimator_batch([5, 6, 0], ["a", "a", "a"]), "smartthinker", config=algorithm_config(n=None))
    assert "smartthinker/incomplete_group_frac" not in step_metrics.PENDING.pop()


def test_incomplete_groups_matches_a_loop():
    rng = np.random.default_rng(0)
    for _ in range(50):
        uids = rng.integers(0, 6, size=int(rng.integers(1, 40)))
        size = int(rng.integers(1, 10))
        ids, count = group_ids_from_index(uids)
        expected = sum(1 for u in set(uids.tolist()) if int((uids == u).sum()) < size)
        assert incomplete_groups(ids, count, size) == expected


@pytest.fixture
def local_ray():
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@ray.remote(num_cpus=0)
class RewardWorker:
    """A reward worker is another process, a Ray actor, as verl's RewardLoopWorker."""

    def bad_ground_truths(self, count: int) -> None:
        for row in range(count):
            grading_report.data_error(ValueError("ground truth '}' cannot be parsed"), "src", {"index": row})

    def cannot_grade(self) -> None:
        grading_report.setup_failure(SetupError("a math-verify grading worker did not start"))


@pytest.mark.slow
def test_reports_from_another_process_reach_the_estimators_process(local_ray):
    workers = [RewardWorker.remote() for _ in range(2)]
    ray.get([worker.bad_ground_truths.remote(count) for worker, count in zip(workers, (2, 3), strict=True)])
    assert grading_report.collect() == 5 and grading_report.collect() == 0
    ray.get(workers[1].cannot_grade.remote())
    with pytest.raises(SetupError, match="did not start"):
        grading_report.collect()
