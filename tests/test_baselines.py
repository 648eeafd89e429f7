"""The baseline length rewards (shorter_better, efficient_reasoning, kimi_length, laser_de): worked examples by hand,
the vectorised code and the registered verl estimator against independent per-group loops
(``baselines_reference.py``) on random interleaved uneven batches, their metrics through verl's Tracking, and the
rule for options of a method that is not selected."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import verl  # noqa: F401  (loads the plugin through its entry point, as in every verl process)
from baselines_reference import LaserDE, efficient_reasoning, kimi_length, shorter_better
from omegaconf import OmegaConf
from smartthinker_reference import reference_advantages
from verl import DataProto
from verl.trainer.ppo.core_algos import get_adv_estimator_fn
from verl.trainer.ppo.ray_trainer import compute_advantage
from verl.utils.tracking import Tracking

from smartthinker_verl import metrics
from smartthinker_verl.config import SmartThinkerConfigError, SmartThinkerError
from smartthinker_verl.shaping import METHODS, GroupedBatch, UnknownMethodError, get_method, group_ids_from_index
from smartthinker_verl.shaping import laser_de as laser_de_module

BASELINES = ("shorter_better", "efficient_reasoning", "kimi_length", "laser_de")
#: Small LASER-DE candidate grid for short test responses.
LASER_SMALL = {"length_lower_bound": 100, "length_interval": 100, "length_upper_bound": 400, "update_interval": 2}


def batch_of(lengths, scores, groups=None):
    groups = [0] * len(lengths) if groups is None else groups
    return GroupedBatch.build(
        torch.tensor(lengths), torch.tensor(scores, dtype=torch.float64), torch.tensor(groups, dtype=torch.int64)
    )


def algorithm_config(name, norm=True, **options):
    return OmegaConf.create(
        {"adv_estimator": name, "norm_adv_by_std_in_grpo": norm, "use_kl_in_reward": False, name: options}
    )


def verl_batch(lengths, scores, uids):
    """Right-padded responses with the score on the last valid token, as verl's trainer holds them."""
    width = max(lengths) + 2
    lengths_t = torch.tensor(lengths)
    mask = (torch.arange(width)[None] < lengths_t[:, None]).to(torch.int64)
    rewards = torch.zeros(len(lengths), width)
    rewards[torch.arange(len(lengths)), lengths_t - 1] = torch.tensor(scores, dtype=torch.float32)
    return rewards, mask, np.array(uids, dtype=object)


def run_estimator(name, lengths, scores, uids, config):
    rewards, mask, index = verl_batch(lengths, scores, uids)
    advantages, _ = get_adv_estimator_fn(name)(
        token_level_rewards=rewards, response_mask=mask, index=index, config=config
    )
    assert torch.equal(advantages, advantages[:, :1] * mask), "advantage must be constant over the valid tokens"
    return advantages[:, 0].double()


@pytest.fixture(autouse=True)
def fresh_laser_state():
    laser_de_module.STATE.reset()
    yield
    laser_de_module.STATE.reset()


# ------------------------------------------------------------------------------------------------ worked examples


def test_shorter_better_worked_example():
    """Lengths [100, 200, 300, 400], correct [0, 1, 1, 0], alpha 2, beta 0.001. SOL = shortest correct = 200;
    |l - SOL| = [100, 0, 100, 200]; r = [0 - 0.1, 2 - 0, 2 - 0.1, 0 - 0.2] = [-0.1, 2.0, 1.9, -0.2].
    A second group with no correct answer, lengths [10, 20, 60]: SOL = mean = 30, r = -0.001 * [20, 10, 30].
    GRPO on the first: mean 0.9, deviations [-1.0, 1.1, 1.0, -1.1], unbiased std sqrt(4.42 / 3) = 1.213809,
    A = [-0.823852, 0.906237, 0.823852, -0.906237]."""
    method = get_method("shorter_better")
    batch = batch_of([100, 200, 300, 400, 10, 20, 60], [0, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1])
    out = method.shape(batch, method.options_type())
    assert out.detail["sol"].tolist() == pytest.approx([200.0, 30.0])
    assert out.rewards.tolist() == pytest.approx([-0.1, 2.0, 1.9, -0.2, -0.02, -0.01, -0.03], abs=1e-12)
    advantages = run_estimator(
        "shorter_better", [100, 200, 300, 400], [0, 1, 1, 0], ["q"] * 4, algorithm_config("shorter_better")
    )
    assert advantages.tolist() == pytest.approx([-0.823852, 0.906237, 0.823852, -0.906237], abs=1e-5)


def test_efficient_reasoning_worked_example():
    """Lengths [100, 200, 300, 400], correct [1, 1, 1, 0], alpha 0.1. Correct lengths: mean 200, population std
    sqrt(20000 / 3) = 81.649658; z = [-1.224745, 0, 1.224745]; sigmoid(z) = [0.227103, 0.5, 0.772897];
    r = 1 - 0.1 * sigmoid = [0.977290, 0.95, 0.922710] and 0 for the wrong answer.
    One correct response only (std 0): its deviation is defined as 0, r = 1 - 0.1 / 2 = 0.95."""
    method = get_method("efficient_reasoning")
    out = method.shape(batch_of([100, 200, 300, 400], [1, 1, 1, 0]), method.options_type())
    assert out.rewards.tolist() == pytest.approx([0.977290, 0.95, 0.922710, 0.0], abs=1e-6)
    single = method.shape(batch_of([100, 700], [0, 1]), method.options_type())
    assert single.rewards.tolist() == pytest.approx([0.0, 0.95])


def test_kimi_length_worked_example():
    """Lengths [100, 200, 300, 500], scores [1, 0, 1, 0]; min 100, max 500: lambda = 0.5 - (l - 100) / 400 =
    [0.5, 0.25, 0.0, -0.5]; correct responses add lambda, wrong ones min(0, lambda): [0.5, 0, 0, -0.5];
    r = [1.5, 0.0, 1.0, -0.5]. A group of equal lengths gets lambda 0: r = score."""
    method = get_method("kimi_length")
    out = method.shape(
        batch_of([100, 200, 300, 500, 50, 50], [1, 0, 1, 0, 1, 0], [0, 0, 0, 0, 1, 1]), method.options_type()
    )
    assert out.rewards.tolist() == pytest.approx([1.5, 0.0, 1.0, -0.5, 1.0, 0.0])


def test_laser_de_worked_example():
    """Candidates 100, 200, 300, 400; one group of 6 (n = 6: the minimal correct counts are low 1, medium 2,
    high 4). Lengths [100, 150, 250, 350, 380, 400], correct [1, 1, 1, 1, 0, 0]: accuracy 4/6 >= 2/3, level high.
    Coverage: L=100 -> 1/6, floor(4/6) = 0; L=200 -> 2/6, floor(8/6) = 1 >= 1: the high target is 200. Low and
    medium have no responses: their targets fall back to the longest response, 400.
    r: correct and <= 200 -> 1 + 0.5 (two); correct and longer -> 1 (two); wrong and > 200, not truncated ->
    0 + 0.5 (exploration). r = [1.5, 1.5, 1.0, 1.0, 0.5, 0.5]. With truncation_length 400 the 400-token wrong
    answer is truncated and gets no exploration bonus: its r is 0."""
    method = get_method("laser_de")
    options = method.options_type(**LASER_SMALL)
    lengths, scores = [100, 150, 250, 350, 380, 400], [1, 1, 1, 1, 0, 0]
    out = method.shape(batch_of(lengths, scores), options, state=laser_de_module.LaserDEState())
    assert out.detail["targets"].tolist() == [400.0, 400.0, 200.0]
    assert out.rewards.tolist() == [1.5, 1.5, 1.0, 1.0, 0.5, 0.5]
    truncating = method.options_type(**LASER_SMALL, truncation_length=400)
    out = method.shape(batch_of(lengths, scores), truncating, state=laser_de_module.LaserDEState())
    assert out.rewards.tolist() == [1.5, 1.5, 1.0, 1.0, 0.5, 0.0]


# --------------------------------------------------------------------------- vectorised == per-group reference


def random_batch(rng: np.random.Generator, partial_credit: bool = False):
    """Interleaved groups of 1-9 responses; lengths >= 1 (a verl response has at least its EOS token)."""
    lengths, scores, uids = [], [], []
    for g in range(int(rng.integers(1, 10))):
        size = int(rng.integers(1, 10))
        if rng.random() < 0.2:  # ties, equal lengths, flat groups
            group_lengths = rng.choice([100, 200, 300], size)
        else:
            group_lengths = rng.integers(1, 450, size)
        correct = rng.random(size) < rng.choice([0.0, 0.2, 0.5, 0.8, 1.0])
        if partial_credit:
            group_scores = np.round(np.where(correct, rng.uniform(0.5, 1, size), rng.uniform(0, 0.5, size)), 2)
        else:
            group_scores = correct.astype(float)
        lengths += group_lengths.tolist()
        scores += group_scores.tolist()
        uids += [f"prompt-{g}"] * size
    order = rng.permutation(len(uids))
    return [lengths[i] for i in order], [scores[i] for i in order], [uids[i] for i in order]


def grouped(lengths, scores, uids):
    """{uid: (member indices, lengths, scores, correct)} in first-appearance order."""
    out = {}
    for uid in dict.fromkeys(uids):
        members = [i for i, u in enumerate(uids) if u == uid]
        group_scores = [float(np.float32(scores[i])) for i in members]  # verl holds scores in float32
        out[uid] = (members, [lengths[i] for i in members], group_scores, [s >= 0.5 for s in group_scores])
    return out


def reference_rewards(name, groups, laser=None):
    """{uid: rewards} from the per-group references."""
    if name == "laser_de":
        values = laser.step([(lengths, scores, correct) for _, lengths, scores, correct in groups.values()])
        return dict(zip(groups, values, strict=True))
    out = {}
    for uid, (_, lengths, scores, correct) in groups.items():
        if name == "shorter_better":
            out[uid] = shorter_better(lengths, correct)
        elif name == "efficient_reasoning":
            out[uid] = efficient_reasoning(lengths, correct)
        else:
            out[uid] = kimi_length(lengths, scores, correct)
    return out


@pytest.mark.parametrize("partial_credit", [False, True], ids=["1/0 scores", "partial credit"])
@pytest.mark.parametrize("name", BASELINES)
def test_vectorised_rewards_equal_the_per_group_loop(name, partial_credit):
    rng = np.random.default_rng(abs(hash((name, partial_credit, "vec"))) % 2**32)
    method = get_method(name)
    options = method.options_type(**(LASER_SMALL if name == "laser_de" else {}))
    state, laser = laser_de_module.LaserDEState(), LaserDE(lower=100, interval=100, upper=400, every=2)
    for _ in range(80):
        lengths, scores, uids = random_batch(rng, partial_credit)
        groups = grouped(lengths, scores, uids)
        ids, num_groups = group_ids_from_index(np.array(uids, dtype=object))
        scores32 = torch.tensor(scores, dtype=torch.float32)
        batch = GroupedBatch.build(torch.tensor(lengths), scores32, ids, num_groups)
        out = method.shape(batch, options, state=state) if name == "laser_de" else method.shape(batch, options)
        expected = reference_rewards(name, groups, laser)
        for uid, (members, *_rest) in groups.items():
            assert out.rewards[members].tolist() == pytest.approx(expected[uid], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("norm", [True, False], ids=["std", "no-std"])
@pytest.mark.parametrize("name", BASELINES)
def test_registered_estimator_equals_the_per_group_loop(name, norm):
    """As verl calls it: registry lookup, token-level tensors, uid index; GRPO on the reference rewards."""
    rng = np.random.default_rng(abs(hash((name, norm, "est"))) % 2**32)
    config = algorithm_config(name, norm, **(LASER_SMALL if name == "laser_de" else {}))
    laser = LaserDE(lower=100, interval=100, upper=400, every=2)
    for _ in range(40):
        lengths, scores, uids = random_batch(rng, partial_credit=bool(rng.random() < 0.5))
        advantages = run_estimator(name, lengths, scores, uids, config)
        groups = grouped(lengths, scores, uids)
        expected = reference_rewards(name, groups, laser)
        for uid, (members, *_rest) in groups.items():
            want = reference_advantages(expected[uid], norm_by_std=norm)
            assert advantages[members].tolist() == pytest.approx(want, rel=1e-4, abs=2e-5)


def test_baselines_through_verls_compute_advantage():
    rewards, mask, index = verl_batch([100, 200, 300, 400], [0, 1, 1, 0], ["q"] * 4)
    data = DataProto.from_dict(
        tensors={"token_level_rewards": rewards, "response_mask": mask}, non_tensors={"uid": index}
    )
    out = compute_advantage(data, adv_estimator="shorter_better", config=algorithm_config("shorter_better"))
    assert out.batch["advantages"][:, 0].tolist() == pytest.approx([-0.823852, 0.906237, 0.823852, -0.906237], abs=1e-5)


# ------------------------------------------------------------------------------------------------------ metrics


@pytest.mark.parametrize("name", BASELINES)
def test_metrics_reach_verls_file_logger(name, tmp_path, monkeypatch):
    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(tmp_path / "metrics.jsonl"))
    monkeypatch.chdir(tmp_path)
    metrics.PENDING.pop()
    config = algorithm_config(name, **(LASER_SMALL if name == "laser_de" else {}))
    run_estimator(name, [100, 200, 300, 400, 50, 60], [0, 1, 1, 0, 1, 1], ["a"] * 4 + ["b"] * 2, config)
    tracking = Tracking(project_name="p", experiment_name="e", default_backend=["file"])
    tracking.log(data={"actor/loss": 1.0}, step=1)
    tracking.finish()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines() if line.strip()]
    logged = rows[0]["data"]
    for metric in METHODS[name].metric_names:
        assert f"{name}/{metric}" in logged, f"{name}/{metric} missing from the logged step"
    assert logged[f"{name}/accuracy/mean"] == pytest.approx(4 / 6)


# ------------------------------------------------------------------------------------------ options and names


def test_another_methods_changed_option_is_an_error_naming_the_fix():
    config = algorithm_config("smartthinker")
    config.shorter_better = {"alpha": 3.0}
    with pytest.raises(SmartThinkerConfigError) as caught:
        run_estimator("smartthinker", [10, 20], [1, 0], ["q", "q"], config)
    message = str(caught.value)
    assert "algorithm.shorter_better.alpha=3.0" in message and "algorithm.adv_estimator=shorter_better" in message
    config = algorithm_config("shorter_better")
    config.smartthinker = {"penalty": "symmetric"}
    with pytest.raises(SmartThinkerConfigError, match="algorithm.smartthinker.penalty='symmetric'"):
        run_estimator("shorter_better", [10, 20], [1, 0], ["q", "q"], config)


def test_another_methods_block_holding_only_defaults_is_fine():
    config = algorithm_config("kimi_length")
    config.smartthinker = {"penalty": "one_sided", "coefficient": "dynamic", "fixed_coefficient": None}
    config.laser_de = {"alpha": 0.5, "length_lower_bound": 4096, "truncation_length": None}
    run_estimator("kimi_length", [10, 20], [1, 0], ["q", "q"], config)


def test_unknown_method_name_lists_the_known_ones():
    with pytest.raises(UnknownMethodError) as caught:
        get_method("shorterbetter")
    assert isinstance(caught.value, SmartThinkerError) and "shorter_better" in str(caught.value)
    assert "algorithm.adv_estimator" in str(caught.value)


@pytest.mark.parametrize(
    "name,options,message",
    [
        ("shorter_better", {"beta": -1}, "algorithm.shorter_better.beta=-1.0 must be >= 0"),
        ("efficient_reasoning", {"alpha": 1.5}, "algorithm.efficient_reasoning.alpha=1.5 must lie in [0, 1)"),
        ("kimi_length", {"weight": "x"}, "algorithm.kimi_length.weight='x' is not a number"),
        ("laser_de", {"length_upper_bound": 10}, "algorithm.laser_de.length_upper_bound=10 is below"),
        ("laser_de", {"speed": 1}, "unknown key(s) algorithm.laser_de.speed"),
    ],
)
def test_bad_options_name_the_key(name, options, message):
    with pytest.raises(SmartThinkerConfigError) as caught:
        METHODS[name].options_type.from_mapping(options)
    assert message in str(caught.value)
