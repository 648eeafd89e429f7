"""SmartThinkerConfig: defaults reproduce the paper; bad options fail with messages that name the key and fix."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from smartthinker_verl.errors import ConfigError
from smartthinker_verl.options import SmartThinkerConfig


def test_defaults_reproduce_the_paper():
    config = SmartThinkerConfig()
    assert (config.optimal_length, config.penalty, config.coefficient) == ("reference", "one_sided", "dynamic")
    assert config.correct_threshold == 0.5 and config.epsilon == 1e-6 and config.fixed_coefficient is None


def test_absent_section_means_defaults():
    algorithm = OmegaConf.create({"adv_estimator": "smartthinker", "norm_adv_by_std_in_grpo": True})
    assert SmartThinkerConfig.from_algorithm_config(algorithm) == SmartThinkerConfig()
    assert SmartThinkerConfig.from_algorithm_config(None) == SmartThinkerConfig()


def test_reads_options_from_verl_algorithm_config():
    algorithm = OmegaConf.create(
        {
            "smartthinker": {
                "optimal_length": "argmax",
                "penalty": "symmetric",
                "coefficient": "fixed",
                "fixed_coefficient": "2e-4",
                "correct_threshold": 0.9,
            }
        }
    )
    config = SmartThinkerConfig.from_algorithm_config(algorithm)
    assert config == SmartThinkerConfig(
        optimal_length="argmax", penalty="symmetric", coefficient="fixed", fixed_coefficient=2e-4, correct_threshold=0.9
    )


@pytest.mark.parametrize(
    "options,message",
    [
        (
            {"penalty": "two_sided"},
            r"algorithm\.smartthinker\.penalty='two_sided' is not valid: use one of one_sided, symmetric",
        ),
        ({"optimal_length": "mode"}, r"optimal_length='mode' is not valid: use one of reference, argmax"),
        ({"coefficient": "adaptive"}, r"coefficient='adaptive' is not valid"),
        ({"coefficient": "fixed"}, r"needs algorithm\.smartthinker\.fixed_coefficient"),
        ({"coefficient": "fixed", "fixed_coefficient": -1}, r"fixed_coefficient=-1 must be > 0"),
        ({"epsilon": 0}, r"epsilon=0 must be > 0"),
        ({"correct_threshold": "high"}, r"correct_threshold='high' is not a number"),
        ({"correct_threshold": float("nan")}, r"correct_threshold=nan must be a finite number"),
        ({"penalty_type": "one_sided"}, r"unknown key\(s\) algorithm\.smartthinker\.penalty_type: the options are"),
    ],
)
def test_invalid_options_name_the_key_and_the_fix(options, message):
    with pytest.raises(ConfigError, match=message):
        SmartThinkerConfig.from_mapping(options)


def test_section_must_be_a_mapping():
    with pytest.raises(ConfigError, match="must be a mapping"):
        SmartThinkerConfig.from_mapping(["reference"])  # type: ignore[arg-type]


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        SmartThinkerConfig().penalty = "symmetric"  # type: ignore[misc]
