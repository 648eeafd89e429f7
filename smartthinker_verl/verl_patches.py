"""Every change smartthinker-verl makes to verl's or the standard library's behaviour, in one place.

Each entry says why verl 0.9.1 needs it and the upstream change that would make it unnecessary; :data:`PATCHES`
lists them, and tests/test_verl_patches.py fails when an assignment to a verl or standard-library attribute appears
in any other module of the package (the CPU platform's vLLM patches excepted: tooling for ``VERL_PLATFORM=cpu``).

- ``Tracking.log`` merges the shaping methods' pending statistics (:mod:`smartthinker_verl.step_metrics`) into every
  logged step. verl's advantage estimators cannot return metrics, and the trainer has no metrics hook. Unnecessary
  once verl lets an estimator return a metrics dict beside ``(advantages, returns)`` (no upstream issue yet).
- ``FileLogger.__init__``/``log`` keep the records before a resumed checkpoint: verl opens the JSONL file with
  ``wb``, erasing them. Unnecessary once verl opens it for appending and drops records past the resumed step (no
  upstream issue yet).
- :func:`rotate_checkpoints`, called by the checkpoint callback (verl's extension point, nothing is replaced):
  verl rotates only the checkpoints saved in the current process, so those from before a resume stay forever
  (the same defect in verl's SFT trainer: verl-project/verl#7395, fix proposed in #7396).
- ``multiprocessing.spawn.get_preparation_data``, in the process that starts the grading pool only
  (:func:`install_spawn_patch`): a grader started from the forkserver would re-import the caller's ``__main__``, so
  an unguarded script would run in every grader. Unnecessary once multiprocessing lets a pool skip ``__main__``
  (CPython has none; its forkserver ``__main__`` handling: python/cpython#98552, #137996).
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import re
import shutil
from multiprocessing import spawn
from pathlib import Path

logger = logging.getLogger(__name__)

#: What is replaced, by whom.
PATCHES: dict[str, str] = {
    "verl.utils.tracking.Tracking.log": "install_logging_patches",
    "verl.utils.tracking.FileLogger.__init__": "install_logging_patches",
    "verl.utils.tracking.FileLogger.log": "install_logging_patches",
    "multiprocessing.spawn.get_preparation_data": "install_spawn_patch",
}
#: The signature of verl's ``Tracking.log`` that is wrapped.
WRAPPED_SIGNATURE: tuple[str, ...] = ("self", "data", "step", "backend")
TRAINING_KEY = "training/global_step"
_MARK = "_smartthinker_patch"


def install_logging_patches() -> None:
    """Wrap ``Tracking.log`` and ``FileLogger``; idempotent (the plugin calls it in every process importing verl)."""
    from verl.utils.tracking import FileLogger, Tracking

    if not getattr(Tracking.log, _MARK, False):
        _wrap_tracking_log(Tracking)
    if not getattr(FileLogger.__init__, _MARK, False):
        _wrap_file_logger(FileLogger)


def _wrap_tracking_log(tracking: type) -> None:
    from smartthinker_verl.step_metrics import PENDING

    original = tracking.log
    found = tuple(inspect.signature(original).parameters)
    if found != WRAPPED_SIGNATURE:
        logger.error(
            "verl's Tracking.log%s is not the Tracking.log%s that smartthinker-verl wraps: the per-step "
            "length-shaping metrics will NOT be logged. Install the pinned verl version (setup.py VERL_VERSION).",
            found,
            WRAPPED_SIGNATURE,
        )
        return

    @functools.wraps(original)
    def log(self, data, step, backend=None):
        return original(self, data={**data, **PENDING.pop()}, step=step, backend=backend)

    setattr(log, _MARK, True)
    tracking.log = log


def records_to_keep(old_lines: list[bytes], first_step: int, first_is_training: bool) -> list[bytes]:
    """The old JSONL lines before the first step S a resumed run logs: steps < S when it logs training metrics,
    <= S when it validates at the checkpoint's step first; nothing for a fresh run (S = 0, or 1 with training)."""
    if first_step == 0 or (first_step == 1 and first_is_training):
        return []
    limit = first_step if first_is_training else first_step + 1
    kept = []
    for line in old_lines:
        try:
            step = int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a crash
        if step < limit:
            kept.append(line if line.endswith(b"\n") else line + b"\n")
    return kept


def _wrap_file_logger(file_logger: type) -> None:
    original_init, original_log = file_logger.__init__, file_logger.log

    @functools.wraps(original_init)
    def init(self, project_name, experiment_name, *args, **kwargs):
        path = os.getenv("VERL_FILE_LOGGER_PATH")  # verl's rule for the file
        if path is None:
            root = os.path.expanduser(os.getenv("VERL_FILE_LOGGER_ROOT", "."))
            path = os.path.join(root, project_name, f"{experiment_name}.jsonl")
        try:  # read before verl truncates the file
            with open(path, "rb") as old:
                self._smartthinker_old = old.read().splitlines(keepends=True)
        except OSError:
            self._smartthinker_old = []
        original_init(self, project_name, experiment_name, *args, **kwargs)

    @functools.wraps(original_log)
    def log(self, data, step):
        kept = records_to_keep(getattr(self, "_smartthinker_old", None) or [], int(step), TRAINING_KEY in data)
        if kept:
            self.fp.write(b"".join(kept))
            logger.info("file logger: kept %d record(s) before step %s of the resumed run", len(kept), step)
        self._smartthinker_old = None
        return original_log(self, data, step)

    setattr(init, _MARK, True)
    file_logger.__init__, file_logger.log = init, log


_STEP_FOLDER = re.compile(r"global_step_(\d+)")


def rotate_checkpoints(run_dir: str | Path, keep: int | None, current_step: int) -> list[Path]:
    """Delete the ``global_step_N`` folders of ``run_dir`` (N <= ``current_step``: later ones are a crashed attempt
    verl overwrites) beyond the newest ``keep`` complete ones (with ``actor/``; leftovers without it go too), never
    the current step's or the tracker file's; None keeps all. Returns those removed."""
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
    for step in sorted(set(steps) - kept):
        folder = steps[step]
        what = "checkpoint" if (folder / "actor").is_dir() else "leftover of a rotated checkpoint"
        shutil.rmtree(folder)
        logger.warning("removed %s %s (trainer.max_actor_ckpt_to_keep=%d)", what, folder, keep)
        removed.append(folder)
    return removed


def install_spawn_patch(process_name: str) -> None:
    """Leave ``__main__`` out of what processes named ``process_name`` (pebble's workers) re-import; idempotent.

    Called by the grading pool before it starts workers, in that process only; other children are unchanged.
    """
    original = spawn.get_preparation_data
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def get_preparation_data(name):
        data = original(name)
        if name == process_name:
            data.pop("init_main_from_name", None)
            data.pop("init_main_from_path", None)
        return data

    setattr(get_preparation_data, _MARK, True)
    spawn.get_preparation_data = get_preparation_data
