"""SmartThinker's invariants on the production path: the estimator registered in verl, called as verl calls it.

Every check runs with the paper's 1/0 scores and with partial-credit scores (any float a user's scorer returns),
against the independent per-group reference in ``smartthinker_reference.py``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import verl  # noqa: F401  (loads the plugin through its entry point, as in every verl process)
from omegaconf import OmegaConf
from smartthinker_reference import reference_advantages, reference_group, rng_for
from verl import DataProto
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage, get_adv_estimator_fn
from verl.trainer.ppo.ray_trainer import compute_advantage

OPTIONS = list(itertools.product(["reference", "argmax"], ["one_sided", "symmetric"], ["dynamic", "fixed"]))
FIXED = 3e-4


def algorithm_config(norm=True, **smartthinker):
    return OmegaConf.create(
        {
            "adv_estimator": "smartthinker",
            "norm_adv_by_std_in_grpo": norm,
            "use_kl_in_reward": False,
            "smartthinker": smartthinker,
        }
    )


def verl_batch(lengths, scores, uids):
    """Right-padded responses with the score on the last valid token, as verl's trainer holds them."""
    width = max(lengths) + 2
    lengths_t = torch.tensor(lengths)
    mask = (torch.arange(width)[None] < lengths_t[:, None]).to(torch.int64)
    rewards = torch.zeros(len(lengths), width)
    rewards[torch.arange(len(lengths)), lengths_t - 1] = torch.tensor(scores, dtype=torch.float32)
    return rewards, mask, np.array(uids, dtype=object)


def run_estimator(lengths, scores, uids, config):
    rewards, mask, index = verl_batch(lengths, scores, uids)
    advantages, returns = get_adv_estimator_fn("smartthinker")(
        token_level_rewards=rewards, response_mask=mask, index=index, config=config
    )
    assert torch.equal(advantages, advantages[:, :1] * mask), "advantage must be constant over the valid tokens"
    return advantages[:, 0].double()


def random_batch(rng: np.random.Generator, partial_credit: bool):
    """Interleaved groups of 1-9 responses; lengths >= 1 (a verl response has at least its EOS token)."""
    lengths, scores, uids = [], [], []
    for g in range(int(rng.integers(1, 10))):
        size = int(rng.integers(1, 10))
        if rng.random() < 0.2:  # few distinct lengths: ties and equal variances happen
            group_lengths = rng.choice([100, 200, 300], size)
        else:
            group_lengths = rng.integers(1, 4000, size)
        accuracy = rng.choice([0.0, 0.2, 0.5, 0.8, 1.0])
        correct = rng.random(size) < accuracy
        if partial_credit:  # a format bonus, partial answers, graded credit: any value in [0, 1]
            group_scores = np.where(correct, rng.uniform(0.5, 1.0, size), rng.uniform(0.0, 0.5, size))
            group_scores = np.round(group_scores, 2)
        else:
            group_scores = correct.astype(float)
        lengths += group_lengths.tolist()
        scores += group_scores.tolist()
        uids += [f"prompt-{g}"] * size
    order = rng.permutation(len(uids))
    return [lengths[i] for i in order], [scores[i] for i in order], [uids[i] for i in order]


def test_the_partial_credit_group_of_the_bug_report():
    """Lengths [2, 4, 6, 8], scores [1.0, 0.6, 0.0, 0.0]. By hand: correct = [1, 1, 0, 0] (threshold 0.5);
    m1 = 5, v1 = 5, m2 = 3, v2 = 1 -> l_opt = (5*3 - 1*5) / (5 - 1) = 2.5; s = [0, 1.5, 0, 0];
    coef = p_err / (max s - mean s) = 0.5 / (1.5 - 0.375) = 4/9; r = [1, 0.6 - 2/3, 0, 0] = [1, -1/15, 0, 0];
    mean r = 7/30; std (N - 1) = 0.512077; A = [1.497167, -0.585849, -0.455659, -0.455659].
    (The clamp this replaced turned -0.585849 into 0.)"""
    advantages = run_estimator([2, 4, 6, 8], [1.0, 0.6, 0.0, 0.0], ["q"] * 4, algorithm_config())
    assert advantages.tolist() == pytest.approx([1.497167, -0.585849, -0.455659, -0.455659], abs=1e-5)
    assert advantages.sum().item() == pytest.approx(0.0, abs=1e-6)
    _, _, _, rewards = reference_group([2, 4, 6, 8], [1.0, 0.6, 0.0, 0.0], "reference", "one_sided", "dynamic")
    assert advantages.tolist() == pytest.approx(reference_advantages(rewards), abs=1e-5)


@pytest.mark.parametrize("partial_credit", [False, True], ids=["1/0 scores", "partial credit"])
@pytest.mark.parametrize("norm", [True, False], ids=["std", "no-std"])
@pytest.mark.parametrize("rule,penalty,coefficient", OPTIONS)
def test_estimator_equals_the_per_group_loop(rule, penalty, coefficient, norm, partial_credit):
    rng = rng_for(rule, penalty, coefficient, norm, partial_credit)
    options = {"optimal_length": rule, "penalty": penalty, "coefficient": coefficient}
    if coefficient == "fixed":
        options["fixed_coefficient"] = FIXED
    config = algorithm_config(norm, **options)
    for _ in range(60):
        lengths, scores, uids = random_batch(rng, partial_credit)
        advantages = run_estimator(lengths, scores, uids, config)
        for uid in dict.fromkeys(uids):
            members = [i for i, u in enumerate(uids) if u == uid]
            scores_g = [float(np.float32(scores[i])) for i in members]  # verl holds scores in float32
            _, _, _, rewards = reference_group(
                [lengths[i] for i in members], scores_g, rule, penalty, coefficient, FIXED
            )
            expected = reference_advantages(rewards, norm_by_std=norm)
            got = advantages[members]
            assert got.tolist() == pytest.approx(expected, rel=1e-4, abs=2e-5)
            if len(members) > 1:  # every group's advantages sum to zero (std-normalised or not)
                assert got.sum().item() == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("norm", [True, False], ids=["std", "no-std"])
@pytest.mark.parametrize("rule,penalty", list(itertools.product(["reference", "argmax"], ["one_sided", "symmetric"])))
def test_binary_scores_keep_every_correct_response_at_or_above_the_mean(rule, penalty, norm):
    """1/0 scores, dynamic coefficient: within a group correct >= incorrect, correct >= 0 exactly (the pivot
    response is exactly 0, not rounding noise below it), incorrect <= 0."""
    rng = np.random.default_rng(17)
    config = algorithm_config(norm, optimal_length=rule, penalty=penalty)
    for _ in range(150):
        lengths, scores, uids = random_batch(rng, partial_credit=False)
        advantages = run_estimator(lengths, scores, uids, config)
        correct = torch.tensor(scores) >= 0.5
        for uid in dict.fromkeys(uids):
            group = torch.tensor([u == uid for u in uids])
            if int(group.sum()) == 1:
                continue  # verl's convention for a group of one: mean 0, std 1
            good, bad = advantages[group & correct], advantages[group & ~correct]
            assert bool((good >= 0).all()), f"a correct response got a negative advantage: {good.tolist()}"
            assert bool((bad <= 0).all())
            if len(good) and len(bad):
                assert good.min() >= bad.max()


@pytest.mark.parametrize("partial_credit", [False, True], ids=["1/0 scores", "partial credit"])
@pytest.mark.parametrize("norm", [True, False], ids=["std", "no-std"])
def test_unshaped_batches_equal_verls_grpo(norm, partial_credit):
    """No group with a length spread among its correct responses: SmartThinker is verl's GRPO. Bit for bit with
    1/0 scores (every sum is exact); with other scores up to float32 summation order (verl sums each group in a
    Python loop, the estimator with one segment sum)."""
    rng = np.random.default_rng(23)
    for trial in range(100):
        lengths, scores, uids = random_batch(rng, partial_credit)
        if trial % 2:  # every response of the same length: nothing to penalise
            lengths = [37] * len(lengths)
        else:  # every group all correct or all wrong
            verdict = {u: float(rng.random() < 0.5) for u in set(uids)}
            scale = [0.5 + 0.5 * s if partial_credit else 1.0 for s in scores]
            scores = [verdict[u] * c for u, c in zip(uids, scale, strict=True)]
        rewards, mask, index = verl_batch(lengths, scores, uids)
        ours, _ = get_adv_estimator_fn("smartthinker")(
            token_level_rewards=rewards, response_mask=mask, index=index, config=algorithm_config(norm)
        )
        theirs, _ = compute_grpo_outcome_advantage(rewards, mask, index, norm_adv_by_std_in_grpo=norm)
        if partial_credit:
            torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
        else:
            assert torch.equal(ours, theirs)


def test_partial_credit_through_verls_compute_advantage():
    """The bug report's group once more, through verl's own compute_advantage on a DataProto."""
    rewards, mask, index = verl_batch([2, 4, 6, 8], [1.0, 0.6, 0.0, 0.0], ["q"] * 4)
    data = DataProto.from_dict(
        tensors={"token_level_rewards": rewards, "response_mask": mask}, non_tensors={"uid": index}
    )
    out = compute_advantage(data, adv_estimator="smartthinker", config=algorithm_config())
    assert out.batch["advantages"][:, 0].tolist() == pytest.approx(
        [1.497167, -0.585849, -0.455659, -0.455659], abs=1e-5
    )
