"""The model card (``README.md``) of a converted model, and the run information it is built from.

Run config: ``--run-config``, else ``config.yaml`` or ``.hydra/config.yaml`` in RUN_DIR or ``global_step_N``.
Metrics (verl's file logger): ``--metrics``, else ``RUN_DIR/metrics.jsonl``, else ``$VERL_FILE_LOGGER_PATH``. Both are
optional; the card says what it could not find.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from huggingface_hub import ModelCard, ModelCardData

from .discovery import CheckpointLocation
from .errors import ConversionError

logger = logging.getLogger(__name__)

CONFIG_CANDIDATES = ("config.yaml", ".hydra/config.yaml")
METRICS_CANDIDATES = ("metrics.jsonl",)
KEY_METRIC_PREFIXES = (
    "val-core/",
    "critic/score/mean",
    "response_length/mean",
    "response_length/clip_ratio",
    "smartthinker/accuracy/mean",
    "smartthinker/optimal_length/mean",
    "smartthinker/coefficient/mean",
    "smartthinker/penalized_frac",
)
CONFIG_COPY_NAME = "training_config.yaml"
CARD_TAGS = ("verl", "smartthinker", "reasoning", "grpo")


@dataclass
class RunInfo:
    """What is known about the run that produced the checkpoint."""

    config: dict | None = None
    config_path: Path | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_path: Path | None = None

    def get(self, dotted: str, default=None):
        """``get("algorithm.adv_estimator")`` on the run config (``default`` when absent)."""
        node = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node


def _first_existing(candidates: list[Path]) -> Path | None:
    return next((p for p in candidates if p.is_file()), None)


def _read_metrics(path: Path, step: int) -> dict[str, float]:
    """All metrics logged at ``step`` (later lines win)."""
    merged: dict[str, float] = {}
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            logger.warning("%s:%d is not JSON; skipped", path, line_no)
            continue
        if isinstance(row, dict) and row.get("step") == step and isinstance(row.get("data"), dict):
            merged.update({k: v for k, v in row["data"].items() if isinstance(v, (int, float))})
    return merged


def read_run_info(location: CheckpointLocation, config_path: str | None, metrics_path: str | None) -> RunInfo:
    """Load the run config and the metrics of ``location.step``; explicit paths must exist."""
    info = RunInfo()
    roots = [p for p in (location.run_dir, location.step_dir) if p is not None]
    if config_path:
        info.config_path = Path(config_path).expanduser()
        if not info.config_path.is_file():
            raise ConversionError(f"--run-config {info.config_path} does not exist")
    else:
        info.config_path = _first_existing([root / name for root in roots for name in CONFIG_CANDIDATES])
    if info.config_path:
        try:
            loaded = yaml.safe_load(info.config_path.read_text())
        except yaml.YAMLError as exc:
            logger.warning("%s is not valid YAML (%s); the model card omits the run config", info.config_path, exc)
            loaded = None
        info.config = loaded if isinstance(loaded, dict) else None
        if info.config is None:
            logger.warning("%s is not a YAML mapping; the model card omits the run config", info.config_path)
    if metrics_path:
        info.metrics_path = Path(metrics_path).expanduser()
        if not info.metrics_path.is_file():
            raise ConversionError(f"--metrics {info.metrics_path} does not exist")
    else:
        candidates = [root / name for root in roots for name in METRICS_CANDIDATES]
        if os.environ.get("VERL_FILE_LOGGER_PATH"):
            candidates.append(Path(os.environ["VERL_FILE_LOGGER_PATH"]).expanduser())
        info.metrics_path = _first_existing(candidates)
    if info.metrics_path:
        info.metrics = _read_metrics(info.metrics_path, location.step)
    return info


def base_model_of(info: RunInfo) -> str | None:
    path = info.get("actor_rollout_ref.model.path")
    return str(path) if path else None


def key_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics worth a line in the card, in a stable order."""
    return {k: metrics[k] for k in sorted(metrics) if k.startswith(KEY_METRIC_PREFIXES)}


def _files_list(value) -> str:
    if value is None:
        return "not recorded"
    items = value if isinstance(value, (list, tuple)) else [value]
    return ", ".join(f"`{item}`" for item in items)


def _algorithm_cell(info: RunInfo) -> str:
    """The card's "Algorithm" cell: the run config's estimator, else a guess from the logged metrics."""
    estimator = info.get("algorithm.adv_estimator")
    if estimator:
        return f"`{estimator}`"
    if any(k.startswith("smartthinker/") for k in info.metrics):
        return "`smartthinker` (from the logged `smartthinker/` metrics; no run config found)"
    return "not recorded (no run config found)"


def _summary_lines(
    location: CheckpointLocation, info: RunInfo, dtype: str, dtype_source: str, lora: str | None, base_model: str | None
) -> list[str]:
    """The title, the one-sentence description and the summary table."""
    title = info.get("trainer.experiment_name") or location.step_dir.parent.name
    return [
        f"# {title} (step {location.step})",
        "",
        "A reasoning model trained with reinforcement learning in verl, converted from the FSDP checkpoint "
        f"`{location.actor_dir}` by `smartthinker-verl convert`.",
        "",
        "| | |",
        "|---|---|",
        f"| Base model | {f'`{base_model}`' if base_model else 'not recorded'} |",
        f"| Training step | {location.step} |",
        f"| Algorithm | {_algorithm_cell(info)} |",
        f"| Weights | {dtype} ({dtype_source}){'; ' + lora if lora else ''} |",
        f"| Training data | {_files_list(info.get('data.train_files'))} |",
        f"| Validation data | {_files_list(info.get('data.val_files'))} |",
    ]


def _algorithm_option_lines(info: RunInfo) -> list[str]:
    """The "Algorithm options" section (empty when the run config records none)."""
    options = info.get("algorithm.smartthinker")
    algorithm = info.get("algorithm") or {}
    if not (isinstance(options, dict) or "norm_adv_by_std_in_grpo" in algorithm):
        return []
    lines = ["", "## Algorithm options", ""]
    for key, value in sorted((options or {}).items()):
        lines.append(f"- `algorithm.smartthinker.{key}`: `{value}`")
    if "norm_adv_by_std_in_grpo" in algorithm:
        lines.append(f"- `algorithm.norm_adv_by_std_in_grpo`: `{algorithm['norm_adv_by_std_in_grpo']}`")
    return lines


def _metrics_lines(location: CheckpointLocation, info: RunInfo) -> list[str]:
    """The "Metrics at step N" section."""
    metrics = key_metrics(info.metrics)
    lines = ["", f"## Metrics at step {location.step}", ""]
    if metrics:
        lines += [f"- `{k}`: {v:.4g}" for k, v in metrics.items()]
    else:
        lines.append("No metrics were found for this step (log with verl's `file` logger to include them).")
    return lines


def _usage_lines(info: RunInfo, out_name: str) -> list[str]:
    """The "Use" section (transformers and vLLM) and the pointer to the copied run config."""
    lines = [
        "",
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        f'model = AutoModelForCausalLM.from_pretrained("path/to/{out_name}", dtype="auto")',
        f'tokenizer = AutoTokenizer.from_pretrained("path/to/{out_name}")',
        "```",
        "",
        f"or serve it with vLLM: `vllm serve path/to/{out_name}`.",
    ]
    if info.config_path:
        lines += ["", f"The run's full config is kept in `{CONFIG_COPY_NAME}`."]
    return lines


def render_card(
    *,
    location: CheckpointLocation,
    info: RunInfo,
    dtype: str,
    dtype_source: str,
    lora: str | None,
    base_model: str | None,
    out_name: str = "model",
) -> ModelCard:
    """The card: the metadata the Hugging Face hub reads (``ModelCardData``) and a Markdown body."""
    data = ModelCardData(base_model=base_model, library_name="transformers", tags=list(CARD_TAGS))
    lines = _summary_lines(location, info, dtype, dtype_source, lora, base_model)
    lines += _algorithm_option_lines(info)
    lines += _metrics_lines(location, info)
    lines += _usage_lines(info, out_name)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")


def write_card(out_dir: Path, card: ModelCard, info: RunInfo) -> None:
    """``README.md`` plus a copy of the run config."""
    card.save(out_dir / "README.md")
    if info.config_path:
        shutil.copy2(info.config_path, out_dir / CONFIG_COPY_NAME)
