"""The shaping methods' state across steps (LASER-DE's adaptive targets, owned by :mod:`smartthinker_verl.run_state`)
in every checkpoint. verl's checkpoint extension point, ``trainer.checkpoint_callback_class`` (a
``CheckpointCallback`` built in the trainer's process, imported only there), is :class:`ShapingStateCallback`
(``CALLBACK_CLASS``, set by the recipe yaml):

- on construction it starts the run's states afresh and, before verl loads the checkpoint, loads them from the
  folder verl will resume from (by verl's ``trainer.resume_mode`` rules). Resuming a stateful method from a
  checkpoint without its state is an error naming the fix (it would silently restart the adaptive targets);
- on save it writes every stateful method's state to ``<checkpoint_dir>/`` :data:`STATE_FILE` and, after a
  synchronous save, rotates the checkpoints across resumes (:func:`smartthinker_verl.verl_patches.rotate_checkpoints`).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from verl.trainer.ppo.checkpoint_callback import CheckpointCallback

from smartthinker_verl.errors import MissingFileError
from smartthinker_verl.options import select
from smartthinker_verl.run_state import CALLBACK_CLASS, reset_states, state_of
from smartthinker_verl.shaping import METHODS, ShapingMethod, find_method
from smartthinker_verl.verl_patches import rotate_checkpoints

logger = logging.getLogger(__name__)

#: File written into every ``global_step_N`` folder.
STATE_FILE = "smartthinker_shaping_state.json"
FORMAT_VERSION = 1


def stateful_methods() -> list[ShapingMethod]:
    return [m for m in METHODS.values() if m.state_type is not None]


def save_state(checkpoint_dir: str | Path, global_step: int | None = None) -> Path:
    """Write every stateful method's state to ``checkpoint_dir/STATE_FILE`` (atomically); returns the path."""
    path = Path(checkpoint_dir) / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT_VERSION,
        "global_step": global_step,
        "methods": {m.name: state_of(m).state_dict() for m in stateful_methods()},
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(payload, indent=1))
    os.replace(temporary, path)
    return path


def load_state(checkpoint_dir: str | Path, active_estimator: str | None) -> bool:
    """Restore the states saved in ``checkpoint_dir``; True when a file was found.

    Raises:
        MissingFileError: the active estimator keeps state but the checkpoint holds none for it.
    """
    path = Path(checkpoint_dir) / STATE_FILE
    active = find_method(str(active_estimator)) if active_estimator is not None else None
    stateful = active is not None and active.state_type is not None
    if not path.is_file():
        if stateful:
            raise MissingFileError(
                f"resuming {active.name} from {checkpoint_dir}, which holds no {STATE_FILE}: the method's adaptive "
                f"state (LASER-DE's target lengths) was not saved with that checkpoint, so the resumed run would "
                f"silently restart it. Fix: resume from a checkpoint written by a {active.name} run with "
                f"trainer.checkpoint_callback_class={CALLBACK_CLASS} (the recipe yaml sets it), or start afresh "
                f"with trainer.resume_mode=disable (or another trainer.default_local_dir)"
            )
        return False
    payload = json.loads(path.read_text())
    for name, state in payload.get("methods", {}).items():
        method = METHODS.get(name)
        if method is not None and method.state_type is not None:
            state_of(method).load_state_dict(state)
    if stateful and active.name not in payload.get("methods", {}):
        raise MissingFileError(f"{path} holds no state for {active.name}. Fix: see {CALLBACK_CLASS}")
    logger.info("restored shaping state from %s (step %s)", path, payload.get("global_step"))
    return True


def resume_folder(config: Any) -> str | None:
    """The ``global_step_N`` folder verl's trainer will resume from, or None: ``trainer.resume_mode`` ``auto`` = the
    latest in ``default_local_dir``, ``resume_path`` = ``trainer.resume_from_path``, ``disable`` = none."""
    from verl.utils.checkpoint.checkpoint_manager import find_latest_ckpt_path

    mode = select(config, "trainer.resume_mode", "auto")
    folder = select(config, "trainer.resume_from_path" if mode == "resume_path" else "trainer.default_local_dir")
    if mode == "disable" or folder is None:
        return None
    folder = os.path.join(os.getcwd(), folder)  # an absolute folder stays as it is
    return folder if mode == "resume_path" else find_latest_ckpt_path(folder)


def checkpoints_to_keep(config: Any) -> int | None:
    """``trainer.max_actor_ckpt_to_keep`` as verl reads it (1 with the deprecated ``remove_previous_ckpt_in_save``);
    None or a value below 1: keep every checkpoint."""
    if select(config, "trainer.remove_previous_ckpt_in_save", False):
        return 1
    keep = select(config, "trainer.max_actor_ckpt_to_keep", None)
    return int(keep) if keep is not None and int(keep) > 0 else None


class ShapingStateCallback(CheckpointCallback):
    """verl checkpoint callback: saves the shaping methods' state with each checkpoint, restores it on resume."""

    def __init__(self, config: Any = None):
        super().__init__(config=config)
        reset_states(saved_by_callback=True)  # a trainer built in this process starts a run
        folder = resume_folder(config)
        if folder is not None:
            load_state(folder, select(config, "algorithm.adv_estimator"))

    def on_save(self, trainer, global_step: int, checkpoint_dir: str, async_save: bool = False, **kwargs) -> None:
        if stateful_methods():
            save_state(checkpoint_dir, global_step)
        if not async_save:  # an asynchronous save is not durable yet: rotate at the next synchronous one
            rotate_checkpoints(Path(checkpoint_dir).parent, checkpoints_to_keep(self.config), int(global_step))
