"""The arena's results: per method and level, mean and 95% interval over seeds (Student t), as ``arena.json``,
``arena.md`` (tables) and ``arena.png`` (length and accuracy per level over the steps)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from smartthinker_verl.arena.curves import CRITICAL_FRACTION
from smartthinker_verl.arena.estimators import REFERENCE
from smartthinker_verl.arena.loop import ArenaSpec, Trajectory
from smartthinker_verl.evaluation.report import markdown_table, pyplot, save_figure
from smartthinker_verl.evaluation.statistics import compression, t_interval_half_width


def interval(values: Sequence[float]) -> dict[str, float]:
    """``{"mean", "low", "high"}``: the mean and its 95% t interval (low = high = mean for one value)."""
    mean = float(np.mean(values))
    half = t_interval_half_width([float(v) for v in values]) or 0.0
    return {"mean": mean, "low": mean - half, "high": mean + half}


def summarise(spec: ArenaSpec, trajectories: Sequence[Trajectory], wall_time_s: float | None = None) -> dict[str, Any]:
    """The content of ``arena.json``: the spec, each level's critical length and best accuracy, and per method and
    level the final length, accuracy, their ratios, the tokens saved against ``grpo`` (paired by seed), the curves
    over the steps (means over seeds), and per method the lowest advantage any correct response got."""
    critical = [lv.critical_length(spec.max_length) for lv in spec.levels]
    best = [float(lv.table(spec.max_length)[1:].max()) for lv in spec.levels]
    by_method: dict[str, list[Trajectory]] = {}
    for trajectory in trajectories:
        by_method.setdefault(trajectory.method, []).append(trajectory)
    reference = {t.seed: t for t in by_method.get(REFERENCE, [])}
    methods = {}
    for method, runs in by_method.items():
        levels = {}
        for i, level in enumerate(spec.levels):
            lengths = [t.final_length[i] for t in runs]
            accuracies = [t.final_accuracy[i] for t in runs]
            saved = [compression(t.final_length[i], reference[t.seed].final_length[i]) for t in runs if reference]
            levels[level.name] = {
                "critical_length": critical[i],
                "length": interval(lengths),
                "length_ratio": interval([v / critical[i] for v in lengths]),
                "accuracy": interval(accuracies),
                "accuracy_ratio": interval([v / best[i] for v in accuracies]),
                "tokens_saved_vs_grpo": interval(saved) if saved else None,
                "length_per_step": np.mean([t.length[:, i] for t in runs], axis=0).round(1).tolist(),
                "accuracy_per_step": np.mean([t.accuracy[:, i] for t in runs], axis=0).round(4).tolist(),
            }
        lowest = float(min(t.min_correct_advantage.min() for t in runs))  # inf: no correct response at all
        methods[method] = {
            "seeds": [t.seed for t in runs],
            "levels": levels,
            "min_correct_advantage": lowest if math.isfinite(lowest) else None,
        }
    spec_fields = {k: v for k, v in dataclasses.asdict(spec).items() if k != "levels"}
    return {
        "spec": spec_fields,
        "levels": [
            {**dataclasses.asdict(lv), "critical_length": c, "best_accuracy": b}
            for lv, c, b in zip(spec.levels, critical, best, strict=True)
        ],
        "methods": methods,
        "wall_time_s": wall_time_s,
    }


def _cell(stat: dict[str, float] | None, digits: int, ratio: dict[str, float] | None = None) -> str:
    if stat is None:
        return "-"
    text = f"{stat['mean']:,.{digits}f} [{stat['low']:,.{digits}f}, {stat['high']:,.{digits}f}]"
    return text + (f" ({ratio['mean']:.2f}x)" if ratio else "")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def markdown(summary: dict[str, Any]) -> str:
    """``arena.md``: the levels, then final length (x critical), accuracy (x best) and tokens saved against grpo."""
    levels = summary["levels"]
    names = [lv["name"] for lv in levels]
    methods = summary["methods"]
    seeds = len(next(iter(methods.values()))["seeds"]) if methods else 0
    lines = [
        f"# Length arena ({summary['spec']['steps']} steps, {seeds} seeds, mean [95% interval])",
        "",
        f"Critical length: the shortest length reaching {CRITICAL_FRACTION:.0%} of the level's best accuracy.",
        "",
        *markdown_table(
            ["level", "critical length", "best accuracy"],
            [[lv["name"], f"{lv['critical_length']:,}", f"{lv['best_accuracy']:.3f}"] for lv in levels],
        ),
    ]
    tables = (
        ("Final mean length, tokens (ratio to the critical length)", "length", 0, "length_ratio"),
        ("Final accuracy (ratio to the level's best)", "accuracy", 3, "accuracy_ratio"),
        ("Tokens saved against grpo (fraction of grpo's length)", "tokens_saved_vs_grpo", 2, None),
    )
    for title, key, digits, ratio in tables:
        rows = [
            [method, *(_cell(m["levels"][n][key], digits, ratio and m["levels"][n][ratio]) for n in names)]
            for method, m in methods.items()
        ]
        lines += ["", f"## {title}", "", *markdown_table(["method", *names], rows)]
    lowest = ", ".join(f"{method} {_number(m['min_correct_advantage'])}" for method, m in methods.items())
    lines += ["", f"Lowest advantage of a correct response over all steps and seeds: {lowest}."]
    if summary.get("wall_time_s") is not None:
        lines += ["", f"Wall time: {summary['wall_time_s']:.0f} s."]
    return "\n".join(lines) + "\n"


def plot(summary: dict[str, Any], path: str | Path) -> Path:
    """``arena.png``: per level (columns) the mean length (top) and accuracy (bottom) of every method over the
    steps (lengths on a log scale), with the critical length and the best accuracy dashed."""
    plt = pyplot()
    levels = summary["levels"]
    fig, axes = plt.subplots(2, len(levels), figsize=(2.6 * len(levels), 4.6), sharex=True, squeeze=False)
    for i, level in enumerate(levels):
        top, bottom = axes[0][i], axes[1][i]
        for method, m in summary["methods"].items():
            curves = m["levels"][level["name"]]
            top.plot(curves["length_per_step"], lw=1, label=method)
            bottom.plot(curves["accuracy_per_step"], lw=1)
        top.axhline(level["critical_length"], color="k", ls="--", lw=0.8)
        bottom.axhline(level["best_accuracy"], color="k", ls="--", lw=0.8)
        top.set_yscale("log")
        top.set_ylim(50, 1.2 * summary["spec"]["max_length"])
        top.set_title(level["name"], fontsize=9)
        bottom.set_xlabel("step", fontsize=8)
        bottom.set_ylim(0, 1.02)
    axes[0][0].set_ylabel("mean length (tokens)", fontsize=8)
    axes[1][0].set_ylabel("accuracy", fontsize=8)
    for axis in axes.flat:
        axis.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=6, frameon=False)
    return save_figure(fig, path, dpi=80)


def write(summary: dict[str, Any], out: str | Path, *, with_plot: bool = True) -> list[Path]:
    """Write ``arena.json``, ``arena.md`` and (``with_plot``) ``arena.png`` into ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "arena.json").write_text(json.dumps(summary, indent=1, allow_nan=False))
    (out / "arena.md").write_text(markdown(summary))
    written = [out / "arena.json", out / "arena.md"]
    return written + ([plot(summary, out / "arena.png")] if with_plot else [])
