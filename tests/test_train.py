"""smartthinker_verl.launch.train keeps the resolved config beside the checkpoints (read by `convert` for the model
card)."""

from __future__ import annotations

import yaml

from smartthinker_verl.launch.compose import DEFAULT_CONFIG_NAME, prepare
from smartthinker_verl.launch.train import save_run_config


def test_resolved_config_is_saved_in_the_run_directory(tmp_path):
    run_dir = tmp_path / "checkpoints" / "run"
    config = prepare(
        [f"trainer.default_local_dir={run_dir}", "+algorithm.smartthinker.penalty=symmetric"],
        config_name=DEFAULT_CONFIG_NAME,
        require_files=False,
    )
    path = save_run_config(config)
    assert path == run_dir / "config.yaml"
    saved = yaml.safe_load(path.read_text())
    assert saved["algorithm"]["adv_estimator"] == "smartthinker"
    assert saved["algorithm"]["smartthinker"]["penalty"] == "symmetric"
    assert saved["trainer"]["default_local_dir"] == str(run_dir)
