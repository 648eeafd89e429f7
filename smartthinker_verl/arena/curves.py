"""Difficulty levels of the arena: P(correct | response length) per level, and each level's critical length.

A level's curve is either parametric,

    acc(l) = best * (1 - exp(-(l / scale) ** shape)) * max(0, 1 - decline * max(0, l - onset) / 1000),

a Weibull-shaped rise that saturates at ``best`` (harder levels: larger ``scale``, lower ``best``), optionally
declining past ``onset`` tokens by ``decline`` of its accuracy per 1,000 tokens (over-thinking), or tabulated:
``points`` = [[length, accuracy], ...], linearly interpolated (constant beyond the ends), e.g. measured from the
records of ``smartthinker-verl eval``. The **critical length** of a level is the shortest length whose accuracy
reaches :data:`CRITICAL_FRACTION` of the level's best accuracy within the length limit. docs/arena.md documents the
defaults and the file format.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smartthinker_verl.errors import ConfigError, MissingFileError

#: A level's critical length reaches this fraction of its best accuracy.
CRITICAL_FRACTION = 0.95
#: verl's response limit in the project's recipes is 8,000; the arena uses 8,192 tokens.
DEFAULT_MAX_LENGTH = 8192
#: Accuracy lost per 1,000 tokens past a level's critical length in the over-thinking variant.
OVERTHINKING_DECLINE = 0.04


@dataclasses.dataclass(frozen=True)
class Level:
    """One difficulty level: a name and its accuracy curve (parametric fields, or ``points``)."""

    name: str
    best: float = 1.0
    scale: float = 1000.0
    shape: float = 2.0
    decline: float = 0.0
    onset: float | None = None
    points: tuple[tuple[float, float], ...] = ()

    def accuracy(self, lengths: torch.Tensor) -> torch.Tensor:
        """``[N]`` P(correct) of responses of ``lengths`` ``[N]`` tokens (float64)."""
        lengths = lengths.to(torch.float64)
        if self.points:
            xs, ys = zip(*self.points, strict=True)
            return torch.from_numpy(np.interp(lengths.numpy(), xs, ys))
        rise = self.best * (1 - torch.exp(-((lengths / self.scale) ** self.shape)))
        onset = self.onset if self.onset is not None else self.rise_critical_length()
        return rise * (1 - self.decline * (lengths - onset).clamp(min=0) / 1000).clamp(min=0)

    def rise_critical_length(self) -> float:
        """Where the rising part alone reaches :data:`CRITICAL_FRACTION` of ``best`` (the default ``onset``)."""
        return self.scale * (-math.log(1 - CRITICAL_FRACTION)) ** (1 / self.shape)

    def table(self, max_length: int) -> torch.Tensor:
        """``[max_length + 1]`` accuracy at every length 0..max_length."""
        return self.accuracy(torch.arange(max_length + 1))

    def critical_length(self, max_length: int) -> int:
        """The shortest length in 1..max_length reaching :data:`CRITICAL_FRACTION` of the best accuracy there."""
        accuracy = self.table(max_length)[1:]
        return int(torch.nonzero(accuracy >= CRITICAL_FRACTION * accuracy.max())[0]) + 1


#: Easiest to hardest: critical lengths ~180, ~830, ~2,100, ~4,300, ~6,200 tokens (docs/arena.md: sources).
DEFAULT_LEVELS: tuple[Level, ...] = (
    Level("trivial", best=0.98, scale=60, shape=1.0),
    Level("easy", best=0.95, scale=400, shape=1.5),
    Level("medium", best=0.85, scale=1200, shape=2.0),
    Level("hard", best=0.65, scale=2500, shape=2.0),
    Level("very_hard", best=0.40, scale=4000, shape=2.5),
)


def overthinking(levels: tuple[Level, ...]) -> tuple[Level, ...]:
    """The same levels, each declining by OVERTHINKING_DECLINE per 1,000 tokens past its rise's critical length."""
    return tuple(dataclasses.replace(level, decline=OVERTHINKING_DECLINE, onset=None) for level in levels)


_FIELDS = {f.name for f in dataclasses.fields(Level)}


def load_levels(path: str | Path) -> tuple[Level, ...]:
    """Levels from a JSON or YAML file ``{"levels": [{"name": ..., <curve fields>}, ...]}`` (docs/arena.md)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"curve file {path} does not exist. Fix: pass a JSON or YAML file (docs/arena.md)")
    text = path.read_text()
    if path.suffix == ".json":
        content = json.loads(text)
    else:
        import yaml

        content = yaml.safe_load(text)
    entries = content.get("levels") if isinstance(content, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected a mapping with a non-empty list 'levels'. Fix: see docs/arena.md")
    return tuple(_level(entry, f"{path}: levels[{i}]") for i, entry in enumerate(entries))


def _level(entry: Any, where: str) -> Level:
    if not isinstance(entry, dict) or "name" not in entry:
        raise ConfigError(f"{where} must be a mapping with a 'name'. Fix: {{name: easy, best: 0.9, scale: 500}}")
    unknown = set(entry) - _FIELDS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}. Fix: use only {sorted(_FIELDS)}")
    if "points" in entry:
        points = entry["points"]
        ok = isinstance(points, list) and len(points) >= 2 and all(isinstance(p, list) and len(p) == 2 for p in points)
        if not ok:
            raise ConfigError(f"{where}.points must be >= 2 pairs [length, accuracy]. Fix: [[0, 0.0], [2000, 0.8]]")
        lengths = [float(p[0]) for p in points]
        if any(b <= a for a, b in zip(lengths, lengths[1:], strict=False)) or lengths[0] < 0:
            raise ConfigError(f"{where}.points: lengths must be >= 0 and strictly increasing. Fix: sort them")
        if not all(0 <= float(p[1]) <= 1 for p in points):
            raise ConfigError(f"{where}.points: accuracies must lie in [0, 1]. Fix: use fractions, not percentages")
        return Level(str(entry["name"]), points=tuple((float(x), float(y)) for x, y in points))
    level = Level(**{k: (float(v) if k not in ("name", "onset") else v) for k, v in entry.items()})
    checks = (
        (0 < level.best <= 1, "best must lie in (0, 1]"),
        (level.scale > 0, "scale must be > 0 tokens"),
        (level.shape > 0, "shape must be > 0"),
        (0 <= level.decline <= 1, "decline must lie in [0, 1] (accuracy lost per 1,000 tokens)"),
    )
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"{where} ({level.name}): {message}. Fix: change that key")
    return level
