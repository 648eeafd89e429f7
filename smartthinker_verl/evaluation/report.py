"""``smartthinker-verl report``: compare evaluations in a Markdown table (as in the paper) and a plot.

    smartthinker-verl report evals/smartthinker/res.json --baseline evals/base/res.json \\
        --out report.md --plot report.png

Table: one row per model, per benchmark ``mean tokens / pass@1 %``, their unweighted average over benchmarks and,
with ``--baseline``, the compression ``1 - tokens / baseline tokens`` (averaged over benchmarks) and the paper's
accuracy-efficiency score (AES, below) on the average; a second table gives each benchmark's compression and
accuracy change, a third each benchmark's AES. Plot: pass@1 against mean response tokens for every model and
benchmark, with a dashed line from the baseline to each model on the same benchmark, and one labelled point per
model at its average over the benchmarks.

AES (SmartThinker, arXiv 2603.08000), against the baseline (base) model, with L mean tokens and A pass@1:

    dL = (L_base - L) / L_base,  dA = (A - A_base) / A_base
    AES = dL + 3 * dA  if dA >= 0,  else  dL - 5 * |dA|

"On the average" it is computed from the average tokens and average accuracy over the benchmarks, not as the mean
of the per-benchmark scores: that is how the paper's AES column is computed (docs/evaluation.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smartthinker_verl.errors import ConfigError, DataError, SetupError, SmartThinkerError
from smartthinker_verl.evaluation.statistics import compression, mean_or_none

logger = logging.getLogger(__name__)

#: Paper order first, then any other benchmark alphabetically; display names of the known ones.
KNOWN_BENCHMARKS: dict[str, str] = {
    "aime24": "AIME24",
    "aime25": "AIME25",
    "amc23": "AMC23",
    "math500": "MATH500",
    "gsm8k": "GSM8K",
}
MISSING = "–"


@dataclass(frozen=True)
class ModelResult:
    """One evaluated model: its label and per-benchmark metrics (from ``res.json``)."""

    label: str
    benchmarks: dict[str, dict[str, Any]]

    def tokens(self, benchmark: str) -> float | None:
        return (self.benchmarks.get(benchmark) or {}).get("mean_response_tokens")

    def accuracy(self, benchmark: str) -> float | None:
        """pass@1 in percent."""
        value = (self.benchmarks.get(benchmark) or {}).get("pass@1")
        return None if value is None else 100.0 * value

    def mean_tokens(self, benchmarks: Sequence[str]) -> float | None:
        """Unweighted mean over ``benchmarks``; None when one is missing."""
        return mean_or_none([self.tokens(b) for b in benchmarks])

    def mean_accuracy(self, benchmarks: Sequence[str]) -> float | None:
        """pass@1 in percent, unweighted mean over ``benchmarks``; None when one is missing."""
        return mean_or_none([self.accuracy(b) for b in benchmarks])

    def accuracy_stderr(self, benchmark: str) -> float | None:
        value = (self.benchmarks.get(benchmark) or {}).get("pass@1_stderr")
        return None if value is None else 100.0 * value


def display_name(benchmark: str) -> str:
    key = benchmark.lower().replace("-", "").replace("_", "")
    return KNOWN_BENCHMARKS.get(key, benchmark)


def order_benchmarks(names: set[str] | Sequence[str]) -> list[str]:
    """The paper's order (AIME24, AIME25, AMC23, MATH500, GSM8K), then the rest alphabetically."""
    known = list(KNOWN_BENCHMARKS.values())

    def key(name: str) -> tuple[int, str]:
        shown = display_name(name)
        return (known.index(shown), name) if shown in known else (len(known), name)

    return sorted(set(names), key=key)


def model_result(results: dict[str, Any], label: str | None, path: str | Path) -> ModelResult:
    """A :class:`ModelResult` from a loaded ``res.json``; label: given, else the file's, else its folder's name."""
    path = Path(path)
    fallback = path.parent.name if path.name == "res.json" else path.stem
    return ModelResult(label=label or results.get("label") or fallback, benchmarks=dict(results["benchmarks"]))


#: AES weights (arXiv 2603.08000): accuracy gains count 3x, accuracy losses 5x, relative to length savings.
AES_GAIN_WEIGHT = 3.0
AES_LOSS_WEIGHT = 5.0


def accuracy_efficiency_score(tokens: float, accuracy: float, base_tokens: float, base_accuracy: float) -> float:
    """The paper's AES (module docstring) of a model (``tokens``, ``accuracy``) against the base model; accuracy
    in any unit (% or fraction) as long as both use the same one."""
    if base_tokens <= 0 or base_accuracy <= 0:
        raise DataError(
            f"AES needs a positive baseline length and accuracy, got {base_tokens} tokens and {base_accuracy}: "
            "check the --baseline res.json"
        )
    d_length = (base_tokens - tokens) / base_tokens
    d_accuracy = (accuracy - base_accuracy) / base_accuracy
    return d_length + AES_GAIN_WEIGHT * d_accuracy if d_accuracy >= 0 else d_length - AES_LOSS_WEIGHT * abs(d_accuracy)


def aes_or_none(
    tokens: float | None, accuracy: float | None, base_tokens: float | None, base_accuracy: float | None
) -> float | None:
    """:func:`accuracy_efficiency_score`, or None when a number is missing or the baseline's is zero."""
    if tokens is None or accuracy is None or not base_tokens or not base_accuracy:
        return None
    return accuracy_efficiency_score(tokens, accuracy, base_tokens, base_accuracy)


def average_aes(model: ModelResult, baseline: ModelResult, benchmarks: Sequence[str]) -> float | None:
    """AES of the average tokens and average accuracy over ``benchmarks`` (the paper's "Avg" column)."""
    return aes_or_none(
        model.mean_tokens(benchmarks),
        model.mean_accuracy(benchmarks),
        baseline.mean_tokens(benchmarks),
        baseline.mean_accuracy(benchmarks),
    )


def benchmark_aes(model: ModelResult, baseline: ModelResult, benchmark: str) -> float | None:
    """AES on one benchmark; None when a number is missing or the baseline has no length or accuracy there."""
    return average_aes(model, baseline, [benchmark])


def _score(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}"


def _row_label(model: ModelResult, baseline: ModelResult | None) -> str:
    return model.label + (" (baseline)" if model is baseline else "")


def _cell(tokens: float | None, accuracy: float | None, stderr: float | None = None) -> str:
    if tokens is None or accuracy is None:
        return MISSING
    acc = f"{accuracy:.1f}" + (f" ± {stderr:.1f}" if stderr is not None else "")
    return f"{tokens:.0f} / {acc}"


def average_compression(model: ModelResult, baseline: ModelResult, benchmarks: Sequence[str]) -> float | None:
    """Mean over ``benchmarks`` of ``1 - tokens / baseline tokens`` (in [-inf, 1]); None if any is missing."""
    values = []
    for b in benchmarks:
        tokens, base = model.tokens(b), baseline.tokens(b)
        values.append(None if tokens is None or not base else compression(tokens, base))
    return mean_or_none(values)


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The lines of a Markdown table: header, alignment (first column left, the others right), one per row."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(["---"] + ["---:"] * (len(columns) - 1)) + "|"]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows]


def _main_caption(baseline: ModelResult | None) -> str:
    """The sentence above the main table (explaining Compression and AES when there is a baseline)."""
    return "Mean response tokens / pass@1 (%) per benchmark; Average is the unweighted mean over benchmarks" + (
        "; Compression = 1 - tokens / baseline tokens, averaged over benchmarks; AES = the paper's "
        "accuracy-efficiency score of the averages against the baseline (dL + 3 dA, or dL - 5 |dA| when "
        "accuracy drops)."
        if baseline
        else "."
    )


def _main_row(
    model: ModelResult, baseline: ModelResult | None, benchmarks: Sequence[str], show_stderr: bool
) -> list[str]:
    """One model's row of the main table: ``tokens / pass@1`` per benchmark and on average, then vs the baseline."""
    cells = [_row_label(model, baseline)]
    for b in benchmarks:
        stderr = model.accuracy_stderr(b) if show_stderr else None
        cells.append(_cell(model.tokens(b), model.accuracy(b), stderr))
    cells.append(_cell(model.mean_tokens(benchmarks), model.mean_accuracy(benchmarks)))
    if baseline is not None:
        value = None if model is baseline else average_compression(model, baseline, benchmarks)
        cells.append(MISSING if value is None else f"{100 * value:.1f}%")
        cells.append(MISSING if model is baseline else _score(average_aes(model, baseline, benchmarks)))
    return cells


def _main_table(
    rows: Sequence[ModelResult], baseline: ModelResult | None, benchmarks: Sequence[str], show_stderr: bool
) -> list[str]:
    """The caption and the main table (one row per model)."""
    header = ["Model", *(display_name(b) for b in benchmarks), "Average"]
    if baseline is not None:
        header += ["Compression", "AES"]
    return [
        _main_caption(baseline),
        "",
        *markdown_table(header, (_main_row(model, baseline, benchmarks, show_stderr) for model in rows)),
    ]


def _change_row(model: ModelResult, baseline: ModelResult, benchmarks: Sequence[str]) -> list[str]:
    """One model's ``compression % / accuracy change`` per benchmark and their means."""
    cells, comps, deltas = [model.label], [], []
    for b in benchmarks:
        tokens, base_tokens = model.tokens(b), baseline.tokens(b)
        acc, base_acc = model.accuracy(b), baseline.accuracy(b)
        comp = None if tokens is None or not base_tokens else 100 * compression(tokens, base_tokens)
        delta = None if acc is None or base_acc is None else acc - base_acc
        comps.append(comp)
        deltas.append(delta)
        cells.append(MISSING if comp is None or delta is None else f"{comp:.1f} / {delta:+.1f}")
    comp, delta = mean_or_none(comps), mean_or_none(deltas)
    cells.append(MISSING if comp is None or delta is None else f"{comp:.1f} / {delta:+.1f}")
    return cells


def _change_table(models: Sequence[ModelResult], baseline: ModelResult, benchmarks: Sequence[str]) -> list[str]:
    """The per-benchmark compression and accuracy-change table (baseline excluded)."""
    return [
        "",
        f"Compression (%) / accuracy change (points) against {baseline.label}, per benchmark:",
        "",
        *markdown_table(
            ["Model", *(display_name(b) for b in benchmarks), "Average"],
            (_change_row(model, baseline, benchmarks) for model in models),
        ),
    ]


def _aes_table(models: Sequence[ModelResult], baseline: ModelResult, benchmarks: Sequence[str]) -> list[str]:
    """The per-benchmark AES table, with the AES of the averages last (baseline excluded)."""
    rows = (
        [model.label, *(_score(benchmark_aes(model, baseline, b)) for b in benchmarks)]
        + [_score(average_aes(model, baseline, benchmarks))]
        for model in models
    )
    return [
        "",
        f"Accuracy-efficiency score (AES) against {baseline.label}, per benchmark and on the average:",
        "",
        *markdown_table(["Model", *(display_name(b) for b in benchmarks), "Average"], rows),
    ]


def markdown_tables(
    models: Sequence[ModelResult], baseline: ModelResult | None = None, *, show_stderr: bool = False
) -> str:
    """The comparison as Markdown: the main table, and per-benchmark compression when there is a baseline.

    Rows: the baseline first (when given), then ``models`` in order. Cells: ``tokens / pass@1 %``.
    """
    rows = ([baseline] if baseline is not None else []) + list(models)
    if not rows:
        raise ConfigError("no results to report; pass at least one res.json")
    benchmarks = order_benchmarks({b for m in rows for b in m.benchmarks})
    lines = _main_table(rows, baseline, benchmarks, show_stderr)
    if baseline is not None and models:
        lines += _change_table(models, baseline, benchmarks)
        lines += _aes_table(models, baseline, benchmarks)
    return "\n".join(lines) + "\n"


#: Plot markers, one per benchmark (cycled).
_PLOT_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend; :class:`SetupError` with the fix when missing."""
    try:
        import matplotlib
    except ImportError as error:
        raise SetupError(f"the plot needs matplotlib ({error}): pip install -e .[plot], or pass --no-plot") from error

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, **savefig: Any) -> Path:
    """Write a matplotlib figure as a PNG (making its folder; ``savefig``: more ``fig.savefig`` arguments), close
    it and return the path."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, **{"dpi": 100, **savefig})
    pyplot().close(fig)
    return path


def _plot_benchmark_points(
    ax: Any, rows: Sequence[ModelResult], baseline: ModelResult | None, benchmarks: Sequence[str], colors: list[str]
) -> None:
    """One point per model and benchmark, dashed from the baseline's point on the same benchmark."""
    for i, model in enumerate(rows):
        color = colors[i % len(colors)]
        for j, b in enumerate(benchmarks):
            tokens, acc = model.tokens(b), model.accuracy(b)
            if tokens is None or acc is None:
                continue
            ax.scatter(tokens, acc, color=color, marker=_PLOT_MARKERS[j % len(_PLOT_MARKERS)], s=60, zorder=3)
            if baseline is not None and model is not baseline:
                base_tokens, base_acc = baseline.tokens(b), baseline.accuracy(b)
                if base_tokens is not None and base_acc is not None:
                    ax.plot([base_tokens, tokens], [base_acc, acc], color=color, ls="--", lw=1, alpha=0.6)


def _plot_averages(ax: Any, rows: Sequence[ModelResult], benchmarks: Sequence[str], colors: list[str]) -> None:
    """One labelled star per model at its average over the benchmarks."""
    for i, model in enumerate(rows):
        tokens, acc = model.mean_tokens(benchmarks), model.mean_accuracy(benchmarks)
        if tokens is None or acc is None:
            continue
        color = colors[i % len(colors)]
        ax.scatter(tokens, acc, color=color, marker="*", s=220, edgecolors="black", zorder=4)
        ax.annotate(model.label, (tokens, acc), textcoords="offset points", xytext=(6, 6), fontsize=8)


def _plot_axes(ax: Any, title: str | None) -> None:
    """Axis labels, grid and title."""
    ax.set_xlabel("mean response tokens")
    ax.set_ylabel("pass@1 (%)")
    ax.grid(alpha=0.3)
    ax.set_title(title or "Accuracy vs response length")


def _plot_legends(
    ax: Any, rows: Sequence[ModelResult], baseline: ModelResult | None, benchmarks: Sequence[str], colors: list[str]
) -> list[Any]:
    """The model (colour) and benchmark (marker) legends, outside the axes so that they never hide a point."""
    from matplotlib.lines import Line2D

    model_handles = [
        Line2D([], [], color=colors[i % len(colors)], marker="o", ls="", label=_row_label(m, baseline))
        for i, m in enumerate(rows)
    ]
    bench_handles = [
        Line2D([], [], color="grey", marker=_PLOT_MARKERS[j % len(_PLOT_MARKERS)], ls="", label=display_name(b))
        for j, b in enumerate(benchmarks)
    ]
    if len(benchmarks) > 1:
        bench_handles.append(Line2D([], [], color="grey", marker="*", ms=12, ls="", label="average"))
    first = ax.legend(handles=model_handles, title="model", loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    ax.add_artist(first)
    second = ax.legend(handles=bench_handles, title="benchmark", loc="lower left", bbox_to_anchor=(1.02, 0), fontsize=8)
    return [first, second]


def plot_accuracy_vs_tokens(
    models: Sequence[ModelResult], baseline: ModelResult | None, path: str | Path, *, title: str | None = None
) -> Path:
    """Write a PNG: pass@1 (%) against mean response tokens, one colour per model, one marker per benchmark."""
    plt = pyplot()
    rows = ([baseline] if baseline is not None else []) + list(models)
    benchmarks = order_benchmarks({b for m in rows for b in m.benchmarks})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, ax = plt.subplots(figsize=(9, 5))
    _plot_benchmark_points(ax, rows, baseline, benchmarks, colors)
    if len(benchmarks) > 1:  # one point per model: its average over the benchmarks, labelled
        _plot_averages(ax, rows, benchmarks, colors)
    _plot_axes(ax, title)
    legends = _plot_legends(ax, rows, baseline, benchmarks, colors)
    return save_figure(fig, path, dpi=150, bbox_inches="tight", bbox_extra_artists=legends)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("results", nargs="+", metavar="RES.json", help="res.json files of `smartthinker-verl eval`")
    parser.add_argument("--baseline", metavar="RES.json", help="the base model's res.json (compression reference)")
    parser.add_argument("--labels", nargs="+", help="model names, one per RES.json (default: from each res.json)")
    parser.add_argument("--baseline-label", help="name of the baseline (default: from its res.json)")
    parser.add_argument("--out", help="write the Markdown here (default: print it)")
    parser.add_argument("--plot", help="PNG path of the plot (default: next to --out, else report.png)")
    parser.add_argument("--no-plot", action="store_true", help="tables only")
    parser.add_argument("--stderr", action="store_true", help="show the standard error of pass@1 per benchmark")


def run(args: argparse.Namespace) -> int:
    from smartthinker_verl.evaluation.summary import load_results

    try:
        if args.labels and len(args.labels) != len(args.results):
            raise ConfigError(f"{len(args.labels)} --labels for {len(args.results)} results: give one per RES.json")
        labels = args.labels or [None] * len(args.results)
        models = [model_result(load_results(p), label, p) for p, label in zip(args.results, labels, strict=True)]
        baseline = (
            model_result(load_results(args.baseline), args.baseline_label, args.baseline) if args.baseline else None
        )
    except SmartThinkerError as error:
        print(f"smartthinker-verl report: error: {error}", file=sys.stderr)
        return 2
    text = markdown_tables(models, baseline, show_stderr=args.stderr)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"table: {args.out}")
    else:
        print(text)
    if not args.no_plot:
        plot_path = args.plot or (str(Path(args.out).with_suffix(".png")) if args.out else "report.png")
        try:
            plot_accuracy_vs_tokens(models, baseline, plot_path)
        except SetupError as error:
            print(f"smartthinker-verl report: error: {error}", file=sys.stderr)
            return 2
        print(f"plot: {plot_path}")
    return 0
