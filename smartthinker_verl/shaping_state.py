"""State of the shaping methods across a checkpoint and a resume (LASER-DE's adaptive target lengths).

verl computes advantages in the trainer's process, so a method's state is a module-level object there
(``shaping.laser_de.STATE``). verl's checkpoint extension point, ``trainer.checkpoint_callback_class`` (a
``CheckpointCallback`` built in that process), carries it; the recipe yaml sets it to :data:`CALLBACK_CLASS`.
:class:`ShapingStateCallback`

- on save writes every stateful method's ``state_dict()`` to ``<checkpoint_dir>/`` :data:`STATE_FILE`;
- on construction, before verl loads the checkpoint, finds the folder verl will resume from (by verl's
  ``trainer.resume_mode`` rules) and loads the state from it. Resuming a stateful method from a checkpoint without
  its state is an error naming the fix (it would silently restart the adaptive targets);
- after every synchronous save, enforces ``trainer.max_actor_ckpt_to_keep`` on the run folder
  (:func:`rotate_checkpoints`): verl rotates only the folders it saved in this process, so those from before a
  resume would be kept forever, and removes only ``global_step_N/actor/``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from verl.trainer.ppo.checkpoint_callback import CheckpointCallback

from smartthinker_verl.errors import MissingFileError
from smartthinker_verl.options import select
from smartthinker_verl.shaping import METHODS, ShapingMethod, primary_methods

logger = logging.getLogger(__name__)

#: File written into every ``global_step_N`` folder.
STATE_FILE = "smartthinker_shaping_state.json"
#: The fully qualified name to put in ``trainer.checkpoint_callback_class``.
CALLBACK_CLASS = "smartthinker_verl.shaping_state.ShapingStateCallback"
FORMAT_VERSION = 1

_installed = False
_warned: set[str] = set()


def stateful_methods() -> list[ShapingMethod]:
    return [m for m in primary_methods() if m.state is not None]


def save_state(checkpoint_dir: str | Path, global_step: int | None = None) -> Path:
    """Write every stateful method's state to ``checkpoint_dir/STATE_FILE`` (atomically); returns the path."""
    path = Path(checkpoint_dir) / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT_VERSION,
        "global_step": global_step,
        "methods": {m.name: m.state.state_dict() for m in stateful_methods()},
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
    active = METHODS.get(str(active_estimator)) if active_estimator is not None else None
    if not path.is_file():
        if active is not None and active.state is not None:
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
        if method is not None and method.state is not None:
            method.state.load_state_dict(state)
    if active is not None and active.state is not None and active.name not in payload.get("methods", {}):
        raise MissingFileError(f"{path} holds no state for {active.name}. Fix: see {CALLBACK_CLASS}")
    logger.info("restored shaping state from %s (step %s)", path, payload.get("global_step"))
    return True


def resume_folder(config: Any) -> str | None:
    """The ``global_step_N`` folder verl's trainer will resume from, or None: ``trainer.resume_mode`` ``auto`` = the
    latest in ``default_local_dir``, ``resume_path`` = ``trainer.resume_from_path``, ``disable`` = none."""
    from verl.utils.checkpoint.checkpoint_manager import find_latest_ckpt_path

    mode = select(config, "trainer.resume_mode", "auto")
    if mode == "disable":
        return None
    if mode == "resume_path":
        folder = select(config, "trainer.resume_from_path")
        if folder is None:
            return None
        return folder if os.path.isabs(folder) else os.path.join(os.getcwd(), folder)
    base = select(config, "trainer.default_local_dir")
    if base is None:
        return None
    base = base if os.path.isabs(base) else os.path.join(os.getcwd(), base)
    return find_latest_ckpt_path(base)


_STEP_FOLDER = re.compile(r"global_step_(\d+)")


def checkpoints_to_keep(config: Any) -> int | None:
    """``trainer.max_actor_ckpt_to_keep`` as verl reads it (1 with the deprecated ``remove_previous_ckpt_in_save``);
    None or a value below 1: keep every checkpoint."""
    if select(config, "trainer.remove_previous_ckpt_in_save", False):
        return 1
    keep = select(config, "trainer.max_actor_ckpt_to_keep", None)
    return int(keep) if keep is not None and int(keep) > 0 else None


def rotate_checkpoints(run_dir: str | Path, keep: int | None, current_step: int) -> list[Path]:
    """Delete the checkpoints of ``run_dir`` beyond the newest ``keep``; returns the folders removed.

    Only ``global_step_N`` folders with ``N <= current_step`` are considered (later ones belong to an attempt that
    crashed and will be overwritten by verl). A folder is complete when it has ``actor/``; the newest ``keep``
    complete ones stay, older complete ones go, and so do leftovers without ``actor/`` (verl's own rotation removes
    only that subfolder). Never removed: ``global_step_<current_step>`` and the step named in
    ``latest_checkpointed_iteration.txt`` (what a resume would load). Each removal is logged.
    """
    if keep is None:
        return []
    run_dir = Path(run_dir)
    protected = {int(current_step)}
    try:
        protected.add(int((run_dir / "latest_checkpointed_iteration.txt").read_text().strip()))
    except (OSError, ValueError):
        pass
    steps = {}
    for folder in run_dir.glob("global_step_*"):
        match = _STEP_FOLDER.fullmatch(folder.name)
        if match and folder.is_dir() and int(match.group(1)) <= current_step:
            steps[int(match.group(1))] = folder
    complete = sorted((s for s, f in steps.items() if (f / "actor").is_dir()), reverse=True)
    kept = set(complete[:keep]) | protected
    removed = []
    for step in sorted(steps):
        if step in kept:
            continue
        folder = steps[step]
        what = "checkpoint" if (folder / "actor").is_dir() else "leftover of a rotated checkpoint"
        shutil.rmtree(folder)
        logger.warning("removed %s %s (trainer.max_actor_ckpt_to_keep=%d)", what, folder, keep)
        removed.append(folder)
    return removed


def reset_states() -> None:
    for method in stateful_methods():
        method.state.reset()


class ShapingStateCallback(CheckpointCallback):
    """verl checkpoint callback: saves the shaping methods' state with each checkpoint, restores it on resume."""

    def __init__(self, config: Any = None):
        global _installed
        super().__init__(config=config)
        _installed = True
        reset_states()  # a fresh trainer in this process starts from the method's initial state
        folder = resume_folder(config)
        if folder is not None:
            load_state(folder, select(config, "algorithm.adv_estimator"))

    def on_save(self, trainer, global_step: int, checkpoint_dir: str, async_save: bool = False, **kwargs) -> None:
        if stateful_methods():
            save_state(checkpoint_dir, global_step)
        if not async_save:  # an asynchronous save is not durable yet: rotate at the next synchronous one
            rotate_checkpoints(Path(checkpoint_dir).parent, checkpoints_to_keep(self.config), int(global_step))


def warn_if_state_not_saved(method: ShapingMethod) -> None:
    """Log once per method when its state will not reach the checkpoints (the callback was never installed)."""
    if _installed or method.name in _warned:
        return
    _warned.add(method.name)
    logger.warning(
        "%s keeps state across steps, but trainer.checkpoint_callback_class is not %s in this process: a resumed "
        "run would restart its adaptive targets. Set trainer.checkpoint_callback_class=%s (the recipe yaml does).",
        method.name,
        CALLBACK_CLASS,
        CALLBACK_CLASS,
    )
