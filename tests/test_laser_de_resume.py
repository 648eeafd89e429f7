"""LASER-DE's adaptive targets survive a checkpoint and a resume through verl's checkpoint callback hook
(``trainer.checkpoint_callback_class``, built by verl's own ``build_checkpoint_callback``), and a resume without
the saved state is an error that names the fix."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import verl  # noqa: F401
from omegaconf import OmegaConf
from verl.trainer.ppo.checkpoint_callback import build_checkpoint_callback
from verl.trainer.ppo.core_algos import get_adv_estimator_fn

from smartthinker_verl import shaping_state
from smartthinker_verl.errors import MissingFileError, SmartThinkerError
from smartthinker_verl.shaping import get_method
from smartthinker_verl.shaping_state import CALLBACK_CLASS, STATE_FILE, ShapingStateCallback

REPO = Path(__file__).resolve().parents[1]
OPTIONS = {"length_lower_bound": 100, "length_interval": 100, "length_upper_bound": 800, "update_interval": 5}


def laser_state():
    return shaping_state.state_of(get_method("laser_de"))


def trainer_config(ckpt: Path, estimator: str = "laser_de", mode: str = "auto", resume_from: str | None = None):
    return OmegaConf.create(
        {
            "trainer": {
                "default_local_dir": str(ckpt),
                "resume_mode": mode,
                "resume_from_path": resume_from,
                "checkpoint_callback_class": CALLBACK_CLASS,
            },
            "algorithm": {
                "adv_estimator": estimator,
                "norm_adv_by_std_in_grpo": True,
                "use_kl_in_reward": False,
                "laser_de": OPTIONS,
                "run_context": {"response_limit": 800},
            },
        }
    )


def batches(seed: int = 5, count: int = 6):
    """Groups of 8: long responses for three steps, then short ones, so the targets move at the next update."""
    rng = np.random.default_rng(seed)
    out = []
    for step in range(count):
        lengths, scores, uids = [], [], []
        for g in range(4):
            accuracy = [0.9, 0.5, 0.2, 0.8][g]
            group_lengths = (rng.integers(400, 800, 8) if step < 3 else rng.integers(50, 150, 8)).tolist()
            lengths += group_lengths
            scores += (rng.random(8) < accuracy).astype(float).tolist()
            uids += [f"s{step}-p{g}"] * 8
        out.append((lengths, scores, uids))
    return out


def estimate(config, lengths, scores, uids):
    width = max(lengths) + 1
    mask = (torch.arange(width)[None] < torch.tensor(lengths)[:, None]).long()
    rewards = torch.zeros(len(lengths), width)
    rewards[torch.arange(len(lengths)), torch.tensor(lengths) - 1] = torch.tensor(scores, dtype=torch.float32)
    advantages, _ = get_adv_estimator_fn("laser_de")(
        token_level_rewards=rewards, response_mask=mask, index=np.array(uids, dtype=object), config=config.algorithm
    )
    return advantages[:, 0].tolist()


def save_like_verl(callback, ckpt: Path, step: int) -> Path:
    """What verl's _save_checkpoint does around the hook: the step folder, the tracker file, then on_save."""
    folder = ckpt / f"global_step_{step}"
    folder.mkdir(parents=True)
    (ckpt / "latest_checkpointed_iteration.txt").write_text(str(step))
    callback.on_save(trainer=None, global_step=step, checkpoint_dir=str(folder), async_save=False)
    return folder


RESUME_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {tests!r})
    import verl
    from omegaconf import OmegaConf
    from verl.trainer.ppo.checkpoint_callback import build_checkpoint_callback
    from test_laser_de_resume import batches, estimate
    from smartthinker_verl import shaping_state
    from smartthinker_verl.shaping import get_method
    config = OmegaConf.create(json.loads({config!r}))
    build_checkpoint_callback(config)  # verl's construction: restores the saved state in this fresh process
    restored = shaping_state.state_of(get_method("laser_de")).state_dict()
    print(json.dumps({{"state": restored, "advantages": [estimate(config, *b) for b in batches()[3:]]}}))
    """
)


def test_save_then_resume_in_a_fresh_process_continues_exactly(tmp_path: Path):
    ckpt = tmp_path / "checkpoints"
    config = trainer_config(ckpt)
    callback = build_checkpoint_callback(config)  # verl's own construction from trainer.checkpoint_callback_class
    assert isinstance(callback, ShapingStateCallback)
    steps = batches()
    for batch in steps[:3]:  # targets set at step 1 (long answers), steps 2-3 accumulated; the next update is at step 6
        estimate(config, *batch)
    saved_state = laser_state().state_dict()
    assert saved_state["candidates"] is not None and saved_state["steps_since_update"] == 3
    folder = save_like_verl(callback, ckpt, step=3)
    assert json.loads((folder / STATE_FILE).read_text())["methods"]["laser_de"] == saved_state
    uninterrupted = [estimate(config, *batch) for batch in steps[3:]]

    script = RESUME_SCRIPT.format(tests=str(REPO / "tests"), config=json.dumps(OmegaConf.to_container(config)))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=_env(), check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = json.loads(done.stdout.strip().splitlines()[-1])
    assert resumed["state"] == saved_state
    assert resumed["advantages"] == uninterrupted

    # Without the restored state the run would differ: the resume is what makes it continue exactly.
    shaping_state.reset_states()
    fresh = [estimate(config, *batch) for batch in steps[3:]]
    assert fresh != uninterrupted


def _env():
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(REPO)
    return env


def test_resume_without_saved_state_is_an_error_naming_the_fix(tmp_path: Path):
    ckpt = tmp_path / "checkpoints"
    (ckpt / "global_step_2").mkdir(parents=True)  # a checkpoint written without the callback
    (ckpt / "latest_checkpointed_iteration.txt").write_text("2")
    with pytest.raises(MissingFileError) as caught:
        build_checkpoint_callback(trainer_config(ckpt))
    message = str(caught.value)
    assert isinstance(caught.value, SmartThinkerError) and isinstance(caught.value, FileNotFoundError)
    assert STATE_FILE in message and CALLBACK_CLASS in message and "trainer.resume_mode=disable" in message
    # The same folder named explicitly (resume_mode=resume_path) fails the same way.
    with pytest.raises(MissingFileError):
        build_checkpoint_callback(trainer_config(ckpt, mode="resume_path", resume_from=str(ckpt / "global_step_2")))
    # Starting afresh, or a stateless method, resumes without complaint.
    build_checkpoint_callback(trainer_config(ckpt, mode="disable"))
    build_checkpoint_callback(trainer_config(ckpt, estimator="smartthinker"))


def test_a_fresh_trainer_starts_from_the_initial_state(tmp_path: Path):
    config = trainer_config(tmp_path / "none")
    estimate(config, *batches()[0])
    assert laser_state().candidates is not None
    build_checkpoint_callback(config)  # a new trainer in this process, nothing to resume
    assert laser_state().candidates is None
