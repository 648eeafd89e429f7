"""Module paths from before the rename to launch/ and shaping_state.py still do what users typed them for."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["train", "cluster_check"])
def test_old_launch_module_paths_run_the_launch_modules(module: str) -> None:
    old = subprocess.run(
        [sys.executable, "-m", f"smartthinker_verl.training.{module}", "--help"], capture_output=True, text=True
    )
    new = subprocess.run(
        [sys.executable, "-m", f"smartthinker_verl.launch.{module}", "--help"], capture_output=True, text=True
    )
    assert old.returncode == 0, old.stderr
    assert old.stdout == new.stdout and "usage:" in old.stdout


def test_old_checkpoint_callback_path_names_the_same_class() -> None:
    from smartthinker_verl.checkpoint import ShapingStateCallback as old
    from smartthinker_verl.shaping_state import ShapingStateCallback

    assert old is ShapingStateCallback
