"""The SmartThinker maths (shaping/smartthinker.py) against docs/algorithm.md and a plain per-group loop.

The same checks through the registered verl estimator (the production path) are in test_estimator_invariants.py.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from smartthinker_reference import reference_advantages, reference_group, rng_for

from smartthinker_verl.shaping import calibrate, group_ids_from_index, grpo_normalize

WORKED_LENGTHS = [1200, 1800, 2500, 3100, 4000, 5200, 6500, 8000]
WORKED_CORRECT = [1, 1, 1, 1, 0, 1, 0, 0]
WORKED_ADVANTAGES = [0.989204, 0.989204, 0.824165, 0.641017, -1.147863, 0.0, -1.147863, -1.147863]

OPTIONS = list(itertools.product(["reference", "argmax"], ["one_sided", "symmetric"], ["dynamic", "fixed"]))


# ------------------------------------------------------------------------------------------------------------------


def test_worked_example_matches_algorithm_md():
    lengths = torch.tensor(WORKED_LENGTHS)
    correct = torch.tensor(WORKED_CORRECT, dtype=torch.bool)
    groups = torch.zeros(8, dtype=torch.int64)
    result = calibrate(lengths, correct, groups)
    assert result.groups.optimal_length.item() == pytest.approx(1959.3229, abs=1e-4)
    assert result.groups.coefficient.item() == pytest.approx(1.428341e-4, rel=1e-6)
    assert result.shaped_reward.mean().item() == pytest.approx(0.537121, abs=1e-6)
    advantages = grpo_normalize(result.shaped_reward, groups, 1)
    assert advantages.tolist() == pytest.approx(WORKED_ADVANTAGES, abs=1e-6)


def _random_batch(rng: np.random.Generator, num_groups: int):
    sizes = rng.integers(1, 10, num_groups)
    lengths, correct, keys = [], [], []
    for g, size in enumerate(sizes):
        mode = rng.integers(0, 5)
        if mode == 0:  # few distinct lengths: ties and equal variances happen
            group_lengths = rng.choice([100, 200, 300], size)
        else:
            group_lengths = rng.integers(0, 4000, size)
        group_correct = rng.random(size) < rng.choice([0.0, 0.2, 0.5, 0.8, 1.0])
        lengths += group_lengths.tolist()
        correct += group_correct.tolist()
        keys += [f"prompt-{g}"] * int(size)
    order = rng.permutation(len(keys))  # interleave the groups
    return [lengths[i] for i in order], [bool(correct[i]) for i in order], [keys[i] for i in order]


@pytest.mark.parametrize("rule,penalty,coefficient", OPTIONS)
def test_vectorised_matches_per_group_loop_on_random_batches(rule, penalty, coefficient):
    rng = rng_for(rule, penalty, coefficient)
    fixed = 3e-4 if coefficient == "fixed" else None
    for _ in range(300):
        lengths, correct, keys = _random_batch(rng, int(rng.integers(1, 12)))
        ids, num_groups = group_ids_from_index(np.array(keys, dtype=object))
        result = calibrate(
            torch.tensor(lengths),
            torch.tensor(correct),
            ids,
            num_groups,
            optimal_length=rule,
            penalty=penalty,
            coefficient=coefficient,
            fixed_coefficient=fixed,
        )
        advantages = grpo_normalize(result.shaped_reward, ids, num_groups)
        for key in dict.fromkeys(keys):
            members = [i for i, k in enumerate(keys) if k == key]
            l_opt, coef, s, rewards = reference_group(
                [lengths[i] for i in members], [correct[i] for i in members], rule, penalty, coefficient, fixed
            )
            expected_adv = reference_advantages(rewards)
            assert result.optimal_length[members].tolist() == pytest.approx([l_opt] * len(members), rel=1e-9)
            assert result.coefficient[members[0]].item() == pytest.approx(coef, rel=1e-9, abs=1e-15)
            assert result.penalty[members].tolist() == pytest.approx(s, rel=1e-9, abs=1e-9)
            assert result.shaped_reward[members].tolist() == pytest.approx(rewards, rel=1e-9, abs=1e-12)
            assert advantages[members].tolist() == pytest.approx(expected_adv, rel=1e-7, abs=1e-7)


@pytest.mark.parametrize("rule", ["reference", "argmax"])
@pytest.mark.parametrize("penalty", ["one_sided", "symmetric"])
def test_dynamic_coefficient_invariants(rule, penalty):
    rng = np.random.default_rng(7)
    for _ in range(500):
        lengths, correct, keys = _random_batch(rng, 6)
        ids, num_groups = group_ids_from_index(keys)
        correct_t = torch.tensor(correct)
        result = calibrate(torch.tensor(lengths), correct_t, ids, num_groups, optimal_length=rule, penalty=penalty)
        advantages = grpo_normalize(result.shaped_reward, ids, num_groups)
        assert bool((advantages[correct_t] >= -1e-9).all()), "a correct response got a negative advantage"
        assert bool((advantages[~correct_t] <= 1e-9).all()), "an incorrect response got a positive advantage"
        for g in range(num_groups):
            in_group = ids == g
            k = int(correct_t[in_group].sum())
            size = int(in_group.sum())
            if size > 1 and k in (0, size):  # (a group of one keeps verl's convention: mean 0, std 1)
                assert bool((advantages[in_group] == 0).all()), "all-correct / all-wrong groups must get 0"
            if bool(result.groups.shaped[g]):
                most = torch.where(in_group & correct_t, result.penalty, torch.tensor(-1.0, dtype=torch.float64))
                tight = int(most.argmax())
                mean = result.shaped_reward[in_group].mean()
                assert result.shaped_reward[tight].item() == pytest.approx(mean.item(), abs=1e-12)


def test_single_correct_response_is_never_penalised():
    """The float32 trap of docs/algorithm.md section 6: l_opt must equal the lone correct length, with no penalty."""
    rng = np.random.default_rng(3)
    for _ in range(2000):
        lengths = torch.tensor(rng.integers(1, 8001, 8))
        correct = torch.zeros(8, dtype=torch.bool)
        correct[int(rng.integers(0, 8))] = True
        result = calibrate(lengths, correct, torch.zeros(8, dtype=torch.int64))
        assert bool((result.penalty == 0).all())
        assert result.groups.coefficient.item() == 0.0
        assert result.shaped_reward.tolist() == correct.double().tolist()


def test_correct_responses_sharing_one_length_are_never_penalised():
    lengths = torch.tensor([500, 500, 500, 120, 900, 3000])
    correct = torch.tensor([True, True, True, False, False, False])
    result = calibrate(lengths, correct, torch.zeros(6, dtype=torch.int64))
    assert result.groups.optimal_length.item() == pytest.approx(500)
    assert bool((result.penalty == 0).all())


def test_uneven_interleaved_groups_and_singletons():
    # group a: 3 responses, group b: 1 response (size-1), group c: 5 responses, interleaved
    keys = ["a", "c", "b", "a", "c", "c", "a", "c", "c"]
    lengths = torch.tensor([100, 50, 70, 300, 80, 400, 200, 90, 60])
    correct = torch.tensor([True, True, True, True, False, True, False, False, True])
    ids, num_groups = group_ids_from_index(keys)
    assert num_groups == 3
    result = calibrate(lengths, correct, ids, num_groups)
    assert result.batch.size.tolist() == [3, 5, 1]
    assert result.batch.num_correct.tolist() == [2, 3, 1]
    advantages = grpo_normalize(result.shaped_reward, ids, num_groups)
    singleton = keys.index("b")
    # verl's convention for a group of one: mean 0, std 1 -> advantage = reward / (1 + eps)
    assert advantages[singleton].item() == pytest.approx(1.0 / (1 + 1e-6))
    assert result.penalty[singleton].item() == 0.0


def test_norm_by_std_off_is_the_centered_reward():
    lengths = torch.tensor(WORKED_LENGTHS)
    correct = torch.tensor(WORKED_CORRECT, dtype=torch.bool)
    groups = torch.zeros(8, dtype=torch.int64)
    result = calibrate(lengths, correct, groups)
    centered = grpo_normalize(result.shaped_reward, groups, 1, norm_by_std=False)
    assert torch.allclose(centered, result.shaped_reward - result.shaped_reward.mean())


def test_symmetric_penalises_short_correct_responses_too():
    lengths = torch.tensor(WORKED_LENGTHS)
    correct = torch.tensor(WORKED_CORRECT, dtype=torch.bool)
    result = calibrate(lengths, correct, torch.zeros(8, dtype=torch.int64), penalty="symmetric")
    assert result.penalty[0].item() == pytest.approx(1959.3229 - 1200, abs=1e-3)


def test_fixed_coefficient_leaves_uniform_groups_alone():
    lengths = torch.tensor([100, 200, 300, 400])
    result = calibrate(
        lengths,
        torch.ones(4, dtype=torch.bool),
        torch.zeros(4, dtype=torch.int64),
        coefficient="fixed",
        fixed_coefficient=1e-3,
    )
    assert result.groups.coefficient.item() == 0.0
    assert result.shaped_reward.tolist() == [1.0] * 4


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"lengths": torch.tensor([1.0, float("nan")])}, "finite"),
        ({"lengths": torch.tensor([1.0, -3.0])}, "non-negative"),
        ({"correct": torch.tensor([True])}, "same length"),
    ],
)
def test_bad_inputs_raise_clear_errors(kwargs, message):
    args = {
        "lengths": torch.tensor([1.0, 2.0]),
        "correct": torch.tensor([True, False]),
        "group_ids": torch.zeros(2, dtype=torch.int64),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        calibrate(args["lengths"], args["correct"], args["group_ids"])


def test_empty_group_id_is_refused():
    with pytest.raises(ValueError, match="at least one response"):
        calibrate(torch.tensor([1.0]), torch.tensor([True]), torch.tensor([1]), num_groups=2)


def test_group_ids_follow_first_appearance_and_refuse_missing_keys():
    ids, count = group_ids_from_index(np.array(["b", "a", "b", "c", "a"], dtype=object))
    assert ids.tolist() == [0, 1, 0, 2, 1] and count == 3
    with pytest.raises(ValueError, match="missing group key"):
        group_ids_from_index(np.array(["a", None], dtype=object))
