"""Before/after table and per-step plot of a CPU run, read from verl's ``file`` logger (JSONL, one line per step).

verl's ``FileLogger`` writes ``{"step": N, "data": {metric: value}}`` per logged step (to ``$VERL_FILE_LOGGER_PATH``,
which the CPU recipes set to ``$OUTPUT_DIR/metrics.jsonl``); the table's rows are :func:`summarize`'s (docs/cpu.md).

CLI: ``python -m smartthinker_verl.demo.report METRICS_JSONL [--out DIR]`` prints the table (Markdown) and writes
``DIR/report.md`` and ``DIR/metrics.png``.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Any

from smartthinker_verl.cli import exit_status
from smartthinker_verl.data import read_jsonl
from smartthinker_verl.errors import DataError, MissingFileError
from smartthinker_verl.evaluation.report import markdown_table, pyplot, save_figure

#: A metric's (step, value) points, in file order.
Points = list[tuple[int, float]]

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


def points(records: list[tuple[int, dict[str, float]]], key: str) -> Points:
    """The (step, value) points of metric ``key``, NaN values skipped."""
    return [(step, values[key]) for step, values in records if key in values and not math.isnan(values[key])]


def validation(records: list[tuple[int, dict[str, float]]]) -> dict[str, tuple[Points, Points]]:
    """Per validated data source, in name order: the points of its accuracy (verl's
    ``val-core/<source>/acc/mean@N``; the first N by name when there are several) and of its mean response tokens
    (``val-aux/<source>/response_length/mean@N``)."""
    means: dict[str, str] = {}
    for key in sorted({key for _, values in records for key in values}):
        if match := re.fullmatch(r"val-core/(.+)/acc/(mean@\d+)", key):
            means.setdefault(match[1], match[2])
    return {
        source: (
            points(records, f"val-core/{source}/acc/{mean}"),
            points(records, f"val-aux/{source}/response_length/{mean}"),
        )
        for source, mean in sorted(means.items())
    }


def level_name(source: str) -> str:
    """A data source's short name in tables: its last path part (``reasoning_gym/chain_sum/terms2`` -> terms2)."""
    return source.rsplit("/", 1)[-1]


def _row(label: str, series: Points) -> dict[str, Any]:
    """A table row of the first and last point of ``series`` (NaN, at no step, when it is empty)."""
    (before_step, before), (after_step, after) = (series[0], series[-1]) if series else [(None, math.nan)] * 2
    return {"metric": label, "before": before, "after": after, "before_step": before_step, "after_step": after_step}


def summarize(records: list[tuple[int, dict[str, float]]]) -> list[dict[str, Any]]:
    """Rows ``{metric, before, after, before_step, after_step}`` of the before/after table: the first and last value
    of validation accuracy and mean response tokens (the mean over data sources, all of one size in the demo, then
    one row per source when there are several), then of the training metrics."""
    sources = validation(records)
    labels = ("validation accuracy", "validation mean response tokens")
    rows = []
    for position, label in enumerate(labels):
        series = [pair[position] for pair in sources.values()]
        full = series and all(series)  # then the means over sources, at the first source's first and last step
        means = [(series[0][end][0], sum(s[end][1] for s in series) / len(series)) for end in (0, -1)] if full else []
        rows.append(_row(label, means))
    for source, pair in sources.items() if len(sources) > 1 else []:
        rows += [_row(f"{label}, {level_name(source)}", s) for label, s in zip(labels, pair, strict=True)]
    return rows + [_row(title, points(records, key)) for key, title in PLOTTED[:4]]


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
        logged = [(s, v[key]) for s, v in training if key in v]
        if logged:
            axis.plot(*zip(*logged, strict=True), marker="o")
        axis.set(title=title, xlabel="training step")
        axis.grid(alpha=0.3)
    fig.suptitle("SmartThinker on CPU: per-step metrics (verl trainer)")
    return save_figure(fig, out)


def write_report(metrics: Path, out: Path) -> None:
    """Print the table and write ``out/report.md`` and ``out/metrics.png``."""
    records = read_metrics(metrics)
    table = format_table(summarize(records))
    print(table)
    (out / "report.md").write_text(table + "\n")
    print(f"\nplot: {plot(records, out / 'metrics.png')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smartthinker_verl.demo.report", description=__doc__.split("\n")[0])
    parser.add_argument("metrics", type=Path, help="verl file-logger JSONL (VERL_FILE_LOGGER_PATH)")
    parser.add_argument("--out", type=Path, default=None, help="folder for report.md and metrics.png")
    args = parser.parse_args(argv)
    return exit_status(parser.prog, lambda: write_report(args.metrics, args.out or args.metrics.parent))


if __name__ == "__main__":
    sys.exit(main())
