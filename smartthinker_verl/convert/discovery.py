"""Find the checkpoint to convert: a trainer run directory, a ``global_step_N`` folder, or its ``actor`` folder."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import CheckpointNotFoundError

logger = logging.getLogger(__name__)

TRACKER_FILE = "latest_checkpointed_iteration.txt"
STEP_DIR_RE = re.compile(r"^global_step_(\d+)$")


@dataclass(frozen=True)
class CheckpointLocation:
    """Where one step's checkpoint lives."""

    step: int
    step_dir: Path
    actor_dir: Path

    @property
    def run_dir(self) -> Path:
        """RUN_DIR: the folder holding ``global_step_N``."""
        return self.step_dir.parent

    def default_output(self) -> Path:
        """``RUN_DIR/hf/global_step_N``."""
        return self.run_dir / "hf" / self.step_dir.name


def _is_actor_dir(path: Path) -> bool:
    return (path / "fsdp_config.json").exists() or any(path.glob("model_world_size_*_rank_*.pt"))


def _actor_of(step_dir: Path) -> Path:
    if not _is_actor_dir(step_dir / "actor"):
        raise CheckpointNotFoundError(
            f"{step_dir} has no actor checkpoint (expected {step_dir}/actor/fsdp_config.json)"
        )
    return step_dir / "actor"


def locate_checkpoint(path: str | Path, step: int | str | None = None) -> CheckpointLocation:
    """Resolve ``path`` and ``step`` to one checkpoint. For a run dir, ``None``/``"latest"`` reads the tracker file
    (without one: the highest ``global_step_N``, with a warning). ``CheckpointNotFoundError`` names the steps that
    exist."""
    path = Path(path).expanduser().resolve()
    latest = step is None or step == "latest"
    try:
        wanted = None if latest else int(step)
    except (TypeError, ValueError):
        raise CheckpointNotFoundError(f"--step must be a step number or 'latest', got {step!r}") from None
    if not path.is_dir():
        problem = "does not exist" if not path.exists() else "is a file"
        raise CheckpointNotFoundError(
            f"{path} {problem}; pass the trainer's default_local_dir (RUN_DIR), a global_step_N folder or its actor/"
        )

    if _is_actor_dir(path) or STEP_DIR_RE.match(path.name):  # a step's folder: its step is in its name
        step_dir, actor = (path.parent, path) if _is_actor_dir(path) else (path, _actor_of(path))
        match = STEP_DIR_RE.match(step_dir.name)
        if match is None:
            raise CheckpointNotFoundError(
                f"{path} is not inside a global_step_N folder, so its training step is unknown; "
                "pass the trainer's run directory or its global_step_N folder instead"
            )
        if wanted is not None and wanted != int(match.group(1)):
            raise CheckpointNotFoundError(
                f"--step {wanted} contradicts the checkpoint given ({step_dir.name}); pass the run directory to "
                "choose a step, or drop --step"
            )
        return CheckpointLocation(int(match.group(1)), step_dir, actor)

    matches = [STEP_DIR_RE.match(child.name) for child in path.iterdir() if child.is_dir()]
    steps, tracker = sorted(int(match.group(1)) for match in matches if match), path / TRACKER_FILE
    if not steps:
        raise CheckpointNotFoundError(
            f"{path} holds no global_step_N folder and no {TRACKER_FILE}: is it the trainer's default_local_dir? "
            "(trainer.default_local_dir, by default checkpoints/<project_name>/<experiment_name>)"
        )
    if wanted is None and tracker.exists():
        text = tracker.read_text().strip()
        if not text.isdigit():
            raise CheckpointNotFoundError(
                f"{tracker} should hold a step number but holds {text!r}; pass --step N to choose the step yourself"
            )
        wanted = int(text)
    elif wanted is None:
        wanted = steps[-1]
        logger.warning("%s has no %s; converting the highest step found, %d", path, TRACKER_FILE, wanted)
    step_dir = path / f"global_step_{wanted}"
    if wanted not in steps:
        source = f" ({TRACKER_FILE} names step {wanted})" if latest and tracker.exists() else ""
        raise CheckpointNotFoundError(
            f"{step_dir} does not exist{source}; available steps: {', '.join(map(str, steps))}; pass one with --step"
        )
    return CheckpointLocation(wanted, step_dir, _actor_of(step_dir))
