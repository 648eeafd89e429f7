"""One table and one plot comparing CPU training runs of several length-shaping methods (``make compare``).

Each run is the CPU demo (recipes/run_demo_cpu.sh) with ``algorithm.adv_estimator=<method>``; its verl ``file``
logger writes ``metrics.jsonl`` (one ``{"step": N, "data": {...}}`` line per step). Read from every run:

- per training step: training accuracy (``critic/score/mean``, verl's mean outcome score, which is the accuracy
  with the 1/0 scorer; the method's ``<method>/accuracy/mean`` when verl's key is missing) and mean response tokens
  (``response_length/mean``);
- the final validation accuracy (``val-core/.../acc/mean@N``) and mean response tokens
  (``val-aux/.../response_length/mean@N``), and the same before training when ``trainer.val_before_train`` ran;
- AES against the reference method (default ``grpo``), the paper's accuracy-efficiency score
  (:func:`smartthinker_verl.evaluation.report.accuracy_efficiency_score`).

CLI: ``python -m smartthinker_verl.demo.compare_report --run grpo=DIR/metrics.jsonl --run smartthinker=... --out DIR``
writes ``DIR/compare.md`` and ``DIR/compare.png`` and prints the table.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from smartthinker_verl.demo.report import (
    KeyOf,
    first_and_last,
    read_metrics,
    validation_accuracy_key,
    validation_tokens_key,
)
from smartthinker_verl.errors import DataError, SmartThinkerError
from smartthinker_verl.evaluation.report import MISSING, aes_or_none, markdown_table, pyplot, save_figure

logger = logging.getLogger(__name__)

TRAIN_ACCURACY = "critic/score/mean"
TRAIN_TOKENS = "response_length/mean"
NOTE = (
    "A few CPU steps on a 135M model show the mechanics of each method (its reward, its metrics, the same verl "
    "trainer), not the paper's result: the differences here are within the noise of a handful of sampled groups."
)


@dataclass
class RunMetrics:
    """One method's run: per-step training curves and validation before/after."""

    method: str
    steps: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    tokens: list[float] = field(default_factory=list)
    val_accuracy: dict[str, float] = field(default_factory=dict)  # "before" / "after"
    val_tokens: dict[str, float] = field(default_factory=dict)


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
    run.val_accuracy = _before_after(records, validation_accuracy_key)
    run.val_tokens = _before_after(records, validation_tokens_key)
    if not run.steps:
        raise DataError(f"{path}: no training step with {TRAIN_ACCURACY} and {TRAIN_TOKENS}; is it a training run?")
    return run


def _before_after(records: list[tuple[int, dict[str, float]]], key_of: KeyOf) -> dict[str, float]:
    """``{"before": first value, "after": last value}``; only "after" when the metric was logged at one step."""
    first, last = first_and_last(records, key_of)
    if last is None:
        return {}
    return {"after": last[1]} if first is None or first[0] == last[0] else {"before": first[1], "after": last[1]}


def _fmt(value: float | None, digits: int = 3) -> str:
    return MISSING if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def comparison_rows(runs: Sequence[RunMetrics], reference: str = "grpo") -> list[dict[str, object]]:
    """One row per run: first/last training accuracy and tokens, final validation accuracy and tokens, AES against
    the ``reference`` run's final validation (None where that run or a number is missing)."""
    ref = next((r for r in runs if r.method == reference), None)
    rows = []
    for run in runs:
        acc, tokens = run.val_accuracy.get("after"), run.val_tokens.get("after")
        aes = None
        if ref is not None and run is not ref:
            aes = aes_or_none(tokens, acc, ref.val_tokens.get("after"), ref.val_accuracy.get("after"))
        rows.append(
            {
                "method": run.method,
                "steps": len(run.steps),
                "train_accuracy_first": run.accuracy[0],
                "train_accuracy_last": run.accuracy[-1],
                "train_tokens_first": run.tokens[0],
                "train_tokens_last": run.tokens[-1],
                "val_accuracy_before": run.val_accuracy.get("before"),
                "val_accuracy": acc,
                "val_tokens_before": run.val_tokens.get("before"),
                "val_tokens": tokens,
                "aes": aes,
            }
        )
    return rows


def format_table(rows: Sequence[dict[str, object]], reference: str = "grpo") -> str:
    """Markdown: per method, training accuracy and tokens (first -> last step), validation before -> after, AES."""
    columns = [
        "method",
        "steps",
        "train accuracy (first -> last)",
        "train tokens (first -> last)",
        "val accuracy (before -> after)",
        "val tokens (before -> after)",
        f"AES vs {reference}",
    ]

    def pair(a, b, digits=3):
        return f"{_fmt(a, digits)} -> {_fmt(b, digits)}" if a is not None else _fmt(b, digits)

    cells = (
        [
            str(r["method"]),
            str(r["steps"]),
            pair(r["train_accuracy_first"], r["train_accuracy_last"]),
            pair(r["train_tokens_first"], r["train_tokens_last"], 1),
            pair(r["val_accuracy_before"], r["val_accuracy"]),
            pair(r["val_tokens_before"], r["val_tokens"], 1),
            "(reference)" if r["method"] == reference else _fmt(r["aes"], 2),  # type: ignore[arg-type]
        ]
        for r in rows
    )
    return "\n".join(markdown_table(columns, cells))


def plot(runs: Sequence[RunMetrics], out: str | Path) -> Path:
    """PNG: training accuracy and mean response tokens per step (one line per method), and final validation
    accuracy against tokens (one point per method)."""
    fig, (acc_ax, tok_ax, val_ax) = pyplot().subplots(1, 3, figsize=(15, 4.5))
    for run in runs:
        acc_ax.plot(run.steps, run.accuracy, marker="o", label=run.method)
        tok_ax.plot(run.steps, run.tokens, marker="o", label=run.method)
        acc, tokens = run.val_accuracy.get("after"), run.val_tokens.get("after")
        if acc is not None and tokens is not None:
            val_ax.scatter(tokens, acc, s=70, zorder=3)
            val_ax.annotate(run.method, (tokens, acc), textcoords="offset points", xytext=(5, 5), fontsize=9)
    acc_ax.set(title="training accuracy", xlabel="training step")
    tok_ax.set(title="mean response tokens (training)", xlabel="training step")
    val_ax.set(title="final validation", xlabel="mean response tokens", ylabel="accuracy")
    for axis in (acc_ax, tok_ax, val_ax):
        axis.grid(alpha=0.3)
    acc_ax.legend(fontsize=8)
    fig.suptitle("Length-shaping methods on CPU (verl trainer, the demo's setting): mechanics, not the paper's result")
    return save_figure(fig, out)


def _parse_run(text: str) -> tuple[str, Path]:
    method, sep, path = text.partition("=")
    if not sep or not method or not path:
        raise argparse.ArgumentTypeError(f"--run {text!r}: write METHOD=PATH/metrics.jsonl")
    return method, Path(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m smartthinker_verl.demo.compare_report", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--run", type=_parse_run, action="append", required=True, metavar="METHOD=METRICS_JSONL")
    parser.add_argument("--out", type=Path, required=True, help="folder for compare.md and compare.png")
    parser.add_argument("--reference", default="grpo", help="the method AES is measured against (default grpo)")
    args = parser.parse_args(argv)
    try:
        runs = [load_run(method, path) for method, path in args.run]
    except SmartThinkerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    table = format_table(comparison_rows(runs, args.reference), args.reference)
    text = f"{table}\n\n{NOTE}\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare.md").write_text(text)
    print(text)
    print(f"table: {args.out / 'compare.md'}\nplot: {plot(runs, args.out / 'compare.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
