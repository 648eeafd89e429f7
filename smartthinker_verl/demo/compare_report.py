"""Tables and a plot comparing CPU training runs of several length-shaping methods, per difficulty level, with
intervals over seeds (``make compare``).

Each run is the CPU demo (recipes/run_demo_cpu.sh) with ``algorithm.adv_estimator=<method>`` and a seed; its verl
``file`` logger writes ``metrics.jsonl`` (one ``{"step": N, "data": {...}}`` line per step). Read from every run:

- the final validation accuracy (``val-core/<source>/acc/mean@N``) and mean response tokens
  (``val-aux/<source>/response_length/mean@N``) per data source (the demo's difficulty levels), and the same before
  training where a run validated then (the base model: the same for every method and seed, greedy validation);
- per training step: training accuracy (``critic/score/mean``, the mean 1/0 outcome score; the method's
  ``<method>/accuracy/mean`` when verl's key is missing) and mean response tokens (``response_length/mean``).

Per method and level the table gives the mean over seeds ± its 95% Student-t interval, and AES (the paper's
accuracy-efficiency score) of the means against the reference.

CLI: ``python -m smartthinker_verl.demo.compare_report --run grpo=DIR/metrics.jsonl --run grpo=DIR2/metrics.jsonl
--run smartthinker=... --out DIR`` (one --run per method and seed) writes ``DIR/compare.md`` and ``DIR/compare.png``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from smartthinker_verl.cli import exit_status
from smartthinker_verl.demo.report import level_name, read_metrics, validation
from smartthinker_verl.errors import DataError
from smartthinker_verl.evaluation.report import MISSING, accuracy_efficiency_score, markdown_table, pyplot, save_figure
from smartthinker_verl.evaluation.statistics import t_interval_half_width

TRAIN_ACCURACY = "critic/score/mean"
TRAIN_TOKENS = "response_length/mean"
#: Student's t quantile 0.975 for 1..10 degrees of freedom.
ALL_LEVELS = "all levels"
BASE = "base model (before)"
NOTE = (
    "Mean over seeds ± the half-width of its 95% Student-t interval over seeds (none with one seed). Validation is "
    "greedy, so a seed changes only the training (rollout sampling, data order); the data are the same for every "
    "method and seed. 'all levels' is the mean of the levels (equal sizes)."
)


@dataclass
class RunMetrics:
    """One run (a method and a seed): training curves and validation (accuracy, tokens) per data source."""

    method: str
    steps: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    tokens: list[float] = field(default_factory=list)
    before: dict[str, tuple[float, float]] = field(default_factory=dict)
    after: dict[str, tuple[float, float]] = field(default_factory=dict)


def load_run(method: str, path: str | Path) -> RunMetrics:
    """Read a run's verl file-logger JSONL (see :func:`smartthinker_verl.demo.report.read_metrics`)."""
    run = RunMetrics(method)
    records = read_metrics(path)
    for step, values in records:
        accuracy = values.get(TRAIN_ACCURACY, values.get(f"{method}/accuracy/mean"))
        if accuracy is not None and TRAIN_TOKENS in values:
            run.steps.append(step)
            run.accuracy.append(accuracy)
            run.tokens.append(values[TRAIN_TOKENS])
    if not run.steps:
        raise DataError(f"{path}: no training step with {TRAIN_ACCURACY} and {TRAIN_TOKENS}; is it a training run?")
    for source, (accuracy, tokens) in validation(records).items():
        if not accuracy or not tokens or accuracy[-1][0] < run.steps[-1]:
            continue  # not validated after the last training step
        run.after[source] = (accuracy[-1][1], tokens[-1][1])
        if accuracy[0][0] < run.steps[0]:
            run.before[source] = (accuracy[0][1], tokens[0][1])
    return run


def mean_interval(values: Sequence[float]) -> tuple[float, float | None]:
    """``(mean, half-width of its 95% t interval)``; the half-width is None for one value."""
    return statistics.fmean(values), t_interval_half_width(values)


def _with_all(pairs: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    if len(pairs) > 1:
        pairs = {**pairs, ALL_LEVELS: tuple(statistics.fmean(p[i] for p in pairs.values()) for i in (0, 1))}
    return pairs


def level_rows(runs: Sequence[RunMetrics], reference: str = "grpo") -> list[dict[str, object]]:
    """One row per (level, method) with final validation (mean, half-width) of accuracy and tokens over the method's
    runs, their count, and AES of the means against ``reference``; first per level the base model (before)."""
    methods = list(dict.fromkeys(run.method for run in runs))
    finals = {m: [_with_all(r.after) for r in runs if r.method == m] for m in methods}
    levels = list(dict.fromkeys(level for runs_of in finals.values() for pairs in runs_of for level in pairs))
    before = next((_with_all(r.before) for r in runs if r.before), {})
    rows: list[dict[str, object]] = []
    for level in levels:
        if level in before:
            acc, tokens = before[level]
            rows.append({"level": level, "method": BASE, "runs": 1, "acc": (acc, None), "tokens": (tokens, None)})
        stats = {}
        for method in methods:
            values = [pairs[level] for pairs in finals[method] if level in pairs]
            if values:
                stats[method] = [mean_interval([v[i] for v in values]) for i in (0, 1)] + [len(values)]
        ref = stats.get(reference)
        for method, (acc, tokens, count) in stats.items():
            aes = None
            if ref is not None and method != reference:
                aes = accuracy_efficiency_score(tokens[0], acc[0], ref[1][0], ref[0][0])
            rows.append({"level": level, "method": method, "runs": count, "acc": acc, "tokens": tokens, "aes": aes})
    return rows


def _interval(value: tuple[float, float | None], digits: int) -> str:
    mean, half = value
    return f"{mean:.{digits}f}" + ("" if half is None else f" ± {half:.{digits}f}")


def format_level_table(rows: Sequence[dict[str, object]], reference: str = "grpo") -> str:
    """Markdown: per level and method, final validation accuracy and mean response tokens (mean ± 95% over
    seeds) and AES against ``reference``."""
    columns = ["level", "method", "seeds", "val accuracy", "val mean response tokens", f"AES vs {reference}"]
    cells = []
    for row in rows:
        aes = {reference: "(reference)", BASE: ""}.get(str(row["method"]), MISSING)
        aes = f"{row['aes']:.2f}" if row.get("aes") is not None else aes
        cells.append([level_name(str(row["level"])), str(row["method"]), str(row["runs"])])
        cells[-1] += [_interval(row["acc"], 3), _interval(row["tokens"], 1), aes]  # type: ignore[arg-type]
    return "\n".join(markdown_table(columns, cells))


def format_training_table(runs: Sequence[RunMetrics]) -> str:
    """Markdown: per method, training accuracy and tokens on the first and last step (means over seeds)."""
    columns = ["method", "seeds", "steps", "train accuracy (first -> last)", "train tokens (first -> last)"]
    cells = []
    for method in dict.fromkeys(run.method for run in runs):
        mine = [run for run in runs if run.method == method]
        acc, tok = (
            [statistics.fmean(getattr(r, name)[end] for r in mine) for end in (0, -1)]
            for name in ("accuracy", "tokens")
        )
        steps = "/".join(sorted({str(len(r.steps)) for r in mine}))
        cells.append([method, str(len(mine)), steps, f"{acc[0]:.3f} -> {acc[1]:.3f}", f"{tok[0]:.1f} -> {tok[1]:.1f}"])
    return "\n".join(markdown_table(columns, cells))


def plot(runs: Sequence[RunMetrics], rows: Sequence[dict[str, object]], out: str | Path) -> Path:
    """PNG: per level, final validation accuracy and tokens per method with 95% intervals over seeds (top row,
    bottom row), and the training curves (mean over seeds) in the last column."""
    levels = list(dict.fromkeys(str(row["level"]) for row in rows))
    fig, axes = pyplot().subplots(2, len(levels) + 1, figsize=(4 * (len(levels) + 1), 7), squeeze=False)
    for column, level in enumerate(levels):
        mine = [row for row in rows if row["level"] == level]
        names = [str(row["method"]).replace(" (before)", "") for row in mine]
        for axis, key, title in ((axes[0][column], "acc", "accuracy"), (axes[1][column], "tokens", "tokens")):
            means = [row[key][0] for row in mine]  # type: ignore[index]
            errors = [row[key][1] or 0.0 for row in mine]  # type: ignore[index]
            axis.bar(range(len(mine)), means, yerr=errors, capsize=4, color=[f"C{i}" for i in range(len(mine))])
            axis.set_xticks(range(len(mine)), names, rotation=30, ha="right", fontsize=8)
            axis.set_title(f"{level_name(level)}: val {title}")
            axis.grid(alpha=0.3, axis="y")
    for method in dict.fromkeys(run.method for run in runs):
        mine = [run for run in runs if run.method == method]
        steps = min(len(run.steps) for run in mine)
        for axis, name in ((axes[0][-1], "accuracy"), (axes[1][-1], "tokens")):
            curve = [statistics.fmean(getattr(run, name)[i] for run in mine) for i in range(steps)]
            axis.plot(mine[0].steps[:steps], curve, marker="o", label=method)
    axes[0][-1].set(title="training accuracy (mean over seeds)", xlabel="training step")
    axes[1][-1].set(title="training mean response tokens", xlabel="training step")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle("Length-shaping methods on CPU (verl trainer, the demo's setting), 95% intervals over seeds")
    return save_figure(fig, out)


def _parse_run(text: str) -> tuple[str, Path]:
    method, sep, path = text.partition("=")
    if not sep or not method or not path:
        raise argparse.ArgumentTypeError(f"--run {text!r}: write METHOD=PATH/metrics.jsonl")
    return method, Path(path)


def write_comparison(run_paths: Sequence[tuple[str, Path]], out: Path, reference: str) -> None:
    """Print the tables and write ``out/compare.md`` and ``out/compare.png``."""
    runs = [load_run(method, path) for method, path in run_paths]
    rows = level_rows(runs, reference)
    text = (
        f"{format_level_table(rows, reference)}\n\n{NOTE}\n\nTraining (mean over seeds):\n\n"
        f"{format_training_table(runs)}\n"
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(text)
    print(text)
    print(f"table: {out / 'compare.md'}\nplot: {plot(runs, rows, out / 'compare.png')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m smartthinker_verl.demo.compare_report", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--run", type=_parse_run, action="append", required=True, metavar="METHOD=METRICS_JSONL")
    parser.add_argument("--out", type=Path, required=True, help="folder for compare.md and compare.png")
    parser.add_argument("--reference", default="grpo", help="the method AES is measured against (default grpo)")
    args = parser.parse_args(argv)
    return exit_status(parser.prog, lambda: write_comparison(args.run, args.out, args.reference))


if __name__ == "__main__":
    sys.exit(main())
