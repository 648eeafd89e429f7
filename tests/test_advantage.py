"""The `smartthinker` estimator, found through verl's registry and called the way verl's trainer calls it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import verl  # noqa: F401  (loads the plugin through its entry point, as in every verl process)
from omegaconf import OmegaConf
from verl import DataProto
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage, get_adv_estimator_fn
from verl.trainer.ppo.ray_trainer import compute_advantage

from smartthinker_verl import step_metrics as metrics
from smartthinker_verl.errors import ConfigError, DataError

WORKED_LENGTHS = [1200, 1800, 2500, 3100, 4000, 5200, 6500, 8000]
WORKED_CORRECT = [1, 1, 1, 1, 0, 1, 0, 0]
WORKED_ADVANTAGES = [0.989204, 0.989204, 0.824165, 0.641017, -1.147863, 0.0, -1.147863, -1.147863]


def algorithm_config(**overrides):
    base = {
        "adv_estimator": "smartthinker",
        "norm_adv_by_std_in_grpo": True,
        "use_kl_in_reward": False,
        "gamma": 1.0,
        "lam": 1.0,
    }
    base.update(overrides)
    return OmegaConf.create(base)


def make_batch(lengths, scores, uids, width=None):
    """A verl DataProto as the trainer holds it: right-padded responses, the score on the last valid token."""
    width = width or max(lengths) + 3
    bs = len(lengths)
    mask = (torch.arange(width)[None] < torch.tensor(lengths)[:, None]).to(torch.int64)
    rewards = torch.zeros(bs, width)
    rewards[torch.arange(bs), torch.tensor(lengths) - 1] = torch.tensor(scores, dtype=torch.float32)
    data = DataProto.from_dict(
        tensors={"token_level_rewards": rewards, "response_mask": mask},
        non_tensors={"uid": np.array(uids, dtype=object)},
    )
    return data


def test_found_through_verls_registry_and_called_by_verl_in_a_fresh_process():
    """A new interpreter: `import verl` loads the plugin; verl's own compute_advantage resolves and calls it."""
    code = (
        "import json, numpy as np, torch, verl\n"
        "from omegaconf import OmegaConf\n"
        "from verl import DataProto\n"
        "from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY\n"
        "from verl.trainer.ppo.ray_trainer import compute_advantage\n"
        "from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER\n"
        f"lengths, scores = {WORKED_LENGTHS}, {WORKED_CORRECT}\n"
        "mask = (torch.arange(8100)[None] < torch.tensor(lengths)[:, None]).long()\n"
        "rewards = torch.zeros(8, 8100)\n"
        "rewards[torch.arange(8), torch.tensor(lengths) - 1] = torch.tensor(scores, dtype=torch.float32)\n"
        "data = DataProto.from_dict(tensors={'token_level_rewards': rewards, 'response_mask': mask},"
        " non_tensors={'uid': np.array(['q'] * 8, dtype=object)})\n"
        "config = OmegaConf.create({'norm_adv_by_std_in_grpo': True, 'use_kl_in_reward': False})\n"
        "out = compute_advantage(data, adv_estimator='grpo_smartthinker', config=config)\n"
        "print(json.dumps({'est': sorted(k for k in ADV_ESTIMATOR_REGISTRY if 'smartthinker' in k),"
        " 'rm': REWARD_MANAGER['smartthinker'].__module__,"
        " 'adv': out.batch['advantages'][:, 0].tolist()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["est"] == ["grpo_smartthinker", "smartthinker"]
    assert found["rm"] == "smartthinker_verl.reward_manager"
    assert found["adv"] == pytest.approx(WORKED_ADVANTAGES, abs=1e-5)


def test_worked_example_through_verls_compute_advantage():
    data = make_batch(WORKED_LENGTHS, WORKED_CORRECT, ["q"] * 8, width=8100)
    out = compute_advantage(data, adv_estimator="smartthinker", config=algorithm_config())
    advantages = out.batch["advantages"]
    assert advantages.shape == (8, 8100) and advantages.dtype == torch.float32
    first_token = advantages[:, 0]
    assert first_token.tolist() == pytest.approx(WORKED_ADVANTAGES, abs=1e-5)
    # broadcast over the valid tokens, zero outside the response mask
    mask = out.batch["response_mask"].bool()
    assert torch.equal(advantages, first_token[:, None] * mask)
    assert bool((advantages[~mask] == 0).all())
    assert torch.equal(out.batch["returns"], advantages)
    # the most-penalised correct response sits exactly at the mean; correct >= 0, incorrect <= 0
    assert first_token[5].item() == 0.0
    assert bool((first_token[torch.tensor(WORKED_CORRECT).bool()] >= 0).all())


def test_alias_gives_the_same_function():
    assert get_adv_estimator_fn("grpo_smartthinker") is get_adv_estimator_fn("smartthinker")


@pytest.mark.parametrize("norm", [True, False])
def test_unshaped_batch_equals_verls_grpo_exactly(norm):
    """No mixed group (or no length spread): SmartThinker must reduce to verl's own GRPO, bit for bit."""
    rng = np.random.default_rng(11)
    fn = get_adv_estimator_fn("smartthinker")
    for trial in range(200):
        num_groups, group = 6, int(rng.integers(1, 9))
        uids = [f"u{g}" for g in range(num_groups) for _ in range(group)]
        rng.shuffle(uids)
        if trial % 2:  # every group all-correct or all-wrong
            verdict = {u: float(rng.integers(0, 2)) for u in set(uids)}
            scores = [verdict[u] for u in uids]
            lengths = rng.integers(1, 40, len(uids)).tolist()
        else:  # mixed groups, but every response of the same length: nothing to penalise
            scores = rng.integers(0, 2, len(uids)).astype(float).tolist()
            lengths = [17] * len(uids)
        data = make_batch(lengths, scores, uids)
        ours, _ = fn(
            token_level_rewards=data.batch["token_level_rewards"],
            response_mask=data.batch["response_mask"],
            config=algorithm_config(norm_adv_by_std_in_grpo=norm),
            index=data.non_tensor_batch["uid"],
        )
        theirs, _ = compute_grpo_outcome_advantage(
            data.batch["token_level_rewards"],
            data.batch["response_mask"],
            data.non_tensor_batch["uid"],
            norm_adv_by_std_in_grpo=norm,
        )
        assert torch.equal(ours, theirs)


def test_norm_adv_by_std_false_gives_centered_rewards():
    data = make_batch(WORKED_LENGTHS, WORKED_CORRECT, ["q"] * 8)
    fn = get_adv_estimator_fn("smartthinker")
    adv, _ = fn(
        token_level_rewards=data.batch["token_level_rewards"],
        response_mask=data.batch["response_mask"],
        config=algorithm_config(norm_adv_by_std_in_grpo=False),
        index=data.non_tensor_batch["uid"],
    )
    first = adv[:, 0].double()
    assert first.sum().item() == pytest.approx(0.0, abs=1e-6)
    assert first[5].item() == 0.0 and first[0].item() == pytest.approx(1 - 0.537121, abs=1e-5)


def test_options_are_read_from_algorithm_smartthinker():
    data = make_batch(WORKED_LENGTHS, WORKED_CORRECT, ["q"] * 8)
    fn = get_adv_estimator_fn("smartthinker")
    kwargs = {
        "token_level_rewards": data.batch["token_level_rewards"],
        "response_mask": data.batch["response_mask"],
        "index": data.non_tensor_batch["uid"],
    }
    paper, _ = fn(config=algorithm_config(), **kwargs)
    symmetric, _ = fn(config=algorithm_config(smartthinker={"penalty": "symmetric"}), **kwargs)
    assert not torch.equal(paper, symmetric)
    with pytest.raises(ValueError, match="fixed_coefficient"):
        fn(config=algorithm_config(smartthinker={"coefficient": "fixed"}), **kwargs)


def test_options_are_validated_once_per_process_and_config(monkeypatch):
    """The estimator checks its config (check_settings, what check-config runs) once, not on every step; a changed
    config is checked again."""
    from smartthinker_verl import advantage

    calls = []
    checked = advantage.check_settings
    monkeypatch.setattr(advantage, "check_settings", lambda *args: calls.append(1) or checked(*args))
    advantage._checked_settings.cache_clear()
    data = make_batch(WORKED_LENGTHS, WORKED_CORRECT, ["q"] * 8)
    for penalty in ("one_sided", "one_sided", "one_sided", "symmetric"):
        compute_advantage(
            data, adv_estimator="smartthinker", config=algorithm_config(smartthinker={"penalty": penalty})
        )
    assert len(calls) == 2


def test_use_kl_in_reward_is_refused_with_the_fix():
    data = make_batch([3, 4], [1.0, 0.0], ["a", "a"])
    with pytest.raises(ConfigError, match="use_kl_loss=True"):
        compute_advantage(data, adv_estimator="smartthinker", config=algorithm_config(use_kl_in_reward=True))


def test_nan_scores_and_missing_uids_fail_loudly():
    fn = get_adv_estimator_fn("smartthinker")
    data = make_batch([3, 4], [float("nan"), 0.0], ["a", "a"])
    with pytest.raises(DataError, match="non-finite outcome scores at responses \\[0\\]"):
        fn(
            token_level_rewards=data.batch["token_level_rewards"],
            response_mask=data.batch["response_mask"],
            index=data.non_tensor_batch["uid"],
            config=algorithm_config(),
        )
    with pytest.raises(DataError, match="uid"):
        fn(
            token_level_rewards=data.batch["token_level_rewards"],
            response_mask=data.batch["response_mask"],
            config=algorithm_config(),
        )


def test_nan_score_is_named_by_verl_row_number_with_padding_rows():
    """The reported row is verl's, not a position among the non-padding rows (row 0 is verl's padding)."""
    fn = get_adv_estimator_fn("smartthinker")
    data = make_batch([0, 3, 4], [0.0, float("nan"), 0.0], ["pad", "a", "a"], width=7)
    with pytest.raises(DataError, match="non-finite outcome scores at responses \\[1\\]"):
        fn(
            token_level_rewards=data.batch["token_level_rewards"],
            response_mask=data.batch["response_mask"],
            index=data.non_tensor_batch["uid"],
            config=algorithm_config(),
        )


def test_step_statistics_are_recorded_for_the_logger():
    metrics.PENDING.pop()
    uids = ["q"] * 8 + ["easy"] * 4 + ["hard"] * 4
    lengths = WORKED_LENGTHS + [10, 20, 30, 40] + [50, 60, 70, 80]
    scores = WORKED_CORRECT + [1, 1, 1, 1] + [0, 0, 0, 0]
    compute_advantage(make_batch(lengths, scores, uids), adv_estimator="smartthinker", config=algorithm_config())
    logged = metrics.PENDING.pop()
    # the method's statistics, and the run's grading errors (no rollout.n in this config: no incomplete_group_frac)
    assert set(logged) == {metrics.PREFIX + name for name in metrics.METRIC_NAMES} | {"smartthinker/grading_errors"}
    assert logged["smartthinker/optimal_length/mean"] == pytest.approx(1959.3229, abs=1e-3)
    assert logged["smartthinker/coefficient/mean"] == pytest.approx(1.428341e-4, rel=1e-5)
    assert logged["smartthinker/shaped_group_frac"] == pytest.approx(1 / 3)
    assert logged["smartthinker/penalized_frac"] == pytest.approx(3 / 16)  # responses 3, 4, 6 of the worked group
    assert logged["smartthinker/accuracy/mean"] == pytest.approx(9 / 16)
    assert logged["smartthinker/all_correct_group_frac"] == pytest.approx(1 / 3)
    assert logged["smartthinker/all_wrong_group_frac"] == pytest.approx(1 / 3)
    correct_lengths = [1200, 1800, 2500, 3100, 5200, 10, 20, 30, 40]
    assert logged["smartthinker/length_correct/mean"] == pytest.approx(np.mean(correct_lengths))


@pytest.mark.parametrize("mask_dtype", [torch.int64, torch.float32, torch.bool])
def test_inputs_are_not_modified_whatever_the_mask_dtype(mask_dtype):
    data = make_batch(WORKED_LENGTHS, WORKED_CORRECT, ["q"] * 8)
    mask = data.batch["response_mask"].to(mask_dtype)
    rewards = data.batch["token_level_rewards"]
    mask_before, rewards_before = mask.clone(), rewards.clone()
    adv, _ = get_adv_estimator_fn("smartthinker")(
        token_level_rewards=rewards, response_mask=mask, index=data.non_tensor_batch["uid"], config=algorithm_config()
    )
    assert torch.equal(mask, mask_before) and torch.equal(rewards, rewards_before)
    assert adv.dtype == torch.float32
    assert adv[:, 0].tolist() == pytest.approx(WORKED_ADVANTAGES, abs=1e-5)
