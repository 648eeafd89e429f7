"""The length arena (smartthinker_verl/arena): short runs through verl's real compute_advantage and the real
estimators; the policy and the accuracy curves are the arena's own simulation (docs/arena.md)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch

from smartthinker_verl.arena import curves, estimators, loop
from smartthinker_verl.arena.loop import INITIAL_MEDIAN, INITIAL_SPREAD, MIN_LENGTH
from smartthinker_verl.cli import main
from smartthinker_verl.errors import ConfigError
from smartthinker_verl.options import MethodOptions
from smartthinker_verl.shaping import METHODS, GroupedBatch, ShapingOutput, shaping_method

SHORT = loop.ArenaSpec(prompts_per_level=2, group_size=8, steps=25)


def _config(method: str, spec: loop.ArenaSpec = SHORT):
    return estimators.method_config(method, spec.max_length, spec.group_size)


def _same(a: loop.Trajectory, b: loop.Trajectory) -> bool:
    return all(
        np.array_equal(getattr(a, name), getattr(b, name))
        for name in ("length", "accuracy", "min_correct_advantage", "final_length", "final_accuracy")
    )


def test_seeds_reproduce_exactly_and_laser_de_starts_fresh_for_every_seed():
    config = _config("laser_de")
    first = loop.run_one(SHORT, config, seed=0)
    other = loop.run_one(SHORT, config, seed=1)  # moves LASER-DE's adaptive targets on
    again = loop.run_one(SHORT, config, seed=0)
    assert _same(first, again)
    assert not np.array_equal(first.length, other.length)


@dataclass(frozen=True, kw_only=True)
class BrevityOptions(MethodOptions):
    config_key: ClassVar[str] = "arena_brevity"


@pytest.fixture
def brevity_method():
    """A method registered the documented way (docs/baselines.md) that rewards brevity whatever the correctness;
    removed again afterwards so that no other test sees it."""
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY

    @shaping_method(BrevityOptions, statistics=(), formula="r = -len")
    def shape(batch: GroupedBatch, options: BrevityOptions) -> ShapingOutput:
        return ShapingOutput(rewards=-batch.lengths.double(), statistics={})

    yield BrevityOptions.config_key
    for registry in (METHODS, ADV_ESTIMATOR_REGISTRY):
        registry.pop(BrevityOptions.config_key, None)


def test_a_method_rewarding_brevity_whatever_the_correctness_collapses_to_the_shortest_length(brevity_method):
    assert brevity_method in estimators.available_methods()
    spec = loop.ArenaSpec(levels=curves.DEFAULT_LEVELS[-1:], prompts_per_level=4, steps=300, learning_rate=0.3)
    trajectory = loop.run_one(spec, _config(brevity_method, spec), seed=0)
    assert trajectory.final_length[0] < 3 * MIN_LENGTH  # from a median of 4,000 tokens
    assert trajectory.final_accuracy[0] < 0.01  # the very hard level needs thousands of tokens


def test_grpo_on_a_flat_curve_keeps_its_length_distribution_where_a_length_penalty_does_not():
    flat = curves.Level("flat", points=((0.0, 0.5), (16384.0, 0.5)))
    spec = loop.ArenaSpec(levels=(flat,), prompts_per_level=32, steps=100, max_length=16384)  # ~no cut response
    grpo = loop.run_one(spec, _config("grpo", spec), seed=0).policy
    assert abs(float(grpo.mu.mean()) - math.log(INITIAL_MEDIAN)) < 0.1
    assert abs(float(grpo.log_sigma.mean()) - math.log(INITIAL_SPREAD)) < 0.15
    penalised = loop.run_one(spec, _config("shorter_better", spec), seed=0).policy
    assert float(penalised.mu.mean()) < math.log(INITIAL_MEDIAN) - 0.5


def test_smartthinker_never_puts_a_correct_response_below_its_group_mean_where_shorter_better_does():
    smartthinker = loop.run_one(SHORT, _config("smartthinker"), seed=0)
    assert np.isfinite(smartthinker.min_correct_advantage).all()  # every step had correct responses
    assert (smartthinker.min_correct_advantage >= 0).all()
    shorter_better = loop.run_one(SHORT, _config("shorter_better"), seed=0)
    assert (shorter_better.min_correct_advantage < 0).any()


def test_cli_writes_length_accuracy_and_critical_length_per_method_and_level(tmp_path):
    out = tmp_path / "arena"
    args = ["arena", "--methods", "grpo", "smartthinker", "shorter_better", "--seeds", "3", "--steps", "4"]
    assert main([*args, "--prompts-per-level", "1", "--workers", "1", "--no-plot", "--out", str(out)]) == 0
    summary = json.loads((out / "arena.json").read_text())
    assert list(summary["methods"]) == ["grpo", "smartthinker", "shorter_better"]
    for method in summary["methods"].values():
        assert method["seeds"] == [0, 1, 2]
        for level in curves.DEFAULT_LEVELS:
            entry = method["levels"][level.name]
            assert entry["critical_length"] == level.critical_length(curves.DEFAULT_MAX_LENGTH)
            assert entry["length"]["low"] <= entry["length"]["mean"] <= entry["length"]["high"]
            assert 0 <= entry["accuracy"]["mean"] <= 1
    assert summary["methods"]["grpo"]["levels"]["easy"]["tokens_saved_vs_grpo"]["mean"] == 0
    assert "| smartthinker |" in (out / "arena.md").read_text()


def test_unknown_method_is_refused_with_the_known_names():
    with pytest.raises(ConfigError, match="smartthinker"):
        estimators.method_config("no_such_method", 8192, 8)


def test_critical_length_is_where_the_curve_reaches_95_percent_of_its_best():
    for level in curves.DEFAULT_LEVELS:
        critical = level.critical_length(8192)
        assert critical <= level.rise_critical_length() + 1  # earlier where the limit cuts the rise short
        table = level.table(8192)
        assert table[critical] >= 0.95 * table[1:].max() > table[critical - 1]
    declining = curves.overthinking(curves.DEFAULT_LEVELS)[0]
    assert declining.accuracy(torch.tensor([8000]))[0] < declining.accuracy(torch.tensor([300]))[0]


def test_curve_files_load_and_bad_ones_name_the_fix(tmp_path):
    good = tmp_path / "curves.yaml"
    good.write_text("levels:\n  - {name: a, best: 0.9, scale: 500}\n  - {name: b, points: [[0, 0.1], [4000, 0.7]]}\n")
    levels = curves.load_levels(good)
    assert [lv.name for lv in levels] == ["a", "b"]
    assert float(levels[1].accuracy(torch.tensor([2000]))[0]) == pytest.approx(0.4)
    bad = tmp_path / "bad.json"
    for content, fix in (
        ({"level": []}, "'levels'"),
        ({"levels": [{"name": "a", "best": 90}]}, "best must lie in"),
        ({"levels": [{"name": "a", "points": [[0, 10], [5, 20]]}]}, "fractions, not percentages"),
        ({"levels": [{"name": "a", "scale": 5, "slope": 1}]}, "unknown keys"),
    ):
        bad.write_text(json.dumps(content))
        with pytest.raises(ConfigError, match=fix):
            curves.load_levels(bad)
