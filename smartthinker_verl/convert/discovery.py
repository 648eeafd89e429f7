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
    """Where one step's checkpoint lives; ``run_dir`` is None when the step folder is not inside a run directory."""

    step: int
    step_dir: Path
    actor_dir: Path
    run_dir: Path | None

    def default_output(self) -> Path:
        """``RUN_DIR/hf/global_step_N`` (RUN_DIR = the folder holding ``global_step_N``)."""
        return (self.run_dir or self.step_dir.parent) / "hf" / self.step_dir.name


def _is_actor_dir(path: Path) -> bool:
    return (path / "fsdp_config.json").exists() or any(path.glob("model_world_size_*_rank_*.pt"))


def available_steps(run_dir: Path) -> list[int]:
    """Steps that have a ``global_step_N`` folder under ``run_dir``, ascending."""
    steps = []
    for child in run_dir.iterdir() if run_dir.is_dir() else []:
        match = STEP_DIR_RE.match(child.name)
        if match and child.is_dir():
            steps.append(int(match.group(1)))
    return sorted(steps)


def _read_tracker(run_dir: Path) -> int | None:
    tracker = run_dir / TRACKER_FILE
    if not tracker.exists():
        return None
    text = tracker.read_text().strip()
    if not text.isdigit():
        raise CheckpointNotFoundError(
            f"{tracker} should hold a step number but holds {text!r}; pass --step N to choose the step yourself"
        )
    return int(text)


def _parse_step(step: int | str | None) -> int | None:
    """``None``/``"latest"`` -> None (use the tracker); ``"12"``/``12`` -> 12."""
    if step is None or step == "latest":
        return None
    try:
        value = int(step)
    except (TypeError, ValueError):
        raise CheckpointNotFoundError(f"--step must be a step number or 'latest', got {step!r}") from None
    if value < 0:
        raise CheckpointNotFoundError(f"--step must be >= 0, got {value}")
    return value


def _step_of(step_dir: Path) -> int | None:
    match = STEP_DIR_RE.match(step_dir.name)
    return int(match.group(1)) if match else None


def _from_step_dir(step_dir: Path, actor_dir: Path, wanted: int | None) -> CheckpointLocation:
    step = _step_of(step_dir)
    if step is None:
        raise CheckpointNotFoundError(
            f"{actor_dir} is not inside a global_step_N folder, so its training step is unknown; "
            "pass the trainer's run directory or its global_step_N folder instead"
        )
    if wanted is not None and wanted != step:
        raise CheckpointNotFoundError(
            f"--step {wanted} contradicts the checkpoint given ({step_dir.name}); pass the run directory to choose "
            "a step, or drop --step"
        )
    run_dir = step_dir.parent
    run_dir = run_dir if (run_dir / TRACKER_FILE).exists() or available_steps(run_dir) else None
    return CheckpointLocation(step=step, step_dir=step_dir, actor_dir=actor_dir, run_dir=run_dir)


def locate_checkpoint(path: str | Path, step: int | str | None = None) -> CheckpointLocation:
    """Resolve ``path`` and ``step`` to one checkpoint. For a run dir, ``None``/``"latest"`` reads the tracker file
    (without one: the highest ``global_step_N``, with a warning). ``CheckpointNotFoundError`` names the steps that
    exist."""
    path = Path(path).expanduser().resolve()
    wanted = _parse_step(step)
    if not path.exists():
        raise CheckpointNotFoundError(f"{path} does not exist; pass the trainer's default_local_dir (RUN_DIR)")
    if not path.is_dir():
        raise CheckpointNotFoundError(f"{path} is a file; pass a folder (RUN_DIR, global_step_N or its actor/)")

    if _is_actor_dir(path):
        return _from_step_dir(path.parent, path, wanted)
    if STEP_DIR_RE.match(path.name):
        actor = path / "actor"
        if not _is_actor_dir(actor):
            raise CheckpointNotFoundError(f"{path} has no actor checkpoint (expected {actor}/fsdp_config.json)")
        return _from_step_dir(path, actor, wanted)

    steps = available_steps(path)
    tracked = _read_tracker(path)
    if not steps:
        raise CheckpointNotFoundError(
            f"{path} holds no global_step_N folder and no {TRACKER_FILE}: is it the trainer's default_local_dir? "
            "(trainer.default_local_dir, by default checkpoints/<project_name>/<experiment_name>)"
        )
    if wanted is None:
        if tracked is None:
            wanted = steps[-1]
            logger.warning("%s has no %s; converting the highest step found, %d", path, TRACKER_FILE, wanted)
        else:
            wanted = tracked
    step_dir = path / f"global_step_{wanted}"
    if wanted not in steps:
        source = f"{TRACKER_FILE} names step {wanted}" if tracked == wanted and step in (None, "latest") else ""
        raise CheckpointNotFoundError(
            f"{step_dir} does not exist{' (' + source + ')' if source else ''}; available steps: "
            f"{', '.join(map(str, steps))}; pass one with --step"
        )
    actor = step_dir / "actor"
    if not _is_actor_dir(actor):
        raise CheckpointNotFoundError(f"{step_dir} has no actor checkpoint (expected {actor}/fsdp_config.json)")
    return CheckpointLocation(step=wanted, step_dir=step_dir, actor_dir=actor, run_dir=path)
