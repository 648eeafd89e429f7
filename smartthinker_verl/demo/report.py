"""Before/after table and per-step plot of a CPU run, read from verl's ``file`` logger (JSONL, one line per step).

verl's ``FileLogger`` writes ``{"step": N, "data": {metric: value}}`` per logged step (to ``$VERL_FILE_LOGGER_PATH``,
which the CPU recipes set to ``$OUTPUT_DIR/metrics.jsonl``). This module reads it back and reports:

- validation accuracy and mean response tokens, before training (``trainer.val_before_train``) and after, overall
  and per data source (the demo's difficulty levels);
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


def validation_sources(records: Iterable[tuple[int, dict[str, float]]]) -> list[str]:
    """The data sources validated in ``records`` (verl logs ``val-core/<source>/acc/mean@N`` per source)."""
    marker = "/acc/mean@"
    keys = {key for _, values in records for key in values if key.startswith("val-core/") and marker in key}
    return sorted(key[len("val-core/") : key.rindex(marker)] for key in keys)


def source_keys(source: str) -> tuple[KeyOf, KeyOf]:
    """(accuracy, mean response tokens) key finders of one validation data source."""
    return (
        lambda record: _first_key(record, f"val-core/{source}/acc/", "/mean@"),
        lambda record: _first_key(record, f"val-aux/{source}/response_length/", "/mean@"),
    )


def level_name(source: str) -> str:
    """A data source's short name in tables: its last path part (``reasoning_gym/chain_sum/terms2`` -> terms2)."""
    return source.rsplit("/", 1)[-1]


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


def _row(label: str, before: tuple[int, float] | None, after: tuple[int, float] | None) -> dict[str, Any]:
    return {
        "metric": label,
        "before": before[1] if before else math.nan,
        "after": after[1] if after else math.nan,
        "before_step": before[0] if before else None,
        "after_step": after[0] if after else None,
    }


def summarize(records: list[tuple[int, dict[str, float]]]) -> list[dict[str, Any]]:
    """Rows ``{metric, before, after, before_step, after_step}`` of the before/after table: validation accuracy and
    mean response tokens (the mean over data sources, all of one size in the demo, then one row per source when
    there are several), then the training metrics."""
    sources = validation_sources(records)
    per_source = {source: [first_and_last(records, key_of) for key_of in source_keys(source)] for source in sources}
    rows = []
    for position, label in enumerate(("validation accuracy", "validation mean response tokens")):
        pairs = [pairs[position] for pairs in per_source.values()]
        merged = []
        for end in (0, 1):
            points = [pair[end] for pair in pairs if pair[end] is not None]
            full = pairs and len(points) == len(pairs)
            merged.append((points[0][0], sum(p[1] for p in points) / len(points)) if full else None)
        rows.append(_row(label, *merged))
    for source in sources if len(sources) > 1 else []:
        rows.append(_row(f"validation accuracy, {level_name(source)}", *per_source[source][0]))
        rows.append(_row(f"validation mean response tokens, {level_name(source)}", *per_source[source][1]))
    for key, title in PLOTTED[:4]:
        rows.append(_row(title, *first_and_last(records, lambda _, key=key: key)))
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
