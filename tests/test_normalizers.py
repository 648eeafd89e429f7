"""From shaped rewards to advantages, through the estimators as verl calls them: ``algorithm.<method>.normalizer``
hands the shaped rewards to any verl outcome estimator (compared with that estimator fed the same rewards), a group
whose shaped rewards are all equal gets exactly 0 under GRPO in every method, rows of an empty response mask (verl's
batch padding) take no part, and LASER-DE counts training steps, not advantage computations, under verl's
``separate_async`` trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import verl  # noqa: F401  (loads the plugin through its entry point, as in every verl process)
from baselines_reference import LaserDE
from omegaconf import OmegaConf
from smartthinker_reference import rng_for
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage, get_adv_estimator_fn

from smartthinker_verl import shaping_state
from smartthinker_verl import step_metrics as metrics
from smartthinker_verl.advantage import usable_normalizers
from smartthinker_verl.errors import ConfigError
from smartthinker_verl.options import RunContext
from smartthinker_verl.shaping import METHODS, GroupedBatch, get_method, group_ids_from_index
from smartthinker_verl.shaping import laser_de as laser_de_module

METHOD_NAMES = ("smartthinker", "shorter_better", "efficient_reasoning", "kimi_length", "laser_de")
LIMIT = 450
LASER_SMALL = {"length_lower_bound": 100, "length_interval": 100, "length_upper_bound": 400, "update_interval": 2}
#: verl outcome estimators that can normalise shaped rewards, each compared with verl's own function below.
VERL_NORMALIZERS = ("rloo", "rloo_vectorized", "reinforce_plus_plus_baseline", "opo", "grpo_passk", "gpg")


@pytest.fixture(autouse=True)
def fresh_laser_state():
    shaping_state.reset_states()
    yield
    shaping_state.reset_states()


def laser_state():
    return shaping_state.state_of(get_method("laser_de"))


def root_config(name, trainer=None, norm=True, **options):
    """verl's full config, of which the estimator receives ``config.algorithm``."""
    options = {**(LASER_SMALL if name == "laser_de" else {}), **options}
    calls = ((trainer or {}).get("v1") or {}).get("separate_async", {}).get("parameter_sync_step", 1)
    algorithm = {"adv_estimator": name, "norm_adv_by_std_in_grpo": norm, "use_kl_in_reward": False, name: options}
    algorithm["run_context"] = {"response_limit": LIMIT, "calls_per_step": calls}  # what the recipe yaml fills in
    return OmegaConf.create({"trainer": trainer or {}, "algorithm": algorithm})


def verl_batch(lengths, scores, uids):
    """Right-padded responses, the score on the last valid token (a length 0 row: verl's padding, no score)."""
    width = max(max(lengths), 1) + 2
    lengths_t = torch.tensor(lengths)
    mask = (torch.arange(width)[None] < lengths_t[:, None]).to(torch.int64)
    rewards = torch.zeros(len(lengths), width)
    real = lengths_t > 0
    rewards[torch.arange(len(lengths))[real], lengths_t[real] - 1] = torch.tensor(scores, dtype=torch.float32)[real]
    return rewards, mask, np.array(uids, dtype=object)


def estimate(name, lengths, scores, uids, config):
    rewards, mask, index = verl_batch(lengths, scores, uids)
    advantages, returns = get_adv_estimator_fn(name)(
        token_level_rewards=rewards, response_mask=mask, index=index, config=config.algorithm
    )
    assert torch.equal(advantages, returns)
    return advantages


def random_batch(rng, groups=6, size=8):
    lengths, scores, uids = [], [], []
    for g in range(groups):
        lengths += rng.integers(1, LIMIT + 1, size).tolist()
        scores += (rng.random(size) < rng.choice([0.0, 0.3, 0.6, 1.0])).astype(float).tolist()
        uids += [f"p{g}"] * size
    order = rng.permutation(len(uids))
    return [lengths[i] for i in order], [scores[i] for i in order], [uids[i] for i in order]


# --------------------------------------------------------------------------------------------- zero spread


#: Per method, a group of 8 whose shaped rewards are all equal but not exactly representable in float32, where verl's
#: float32 GRPO leaves rounding noise divided by epsilon: (lengths, scores, the shared shaped reward).
ZERO_SPREAD = {
    "smartthinker": ([300] * 8, [0.7] * 8, 0.7),  # all correct (partial credit), one length: no penalty
    "shorter_better": ([100, 300] * 4, [0.0] * 8, -0.1),  # all wrong, symmetric around the mean: -beta * 100 each
    "efficient_reasoning": ([250] * 8, [1.0] * 8, 0.95),  # all correct, one length: 1 - alpha / 2 each
    "kimi_length": ([200] * 8, [0.7] * 8, 0.7),  # one length: lambda = 0, r = score
    "laser_de": ([50] * 8, [0.7] * 8, 1.2),  # all correct within the target: 0.7 + alpha
}


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_a_group_of_equal_shaped_rewards_gets_exactly_zero_advantage(name):
    lengths, scores, shared = ZERO_SPREAD[name]
    # verl's own GRPO on these float32 rewards is off by rounding / epsilon: what this test guards against.
    rewards = torch.full((8, 4), shared, dtype=torch.float64).float() * torch.eye(4)[0]
    noisy, _ = compute_grpo_outcome_advantage(rewards, torch.ones(8, 4), np.array(["q"] * 8, dtype=object))
    assert noisy.abs().max() > 1e-3
    # A second, mixed group keeps its ordinary advantages.
    advantages = estimate(
        name, lengths + [10, 20], scores + [1.0, 0.0], ["flat"] * 8 + ["mixed"] * 2, root_config(name)
    )
    assert torch.count_nonzero(advantages[:8]) == 0
    assert advantages[8, 0] > 0.5 and advantages[9, 0] < -0.5


# ----------------------------------------------------------------------------------------------- normalisers


def shaped_rewards(name, lengths, scores, uids, options):
    """The method's shaped rewards, computed directly on the batch (LASER-DE from a fresh state)."""
    ids, count = group_ids_from_index(np.array(uids, dtype=object))
    batch = GroupedBatch.build(torch.tensor(lengths), torch.tensor(scores, dtype=torch.float32), ids, count)
    method = get_method(name)
    options = method.options_type.from_mapping(options).for_run(RunContext.from_algorithm(root_config(name).algorithm))
    if name == "laser_de":
        return method.shape(batch, options, state=laser_de_module.LaserDEState()).rewards
    return method.shape(batch, options).rewards


@pytest.mark.parametrize("normalizer", VERL_NORMALIZERS)
@pytest.mark.parametrize("name", METHOD_NAMES)
def test_a_verl_normalizer_gets_the_shaped_rewards_where_verl_puts_the_score(name, normalizer):
    """algorithm.<method>.normalizer=<verl estimator>: our estimator equals verl's estimator called on the shaped
    rewards placed on each response's last valid token, bit for bit."""
    rng = rng_for(name, normalizer)
    lengths, scores, uids = random_batch(rng)
    config = root_config(name, normalizer=normalizer)
    ours = estimate(name, lengths, scores, uids, config)
    shaped = shaped_rewards(name, lengths, scores, uids, {**(LASER_SMALL if name == "laser_de" else {})})
    _, mask, index = verl_batch(lengths, scores, uids)
    placed = torch.zeros(mask.shape)
    placed[torch.arange(len(lengths)), torch.tensor(lengths) - 1] = shaped.float()
    theirs, _ = get_adv_estimator_fn(normalizer)(
        token_level_rewards=placed, response_mask=mask, index=index, config=config.algorithm
    )
    assert torch.equal(ours, theirs)


def test_the_default_normalizer_is_grpo_and_rloo_differs():
    rng = np.random.default_rng(3)
    lengths, scores, uids = random_batch(rng)
    grpo = estimate("smartthinker", lengths, scores, uids, root_config("smartthinker"))
    explicit = estimate("smartthinker", lengths, scores, uids, root_config("smartthinker", normalizer="grpo"))
    rloo = estimate("smartthinker", lengths, scores, uids, root_config("smartthinker", normalizer="rloo"))
    assert torch.equal(grpo, explicit) and not torch.equal(grpo, rloo)


@pytest.mark.parametrize("normalizer", ["gae", "remax", "reinforce_plus_plus", "shorter_better", "grpo_typo"])
def test_a_normalizer_that_cannot_serve_is_refused_with_the_usable_list(normalizer):
    with pytest.raises(ConfigError) as caught:
        estimate("smartthinker", [10, 20], [1, 0], ["q", "q"], root_config("smartthinker", normalizer=normalizer))
    message = str(caught.value)
    assert f"algorithm.smartthinker.normalizer={normalizer}" in message and "Fix: use one of" in message
    assert "rloo" in message and "reinforce_plus_plus_baseline" in message
    usable = usable_normalizers()
    assert "grpo" in usable and "gae" not in usable and not set(usable) & set(METHODS)


def test_another_methods_normalizer_is_a_foreign_option():
    config = root_config("smartthinker")
    config.algorithm.shorter_better = {"normalizer": "rloo"}
    with pytest.raises(ConfigError, match="algorithm.shorter_better.normalizer='rloo'"):
        estimate("smartthinker", [10, 20], [1, 0], ["q", "q"], config)


# -------------------------------------------------------------------------------------------- padded rows


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_rows_of_an_empty_response_mask_take_no_part(name):
    """verl's _balance_batch pads an uneven batch with rows of an empty response mask under one shared fake uid:
    the real rows' advantages and the step's statistics are those of the batch without them; theirs are 0."""
    rng = np.random.default_rng(11)
    lengths, scores, uids = random_batch(rng, groups=3)
    config = root_config(name)
    metrics.PENDING.pop()
    plain = estimate(name, lengths, scores, uids, config)
    plain_stats = metrics.PENDING.pop()
    shaping_state.reset_states()
    padded = estimate(name, lengths + [0, 0], scores + [0.0, 0.0], uids + ["pad", "pad"], config)
    padded_stats = metrics.PENDING.pop()
    assert torch.equal(padded[:-2, : plain.shape[1]], plain) and torch.count_nonzero(padded[-2:]) == 0
    assert padded_stats.keys() == plain_stats.keys()
    for key, value in plain_stats.items():
        assert padded_stats[key] == pytest.approx(value, nan_ok=True), key


# ------------------------------------------------------------------------------------ trainer steps (async)


def test_laser_de_counts_training_steps_under_separate_async():
    """trainer.v1.trainer_mode=separate_async computes advantages parameter_sync_step (4) times per training step.
    The schedule (update every 2 steps) counts steps: updates on calls 1 and 9, as the per-group reference with
    calls=4 has it; counting calls would update on calls 1, 3, 5, ..."""
    trainer = {"use_v1": True, "v1": {"trainer_mode": "separate_async", "separate_async": {"parameter_sync_step": 4}}}
    config = root_config("laser_de", trainer=trainer)
    assert RunContext.from_algorithm(config.algorithm).calls_per_step == 4
    reference = LaserDE(lower=100, interval=100, upper=400, every=2, truncation=LIMIT, calls=4)
    rng = np.random.default_rng(7)
    updates = []
    for call in range(12):
        lengths, scores, uids = random_batch(rng, groups=4)
        metrics.PENDING.pop()
        advantages = estimate("laser_de", lengths, scores, uids, config)
        updates.append(metrics.PENDING.pop()["laser_de/target_updated"])
        groups = {}
        for i, uid in enumerate(uids):
            groups.setdefault(uid, []).append(i)
        expected = reference.step(
            [([lengths[i] for i in m], [scores[i] for i in m], [scores[i] >= 0.5 for i in m]) for m in groups.values()]
        )
        for members, want_rewards in zip(groups.values(), expected, strict=True):
            got = advantages[members, 0].double()
            want = torch.tensor(want_rewards, dtype=torch.float64)
            centred = want - want.mean()
            std = want.std()
            want_adv = torch.zeros_like(want) if float(centred.abs().max()) < 1e-12 else centred / (std + 1e-6)
            assert got.tolist() == pytest.approx(want_adv.tolist(), rel=1e-4, abs=2e-5), f"call {call}"
    assert [i for i, u in enumerate(updates) if u == 1.0] == [0, 8]


def test_through_verls_trainer_advantage_entry_with_padding_and_sub_steps():
    """The v1 trainer's _compute_advantage calls verl's compute_advantage_for_multi_trajectories on a DataProto of
    token_level_rewards, response_mask and uid, parameter_sync_step times per step; after _balance_batch the batch
    may end in padding rows (empty mask, one shared ``pad...`` uid). The separate_async trainer cannot start on CPU
    (it needs a separate rollout pool and an NCCL/NIXL weight-transfer engine), so its advantage path is driven here
    with its config and real batches."""
    from verl import DataProto
    from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

    trainer = {"use_v1": True, "v1": {"trainer_mode": "separate_async", "separate_async": {"parameter_sync_step": 2}}}
    config = root_config("laser_de", trainer=trainer)
    reference = LaserDE(lower=100, interval=100, upper=400, every=2, truncation=LIMIT, calls=2)
    rng = np.random.default_rng(21)
    for call in range(8):
        lengths, scores, uids = random_batch(rng, groups=3)
        padded_lengths, padded_scores = lengths + [0, 0, 0], scores + [0.0] * 3
        rewards, mask, index = verl_batch(padded_lengths, padded_scores, uids + ["pad0123"] * 3)
        data = DataProto.from_dict(
            tensors={"token_level_rewards": rewards, "response_mask": mask}, non_tensors={"uid": index}
        )
        keys = [f"{uid}_0_{i}" for i, uid in enumerate(index)]
        out = compute_advantage_for_multi_trajectories(
            data, batch_keys=keys, adv_estimator="laser_de", config=config.algorithm
        )
        advantages = out.batch["advantages"]
        assert torch.count_nonzero(advantages[-3:]) == 0
        groups = {}
        for i, uid in enumerate(uids):
            groups.setdefault(uid, []).append(i)
        reference.step(
            [([lengths[i] for i in m], [scores[i] for i in m], [scores[i] >= 0.5 for i in m]) for m in groups.values()]
        )
        assert laser_state().updates == (1 if call < 4 else 2), f"call {call}"
        assert [None if c is None else c for c in laser_state().candidates] == [
            reference.candidates[level] for level in ("low", "medium", "high")
        ]
