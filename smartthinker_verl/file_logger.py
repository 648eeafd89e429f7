"""Keep verl's ``file`` logger history across a resume.

verl 0.9.1's ``FileLogger`` opens its JSONL file (``VERL_FILE_LOGGER_PATH``, else
``$VERL_FILE_LOGGER_ROOT/<project>/<experiment>.jsonl``) with mode ``wb``: a run resumed from its checkpoint
erases the metrics of every step before the checkpoint. This hook (installed by the plugin, in the process that
logs) reads the old records before verl truncates the file and, at the first ``log`` call, writes back those that
precede the step being logged, so every step appears once:

- the first record logged is the resumed run's first step S (training metrics) or its validation at the
  checkpoint's step S (``val_before_train``, a record without ``training/global_step``): old records of steps
  < S (training) or <= S (validation) are kept; later ones (steps trained after the checkpoint and before the
  crash) are dropped, because they are trained and logged again;
- a fresh run (first step 0, or 1 with training metrics) keeps nothing: the file starts empty as in verl.
"""

from __future__ import annotations

import functools
import json
import logging
import os

logger = logging.getLogger(__name__)

TRAINING_KEY = "training/global_step"


def file_logger_path(project_name: str, experiment_name: str) -> str:
    """The path verl's ``FileLogger`` writes to (same rule as verl 0.9.1)."""
    path = os.getenv("VERL_FILE_LOGGER_PATH")
    if path is None:
        root = os.path.expanduser(os.getenv("VERL_FILE_LOGGER_ROOT", "."))
        path = os.path.join(root, project_name, f"{experiment_name}.jsonl")
    return path


def records_to_keep(old_lines: list[bytes], first_step: int, first_is_training: bool) -> list[bytes]:
    """The old JSONL lines that precede the first step a (resumed) run logs; see the module docstring."""
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


def install() -> bool:
    """Wrap ``FileLogger.__init__``/``log`` once per process; returns True if newly installed."""
    from verl.utils.tracking import FileLogger

    if getattr(FileLogger.__init__, "_smartthinker_hook", False):
        return False
    original_init, original_log = FileLogger.__init__, FileLogger.log

    @functools.wraps(original_init)
    def init(self, project_name, experiment_name, *args, **kwargs):
        path = file_logger_path(project_name, experiment_name)
        try:
            with open(path, "rb") as old:
                self._smartthinker_old = old.read().splitlines(keepends=True)
        except OSError:
            self._smartthinker_old = []
        original_init(self, project_name, experiment_name, *args, **kwargs)

    @functools.wraps(original_log)
    def log(self, data, step):
        old = getattr(self, "_smartthinker_old", None)
        if old:
            kept = records_to_keep(old, int(step), TRAINING_KEY in data)
            if kept:
                self.fp.write(b"".join(kept))
                logger.info("file logger: kept %d record(s) before step %s of the resumed run", len(kept), step)
        self._smartthinker_old = None
        return original_log(self, data, step)

    init._smartthinker_hook = True  # type: ignore[attr-defined]
    FileLogger.__init__, FileLogger.log = init, log
    return True


install()
