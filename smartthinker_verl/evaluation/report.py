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
import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smartthinker_verl.errors import ConfigError, DataError, MissingFileError, SetupError
from smartthinker_verl.evaluation.statistics import compression, mean_or_none

#: The paper's benchmarks in its order, as shown (any other benchmark follows, alphabetically, under its own name).
KNOWN_BENCHMARKS = ["AIME24", "AIME25", "AMC23", "MATH500", "GSM8K"]
MISSING = "–"


@dataclass(frozen=True)
class ModelResult:
    """One evaluated model: its label and per-benchmark metrics (from ``res.json``)."""

    label: str
    benchmarks: dict[str, dict[str, Any]]

    def metric(self, benchmark: str, key: str, scale: float = 1.0) -> float | None:
        value = (self.benchmarks.get(benchmark) or {}).get(key)
        return None if value is None else scale * value

    def point(self, benchmarks: Sequence[str]) -> tuple[float | None, float | None]:
        """Mean response tokens and pass@1 (%), unweighted means over ``benchmarks``; None when one is missing."""
        tokens = mean_or_none([self.metric(b, "mean_response_tokens") for b in benchmarks])
        return tokens, mean_or_none([self.metric(b, "pass@1", 100.0) for b in benchmarks])


def display_name(benchmark: str) -> str:
    key = benchmark.lower().replace("-", "").replace("_", "")
    return next((name for name in KNOWN_BENCHMARKS if name.lower() == key), benchmark)


def order_benchmarks(names: set[str] | Sequence[str]) -> list[str]:
    """The paper's order (``KNOWN_BENCHMARKS``), then the rest alphabetically."""

    def key(name: str) -> tuple[int, str]:
        shown = display_name(name)
        return (KNOWN_BENCHMARKS.index(shown) if shown in KNOWN_BENCHMARKS else len(KNOWN_BENCHMARKS), name)

    return sorted(set(names), key=key)


def _label(model: ModelResult, baseline: ModelResult | None) -> str:
    return model.label + (" (baseline)" if model is baseline else "")


def accuracy_efficiency_score(
    tokens: float | None, accuracy: float | None, base_tokens: float | None, base_accuracy: float | None
) -> float | None:
    """The paper's AES (module docstring) of a model (``tokens``, ``accuracy``) against the base model; accuracy
    in any unit (% or fraction) as long as both use the same one. None when a number is missing or the baseline's
    is zero."""
    if tokens is None or accuracy is None or not base_tokens or not base_accuracy:
        return None
    if base_tokens < 0 or base_accuracy < 0:
        raise DataError(
            f"AES needs a positive baseline length and accuracy, got {base_tokens} tokens and {base_accuracy}: "
            "check the --baseline res.json"
        )
    d_length = (base_tokens - tokens) / base_tokens
    d_accuracy = (accuracy - base_accuracy) / base_accuracy
    # Accuracy gains count 3x, accuracy losses 5x, relative to length savings (arXiv 2603.08000).
    return d_length + 3.0 * d_accuracy if d_accuracy >= 0 else d_length - 5.0 * abs(d_accuracy)


def average_aes(model: ModelResult, baseline: ModelResult, benchmarks: Sequence[str]) -> float | None:
    """AES of the average tokens and average accuracy over ``benchmarks`` (the paper's "Avg" column; one
    benchmark: that benchmark's AES)."""
    return accuracy_efficiency_score(*model.point(benchmarks), *baseline.point(benchmarks))


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The lines of a Markdown table: header, alignment (first column left, the others right), one per row."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(["---"] + ["---:"] * (len(columns) - 1)) + "|"]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows]


def _cell(tokens: float | None, accuracy: float | None, stderr: float | None = None) -> str:
    if tokens is None or accuracy is None:
        return MISSING
    return f"{tokens:.0f} / {accuracy:.1f}" + (f" ± {stderr:.1f}" if stderr is not None else "")


def _score(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}"


def _compressions(model: ModelResult, baseline: ModelResult, benchmarks: Sequence[str]) -> list[float | None]:
    """``100 * (1 - tokens / baseline tokens)`` per benchmark; None where a number is missing."""
    values = [(model.metric(b, "mean_response_tokens"), baseline.metric(b, "mean_response_tokens")) for b in benchmarks]
    return [None if tokens is None or not base else 100 * compression(tokens, base) for tokens, base in values]


def markdown_tables(
    models: Sequence[ModelResult], baseline: ModelResult | None = None, *, show_stderr: bool = False
) -> str:
    """The comparison as Markdown: the main table (rows: the baseline first, then ``models``; cells: ``tokens /
    pass@1 %``) and, when there is a baseline, per-benchmark compression and accuracy change and per-benchmark AES
    (baseline excluded)."""
    rows = ([baseline] if baseline is not None else []) + list(models)
    benchmarks = order_benchmarks({b for m in rows for b in m.benchmarks})
    columns = [[b] for b in benchmarks] + [benchmarks]  # each benchmark, then the average over them
    header = ["Model", *(display_name(b) for b in benchmarks), "Average"]
    main = []
    for model in rows:
        stderrs = [model.metric(b, "pass@1_stderr", 100.0) if show_stderr else None for b in benchmarks] + [None]
        cells = [_label(model, baseline), *(_cell(*model.point(c), se) for c, se in zip(columns, stderrs, strict=True))]
        if baseline is not None:
            comp = None if model is baseline else mean_or_none(_compressions(model, baseline, benchmarks))
            cells.append(MISSING if comp is None else f"{comp:.1f}%")
            cells.append(MISSING if model is baseline else _score(average_aes(model, baseline, benchmarks)))
        main.append(cells)
    caption = "Mean response tokens / pass@1 (%) per benchmark; Average is the unweighted mean over benchmarks"
    if baseline is not None:
        caption += (
            "; Compression = 1 - tokens / baseline tokens, averaged over benchmarks; AES = the paper's "
            "accuracy-efficiency score of the averages against the baseline (dL + 3 dA, or dL - 5 |dA| when "
            "accuracy drops)"
        )
    main_header = header + (["Compression", "AES"] if baseline is not None else [])
    lines = [caption + ".", "", *markdown_table(main_header, main)]
    if baseline is None or not models:
        return "\n".join(lines) + "\n"
    changes, scores = [], []
    for model in models:
        comps = _compressions(model, baseline, benchmarks)
        accuracies = [(model.point([b])[1], baseline.point([b])[1]) for b in benchmarks]
        deltas = [None if a is None or base is None else a - base for a, base in accuracies]
        pairs = [*zip(comps, deltas, strict=True), (mean_or_none(comps), mean_or_none(deltas))]
        changes.append([model.label, *(MISSING if c is None or d is None else f"{c:.1f} / {d:+.1f}" for c, d in pairs)])
        scores.append([model.label, *(_score(average_aes(model, baseline, c)) for c in columns)])
    lines += ["", f"Compression (%) / accuracy change (points) against {baseline.label}, per benchmark:", ""]
    lines += markdown_table(header, changes)
    lines += ["", f"Accuracy-efficiency score (AES) against {baseline.label}, per benchmark and on the average:", ""]
    lines += markdown_table(header, scores)
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


def plot_accuracy_vs_tokens(models: Sequence[ModelResult], baseline: ModelResult | None, path: str | Path) -> Path:
    """Write a PNG: pass@1 (%) against mean response tokens, one colour per model, one marker per benchmark.

    Each model's point on a benchmark is dashed from the baseline's there; with several benchmarks a labelled star
    marks each model's average. The legends stand outside the axes, so that they never hide a point.
    """
    plt = pyplot()
    from matplotlib.lines import Line2D

    rows = ([baseline] if baseline is not None else []) + list(models)
    benchmarks = order_benchmarks({b for m in rows for b in m.benchmarks})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = dict(zip(benchmarks, itertools.cycle(_PLOT_MARKERS)))
    fig, ax = plt.subplots(figsize=(9, 5))
    model_handles = []
    for i, model in enumerate(rows):
        color = colors[i % len(colors)]
        model_handles.append(Line2D([], [], color=color, marker="o", ls="", label=_label(model, baseline)))
        for b, marker in markers.items():
            tokens, acc = model.point([b])
            if tokens is None or acc is None:
                continue
            ax.scatter(tokens, acc, color=color, marker=marker, s=60, zorder=3)
            base = baseline.point([b]) if baseline is not None else (None,)
            if model is not baseline and None not in base:
                ax.plot([base[0], tokens], [base[1], acc], color=color, ls="--", lw=1, alpha=0.6)
        tokens, acc = model.point(benchmarks)
        if len(benchmarks) > 1 and tokens is not None and acc is not None:
            ax.scatter(tokens, acc, color=color, marker="*", s=220, edgecolors="black", zorder=4)
            ax.annotate(model.label, (tokens, acc), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel("mean response tokens")
    ax.set_ylabel("pass@1 (%)")
    ax.grid(alpha=0.3)
    ax.set_title("Accuracy vs response length")
    bench_handles = [Line2D([], [], color="grey", marker=m, ls="", label=display_name(b)) for b, m in markers.items()]
    if len(benchmarks) > 1:
        bench_handles.append(Line2D([], [], color="grey", marker="*", ms=12, ls="", label="average"))
    first = ax.legend(handles=model_handles, title="model", loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    ax.add_artist(first)
    second = ax.legend(handles=bench_handles, title="benchmark", loc="lower left", bbox_to_anchor=(1.02, 0), fontsize=8)
    return save_figure(fig, path, dpi=150, bbox_inches="tight", bbox_extra_artists=[first, second])


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
    if args.labels and len(args.labels) != len(args.results):
        raise ConfigError(f"{len(args.labels)} --labels for {len(args.results)} results: give one per RES.json")
    labels = args.labels or [None] * len(args.results)
    models = [_model_result(path, label) for path, label in zip(args.results, labels, strict=True)]
    baseline = _model_result(args.baseline, args.baseline_label) if args.baseline else None
    text = markdown_tables(models, baseline, show_stderr=args.stderr)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"table: {args.out}")
    else:
        print(text)
    if not args.no_plot:
        plot_path = args.plot or (str(Path(args.out).with_suffix(".png")) if args.out else "report.png")
        plot_accuracy_vs_tokens(models, baseline, plot_path)
        print(f"plot: {plot_path}")
    return 0


def _model_result(path: str, label: str | None) -> ModelResult:
    """The :class:`ModelResult` of a ``res.json``; label: given, else the file's, else its folder's name."""
    if not Path(path).is_file():
        raise MissingFileError(f"{path} does not exist; create it with `smartthinker-verl eval ... --out`")
    try:
        results = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise DataError(f"{path} is not valid JSON ({error}); pass a res.json of `smartthinker-verl eval`") from error
    if not isinstance(results, dict) or not isinstance(results.get("benchmarks"), dict):
        raise DataError(f"{path} has no 'benchmarks' metrics; pass a res.json written by `smartthinker-verl eval`")
    fallback = Path(path).parent.name if Path(path).name == "res.json" else Path(path).stem
    return ModelResult(label=label or results.get("label") or fallback, benchmarks=dict(results["benchmarks"]))
