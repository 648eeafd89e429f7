"""Before/after table and per-step plot of a CPU run, read from verl's ``file`` logger (JSONL, one line per step).

verl's ``FileLogger`` writes ``{"step": N, "data": {metric: value}}`` per logged step (to ``$VERL_FILE_LOGGER_PATH``,
which the CPU recipes set to ``$OUTPUT_DIR/metrics.jsonl``). This module reads it back and reports:

- validation accuracy and mean response tokens, before training (``trainer.val_before_train``) and after;
- SmartThinker's optimal length and coefficient on the first and last training steps (mixed groups only);
- a PNG with the per-step training metrics.

CLI: ``python -m smartthinker_verl.demo.report METRICS_JSONL [--out DIR]`` prints the table (Markdown) and writes
``DIR/report.md`` and ``DIR/metrics.png``.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from smartthinker_verl.data import read_jsonl
from smartthinker_verl.errors import DataError, MissingFileError, SmartThinkerError
from smartthinker_verl.evaluation.report import markdown_table, pyplot, save_figure

logger = logging.getLogger(__name__)

#: Names the metric to read in one step's record (None: not logged at that step).
KeyOf = Callable[[dict[str, float]], str | None]

#: Per-step training metrics plotted, (key, title); the first four are also in the table.
PLOTTED: tuple[tuple[str, str], ...] = (
    ("smartthinker/accuracy/mean", "training accuracy"),
    ("response_length/mean", "training mean response tokens"),
    ("smartthinker/optimal_length/mean", "optimal length (mixed groups)"),
    ("smartthinker/coefficient/mean", "length coefficient (mixed groups)"),
    ("smartthinker/shaped_group_frac", "fraction of groups shaped"),
    ("actor/grad_norm", "gradient norm"),
)


def read_metrics(path: str | Path) -> list[tuple[int, dict[str, float]]]:
    """(step, metrics) records of a verl file-logger JSONL, in file order; numeric values only."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist: run training with trainer.logger=[console,file] first")
    records = []
    for number, entry in enumerate(read_jsonl(path, allow_partial_tail=True), start=1):
        try:
            step, data = int(entry["step"]), dict(entry["data"])
        except (ValueError, KeyError, TypeError) as error:
            raise DataError(f"{path}: entry {number}: not a verl file-logger line ({error!r})") from error
        values = {k: float(v) for k, v in data.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        records.append((step, values))
    if not records:
        raise DataError(f"{path} holds no logged steps")
    return records


def _first_key(record: dict[str, float], prefix: str, marker: str) -> str | None:
    keys = sorted(k for k in record if k.startswith(prefix) and marker in k)
    return keys[0] if keys else None


def validation_accuracy_key(record: dict[str, float]) -> str | None:
    """verl's validation accuracy key in a record (the first data source's), if the step validated."""
    return _first_key(record, "val-core/", "/acc/mean@")


def validation_tokens_key(record: dict[str, float]) -> str | None:
    """verl's validation mean response length key in a record (the first data source's)."""
    return _first_key(record, "val-aux/", "/response_length/mean@")


def _pick(records: Iterable[tuple[int, dict[str, float]]], key_of: KeyOf) -> tuple[int, float] | None:
    for step, values in records:
        key = key_of(values)
        if key is not None and key in values and not math.isnan(values[key]):
            return step, values[key]
    return None


def first_and_last(
    records: list[tuple[int, dict[str, float]]], key_of: KeyOf
) -> tuple[tuple[int, float] | None, tuple[int, float] | None]:
    """The first and the last ``(step, value)`` of the metric that ``key_of(record)`` names (NaN values skipped)."""
    return _pick(records, key_of), _pick(reversed(records), key_of)


def summarize(records: list[tuple[int, dict[str, float]]]) -> list[dict[str, Any]]:
    """Rows ``{metric, before, after, before_step, after_step}`` of the before/after table."""
    metrics: list[tuple[str, KeyOf]] = [
        ("validation accuracy", validation_accuracy_key),
        ("validation mean response tokens", validation_tokens_key),
    ]
    metrics += [(title, lambda _, key=key: key) for key, title in PLOTTED[:4]]
    rows = []
    for label, key_of in metrics:
        before, after = first_and_last(records, key_of)
        rows.append(
            {
                "metric": label,
                "before": before[1] if before else math.nan,
                "after": after[1] if after else math.nan,
                "before_step": before[0] if before else None,
                "after_step": after[0] if after else None,
            }
        )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`summarize` rows (``n/a`` where a metric never appeared)."""

    def cell(value: float, step: int | None) -> str:
        return "n/a" if math.isnan(value) else f"{value:.3f} (step {step})"

    cells = ([r["metric"], cell(r["before"], r["before_step"]), cell(r["after"], r["after_step"])] for r in rows)
    return "\n".join(markdown_table(["metric", "before", "after"], cells))


def plot(records: list[tuple[int, dict[str, float]]], out: str | Path) -> Path:
    """Write a PNG grid of the per-step training metrics (NaN steps are gaps)."""
    plt = pyplot()
    training = [(s, v) for s, v in records if "smartthinker/accuracy/mean" in v]
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
    for axis, (key, title) in zip(axes.flat, PLOTTED, strict=True):
        points = [(s, v[key]) for s, v in training if key in v]
        if points:
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o")
        axis.set_title(title)
        axis.set_xlabel("training step")
        axis.grid(alpha=0.3)
    fig.suptitle("SmartThinker on CPU: per-step metrics (verl trainer)")
    return save_figure(fig, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smartthinker_verl.demo.report", description=__doc__.split("\n")[0])
    parser.add_argument("metrics", type=Path, help="verl file-logger JSONL (VERL_FILE_LOGGER_PATH)")
    parser.add_argument("--out", type=Path, default=None, help="folder for report.md and metrics.png")
    args = parser.parse_args(argv)
    try:
        records = read_metrics(args.metrics)
    except SmartThinkerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    table = format_table(summarize(records))
    print(table)
    out = args.out or args.metrics.parent
    (out / "report.md").write_text(table + "\n")
    print(f"\nplot: {plot(records, out / 'metrics.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
