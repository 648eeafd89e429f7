"""The model card (``README.md``) of a converted model, and the run information it is built from.

Run config: ``--run-config``, else ``config.yaml`` or ``.hydra/config.yaml`` in RUN_DIR or ``global_step_N``.
Metrics (verl's file logger): ``--metrics``, else ``RUN_DIR/metrics.jsonl``, else ``$VERL_FILE_LOGGER_PATH``. Both are
optional; the card says what it could not find.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from huggingface_hub import ModelCard, ModelCardData

from smartthinker_verl.data import read_jsonl
from smartthinker_verl.errors import DataError

from .discovery import CheckpointLocation
from .errors import ConversionError

logger = logging.getLogger(__name__)

CONFIG_CANDIDATES = ("config.yaml", ".hydra/config.yaml")
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


@dataclass
class RunInfo:
    """What is known about the run that produced the checkpoint."""

    config: dict | None = None
    config_path: Path | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def get(self, dotted: str):
        """``get("algorithm.adv_estimator")`` on the run config (None when absent)."""
        node = self.config
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    @property
    def base_model(self) -> str | None:
        return str(self.get("actor_rollout_ref.model.path") or "") or None


def _find(explicit: str | None, flag: str, candidates: list[Path]) -> Path | None:
    """``explicit`` (which must exist), else the first candidate that exists."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConversionError(f"{flag} {path} does not exist")
        return path
    return next((p for p in candidates if p.is_file()), None)


def read_run_info(location: CheckpointLocation, config_path: str | None, metrics_path: str | None) -> RunInfo:
    """Load the run config and the metrics of ``location.step`` (later lines of a step win)."""
    roots = [location.run_dir, location.step_dir]
    env_metrics = [Path(p).expanduser() for p in [os.environ.get("VERL_FILE_LOGGER_PATH")] if p]
    info = RunInfo(config_path=_find(config_path, "--run-config", [r / n for r in roots for n in CONFIG_CANDIDATES]))
    metrics = _find(metrics_path, "--metrics", [root / "metrics.jsonl" for root in roots] + env_metrics)
    if info.config_path:
        try:
            loaded = yaml.safe_load(info.config_path.read_text())
        except yaml.YAMLError as exc:
            loaded = exc
        info.config = loaded if isinstance(loaded, dict) else None
        if info.config is None:
            logger.warning("%s is not a YAML mapping (%s); the card omits the run config", info.config_path, loaded)
    try:
        rows = read_jsonl(metrics, allow_partial_tail=True) if metrics else []
    except DataError as exc:
        logger.warning("%s; the model card omits the metrics", exc)
        rows = []
    for row in rows:
        if row.get("step") == location.step and isinstance(row.get("data"), dict):
            info.metrics.update({k: v for k, v in row["data"].items() if isinstance(v, (int, float))})
    return info


def _files_list(value) -> str:
    items = value if isinstance(value, (list, tuple)) else [value]
    return ", ".join(f"`{item}`" for item in items) if value is not None else "not recorded"


def write_card(out_dir: Path, out_name: str, location: CheckpointLocation, info: RunInfo, weights: str) -> None:
    """``README.md``: the metadata the Hugging Face hub reads (``ModelCardData``) and a Markdown body (``weights``:
    their dtype, where it came from, the LoRA note); plus a copy of the run config."""
    algorithm = info.get("algorithm.adv_estimator")
    if algorithm:
        algorithm = f"`{algorithm}`"
    elif any(k.startswith("smartthinker/") for k in info.metrics):
        algorithm = "`smartthinker` (from the logged `smartthinker/` metrics; no run config found)"
    else:
        algorithm = "not recorded (no run config found)"
    lines = [
        f"# {info.get('trainer.experiment_name') or location.step_dir.parent.name} (step {location.step})",
        "",
        "A reasoning model trained with reinforcement learning in verl, converted from the FSDP checkpoint "
        f"`{location.actor_dir}` by `smartthinker-verl convert`.",
        "",
        "| | |",
        "|---|---|",
        f"| Base model | {f'`{info.base_model}`' if info.base_model else 'not recorded'} |",
        f"| Training step | {location.step} |",
        f"| Algorithm | {algorithm} |",
        f"| Weights | {weights} |",
        f"| Training data | {_files_list(info.get('data.train_files'))} |",
        f"| Validation data | {_files_list(info.get('data.val_files'))} |",
    ]
    options = {f"algorithm.smartthinker.{k}": v for k, v in sorted((info.get("algorithm.smartthinker") or {}).items())}
    if info.get("algorithm.norm_adv_by_std_in_grpo") is not None:
        options["algorithm.norm_adv_by_std_in_grpo"] = info.get("algorithm.norm_adv_by_std_in_grpo")
    if options:
        lines += ["", "## Algorithm options", "", *(f"- `{k}`: `{v}`" for k, v in options.items())]
    metrics = [f"- `{k}`: {info.metrics[k]:.4g}" for k in sorted(info.metrics) if k.startswith(KEY_METRIC_PREFIXES)]
    lines += ["", f"## Metrics at step {location.step}", ""]
    lines += metrics or ["No metrics were found for this step (log with verl's `file` logger to include them)."]
    lines += [
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
        shutil.copy2(info.config_path, out_dir / CONFIG_COPY_NAME)
    data = ModelCardData(
        base_model=info.base_model, library_name="transformers", tags=["verl", "smartthinker", "reasoning", "grpo"]
    )
    ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n").save(out_dir / "README.md")
