"""The baseline length rewards (shorter_better, efficient_reasoning, kimi_length, laser_de): worked examples by hand,
the vectorised code and the registered verl estimator against independent per-group loops
(``baselines_reference.py``) on random interleaved uneven batches, their metrics through verl's Tracking, and the
rule for options of a method that is not selected."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch
import verl  # noqa: F401  (loads the plugin through its entry point, as in every verl process)
from baselines_reference import LaserDE, efficient_reasoning, kimi_length, shorter_better
from omegaconf import OmegaConf
from smartthinker_reference import reference_advantages, rng_for
from verl import DataProto
from verl.trainer.ppo.core_algos import get_adv_estimator_fn
from verl.trainer.ppo.ray_trainer import compute_advantage
from verl.utils.tracking import Tracking

from smartthinker_verl import shaping_state
from smartthinker_verl import step_metrics as metrics
from smartthinker_verl.errors import ConfigError, SmartThinkerError
from smartthinker_verl.options import MethodOptions, RunContext
from smartthinker_verl.shaping import (
    METHODS,
    GroupedBatch,
    ShapingOutput,
    get_method,
    group_ids_from_index,
    shaping_method,
)
from smartthinker_verl.shaping import laser_de as laser_de_module

BASELINES = ("shorter_better", "efficient_reasoning", "kimi_length", "laser_de")
#: Small LASER-DE candidate grid for short test responses.
LASER_SMALL = {"length_lower_bound": 100, "length_interval": 100, "length_upper_bound": 400, "update_interval": 2}
#: The response limit of the test runs (data.max_response_length): a response this long is truncated.
RESPONSE_LIMIT = 450


def batch_of(lengths, scores, groups=None):
    groups = [0] * len(lengths) if groups is None else groups
    return GroupedBatch.build(
        torch.tensor(lengths), torch.tensor(scores, dtype=torch.float64), torch.tensor(groups, dtype=torch.int64)
    )


def algorithm_config(name, norm=True, **options):
    """verl's ``config.algorithm`` as the trainer hands it over, with the run's response limit in ``run_context``
    (what the recipe yaml fills in)."""
    algorithm = {"adv_estimator": name, "norm_adv_by_std_in_grpo": norm, "use_kl_in_reward": False, name: options}
    return OmegaConf.create({**algorithm, "run_context": {"response_limit": RESPONSE_LIMIT}})


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
    shaping_state.reset_states()
    yield
    shaping_state.reset_states()


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


def laser_step(state, options, groups):
    """One LASER-DE step on ``groups`` (a list of (lengths, scores)); returns its ShapingOutput."""
    lengths = [x for group, _ in groups for x in group]
    scores = [x for _, group in groups for x in group]
    ids = [g for g, (group, _) in enumerate(groups) for _ in group]
    return get_method("laser_de").shape(batch_of(lengths, scores, ids), options, state=state)


def test_laser_de_worked_example_over_three_steps():
    """Candidates range(100, 250 + 100, 100) = 100, 200, 300 (the grid ends at the first value >= the upper bound 250);
    groups of n = 6, so a band's minimal group keeps 1 (low), floor(6/3) = 2 (medium), floor(12/3) = 4 (high) correct
    answers; a band's target is the first L with floor(coverage * m) >= 1, where coverage counts ALL the band's
    responses of length <= L; a band without one takes the current batch's longest response. Update every 2 steps
    (steps 1 and 3 here); truncation at the response limit 400; alpha 0.5.

    Step 1 (update). One group, lengths [100, 150, 250, 350, 380, 400], correct [1, 1, 1, 1, 0, 0]: accuracy 4/6, high.
    Coverage at 100 is 1/6 (floor(4/6) = 0), at 200 is 2/6 (floor(8/6) = 1): high -> 200. Low and medium have no
    responses: the batch's longest, 400. r = [1.5, 1.5, 1, 1, 0.5, 0]: two concise right answers; the 380-token wrong
    one explores (> 200, < 400); the 400-token wrong one is truncated and earns nothing.

    Step 2 (no update). Medium group [50, 120, 180, 220, 260, 300], correct [1, 1, 0, 0, 0, 0] (2/6) and low group
    [90, 110, 130, 140, 150, 390], correct only the 390 one (1/6). Their bands have no candidate, so both take this
    batch's longest, 390 (not step 1's 400). r = [1.5, 1.5, 0, 0, 0, 0] and [0, 0, 0, 0, 0, 1.5].

    Step 3 (update, from steps 2 and 3). High group [60, 70, 80, 90, 95, 99], all right; medium group
    [100, 200, 300, 310, 320, 330], right [1, 1, 1, 0, 0, 0] (3/6). High: coverage 6/6 at 100 -> 100. Medium (12
    responses): at 100 2/12 -> floor(1/3) = 0; at 200 5/12 -> floor(5/6) = 0; at 300 9/12 -> floor(3/2) = 1: 300.
    Low (step 2's 6 responses): coverage 1/6, 5/6, 5/6, never 1: the batch's longest, 330.
    r = [1.5] * 6 and [1.5, 1.5, 1.5, 0.5, 0.5, 0.5] (the three wrong answers beyond 300 explore)."""
    options = get_method("laser_de").options_type(
        length_lower_bound=100, length_interval=100, length_upper_bound=250, update_interval=2, truncation_length=400
    )
    assert options.thresholds() == [100, 200, 300]
    state = laser_de_module.LaserDEState()
    out = laser_step(state, options, [([100, 150, 250, 350, 380, 400], [1, 1, 1, 1, 0, 0])])
    assert out.detail["targets"].tolist() == [400.0, 400.0, 200.0] and out.detail["updated"]
    assert out.rewards.tolist() == [1.5, 1.5, 1.0, 1.0, 0.5, 0.0]
    out = laser_step(
        state,
        options,
        [([50, 120, 180, 220, 260, 300], [1, 1, 0, 0, 0, 0]), ([90, 110, 130, 140, 150, 390], [0, 0, 0, 0, 0, 1])],
    )
    assert out.detail["targets"].tolist() == [390.0, 390.0, 200.0] and not out.detail["updated"]
    assert out.rewards.tolist() == [1.5, 1.5, 0, 0, 0, 0] + [0, 0, 0, 0, 0, 1.5]
    out = laser_step(
        state,
        options,
        [([60, 70, 80, 90, 95, 99], [1] * 6), ([100, 200, 300, 310, 320, 330], [1, 1, 1, 0, 0, 0])],
    )
    assert out.detail["targets"].tolist() == [330.0, 300.0, 100.0] and out.detail["updated"]
    assert out.rewards.tolist() == [1.5] * 6 + [1.5, 1.5, 1.5, 0.5, 0.5, 0.5]


def test_laser_de_coverage_counts_every_response_of_the_band():
    """One medium group (4 of 8 right): lengths [3000, 5000, 7000, 9000] right, [1000, 2000, 4000, 6000] wrong; the
    authors' defaults (candidates 4096, 5120, ..., 16384). Coverage at 4096 is 4/8 (3000, 1000, 2000, 4000), and
    floor(4/8 * floor(8/3)) = 1: T = 4096. The 3000-token right answer earns the bonus, and so does the 6000-token
    wrong one (exploration). Counting only right answers within L (coverage 1/8 at 4096) would need L = 9216 and
    give no length signal at all."""
    options = get_method("laser_de").options_type(length_upper_bound=16384, truncation_length=16384)
    lengths = [3000, 5000, 7000, 9000, 1000, 2000, 4000, 6000]
    out = get_method("laser_de").shape(
        batch_of(lengths, [1, 1, 1, 1, 0, 0, 0, 0]), options, state=laser_de_module.LaserDEState()
    )
    assert out.detail["targets"][1].item() == 4096.0
    assert out.rewards.tolist() == [1.5, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.5]


def test_laser_de_grid_ends_at_the_first_candidate_past_the_upper_bound():
    options = get_method("laser_de").options_type(length_upper_bound=8000, truncation_length=8000)
    assert options.thresholds() == [4096, 5120, 6144, 7168, 8192]


def test_laser_de_defaults_to_the_runs_response_limit():
    """length_upper_bound and truncation_length left null take the run's response limit, which the recipe yaml
    interpolates from rollout.response_length into algorithm.run_context; a config without one is an error naming
    the fix."""
    from smartthinker_verl.launch.compose import compose_config

    method = get_method("laser_de")
    config = compose_config(["actor_rollout_ref.rollout.response_length=6000", "algorithm.adv_estimator=laser_de"])
    options = method.options_type.from_algorithm_config(config.algorithm).for_run(
        RunContext.from_algorithm(config.algorithm)
    )
    assert (options.length_upper_bound, options.truncation_length) == (6000, 6000)
    assert options.thresholds()[-1] == 6144
    alone = OmegaConf.create({"adv_estimator": "laser_de", "use_kl_in_reward": False})
    with pytest.raises(ConfigError, match="algorithm.laser_de.truncation_length=8000"):
        run_estimator("laser_de", [10, 20], [1, 0], ["q", "q"], alone)


def test_laser_de_does_not_reward_truncated_wrong_answers_through_verl():
    """Through the registered estimator, with the run's limit (data.max_response_length = 450) as the default
    truncation: a high group (4 of 6 right) whose target is 100; the 449-token wrong answer explores, the 450-token
    one was cut off and earns nothing. r = [1.5] * 4 + [0.5, 0.0], then GRPO."""
    lengths, scores = [10, 20, 30, 40, 449, 450], [1, 1, 1, 1, 0, 0]
    advantages = run_estimator("laser_de", lengths, scores, ["q"] * 6, algorithm_config("laser_de", **LASER_SMALL))
    assert shaping_state.state_of(get_method("laser_de")).candidates == [None, None, 100]
    want = reference_advantages([1.5] * 4 + [0.5, 0.0], norm_by_std=True)
    assert advantages.tolist() == pytest.approx(want, rel=1e-5, abs=1e-6)


# --------------------------------------------------------------------------- vectorised == per-group reference


def random_batch(rng: np.random.Generator, partial_credit: bool = False):
    """Interleaved groups of 1-9 responses; lengths >= 1 (a verl response has at least its EOS token)."""
    lengths, scores, uids = [], [], []
    for g in range(int(rng.integers(1, 10))):
        size = int(rng.integers(1, 10))
        if rng.random() < 0.2:  # ties, equal lengths, flat groups, truncated answers
            group_lengths = rng.choice([100, 200, 300, RESPONSE_LIMIT], size)
        else:
            group_lengths = rng.integers(1, RESPONSE_LIMIT + 1, size)
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
    rng = rng_for(name, partial_credit, "vec")
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
    rng = rng_for(name, norm, "est")
    config = algorithm_config(name, norm, **(LASER_SMALL if name == "laser_de" else {}))
    laser = LaserDE(lower=100, interval=100, upper=400, every=2, truncation=RESPONSE_LIMIT)
    for _ in range(40):
        lengths, scores, uids = random_batch(rng, partial_credit=bool(rng.random() < 0.5))
        advantages = run_estimator(name, lengths, scores, uids, config)
        groups = grouped(lengths, scores, uids)
        expected = reference_rewards(name, groups, laser)
        for uid, (members, *_rest) in groups.items():
            want = reference_advantages(expected[uid], norm_by_std=norm)
            tolerance = float32_rounding(expected[uid], norm)
            assert advantages[members].tolist() == pytest.approx(want, rel=1e-6, abs=tolerance)


def float32_rounding(rewards, norm_by_std, epsilon=1e-6):
    """How far verl's float32 GRPO, which the estimator reproduces bit for bit, may be from the float64 reference.

    verl sums a group's G float32 rewards in float32: the mean errs by up to about (G + 1) ulps of max |r|, and the
    advantage by that over std + epsilon. A group of rewards close together near a large one (ShorterBetter's 2.0 and
    1.999: std 7e-4) makes that a relative error above 1e-4; it is in verl's arithmetic, not the shaping.
    """
    n = len(rewards)
    if n == 1:
        return 1e-6
    bound = (n + 1) * float(np.finfo(np.float32).eps) * max(abs(r) for r in rewards)
    if norm_by_std:
        mean = sum(rewards) / n
        bound /= math.sqrt(sum((r - mean) ** 2 for r in rewards) / (n - 1)) + epsilon
    return max(bound, 1e-6)


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
    with pytest.raises(ConfigError) as caught:
        run_estimator("smartthinker", [10, 20], [1, 0], ["q", "q"], config)
    message = str(caught.value)
    assert "algorithm.shorter_better.alpha=3.0" in message and "algorithm.adv_estimator=shorter_better" in message
    config = algorithm_config("shorter_better")
    config.smartthinker = {"penalty": "symmetric"}
    with pytest.raises(ConfigError, match="algorithm.smartthinker.penalty='symmetric'"):
        run_estimator("shorter_better", [10, 20], [1, 0], ["q", "q"], config)


def test_another_methods_block_is_refused_even_holding_only_defaults():
    """The recipe yaml writes no option blocks, so any block of a method that is not selected is a mistake."""
    config = algorithm_config("kimi_length")
    config.laser_de = {"alpha": 0.5}
    with pytest.raises(ConfigError) as caught:
        run_estimator("kimi_length", [10, 20], [1, 0], ["q", "q"], config)
    assert "algorithm.laser_de.alpha=0.5 is set" in str(caught.value) and "drop the override" in str(caught.value)


def test_unknown_method_name_lists_the_known_ones():
    with pytest.raises(ConfigError) as caught:
        get_method("shorterbetter")
    assert isinstance(caught.value, SmartThinkerError) and "shorter_better" in str(caught.value)
    assert "algorithm.adv_estimator" in str(caught.value)


@pytest.mark.parametrize(
    "name,options,message",
    [
        ("shorter_better", {"beta": -1}, "algorithm.shorter_better.beta=-1 must be >= 0"),
        ("efficient_reasoning", {"alpha": 1.5}, "algorithm.efficient_reasoning.alpha=1.5 must lie in [0, 1)"),
        ("kimi_length", {"weight": "x"}, "algorithm.kimi_length.weight='x' is not a number"),
        ("laser_de", {"length_upper_bound": 10}, "algorithm.laser_de.length_upper_bound=10 is below"),
        ("laser_de", {"speed": 1}, "unknown key(s) algorithm.laser_de.speed"),
        ("laser_de", {"length_interval": 10.5}, "algorithm.laser_de.length_interval=10.5 must be a whole number"),
        ("laser_de", {"update_interval": 0}, "algorithm.laser_de.update_interval=0 must be > 0"),
        ("laser_de", {"alpha": -0.5}, "algorithm.laser_de.alpha=-0.5 must be >= 0"),
        ("kimi_length", {"weight": -1}, "algorithm.kimi_length.weight=-1 must be >= 0"),
    ],
)
def test_bad_options_name_the_key(name, options, message):
    with pytest.raises(ConfigError) as caught:
        METHODS[name].options_type.from_mapping(options)
    assert message in str(caught.value)


def test_a_method_is_its_options_and_its_formula():
    """@shaping_method registers the formula under the options' key and adds the statistics every method logs."""

    @dataclass(frozen=True, kw_only=True)
    class ToyOptions(MethodOptions):
        config_key: ClassVar[str] = "toy_length"
        beta: float = 0.25

    try:

        @shaping_method(ToyOptions, statistics=("length/max",), formula="r = score - beta * len")
        def shape(batch, options):
            rewards = batch.scores - options.beta * batch.lengths
            return ShapingOutput(rewards=rewards, statistics={"length/max": batch.lengths.max()})

        method = get_method("toy_length")
        assert method.options_type is ToyOptions and method.shape is shape
        with pytest.raises(ValueError, match="'toy_length' is already registered"):
            shaping_method(ToyOptions, statistics=(), formula="")(shape)
        assert method.metric_names == ("length/max", "accuracy/mean", "length_correct/mean", "length_incorrect/mean")
        out = method.shape(batch_of([2, 4, 8], [1.0, 0.0, 1.0]), ToyOptions.from_mapping({"beta": 0.5}))
        assert out.rewards.tolist() == [0.0, -2.0, -3.0]
        assert as_dict(out.statistics) == {
            "length/max": 8.0,
            "accuracy/mean": pytest.approx(2 / 3),
            "length_correct/mean": 5.0,
            "length_incorrect/mean": 4.0,
        }
    finally:
        METHODS.pop("toy_length", None)


def as_dict(statistics):
    return {name: value.item() for name, value in statistics.items()}
