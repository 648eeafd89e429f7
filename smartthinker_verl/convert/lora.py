"""LoRA checkpoints: split the adapter off with verl's writer, and merge it into the weights with peft.

Entries: ``<module>.base_layer.weight``, ``<module>.lora_A.default.weight`` ``[r, in]`` and
``<module>.lora_B.default.weight`` ``[out, r]``; peft's merge computes ``W' = W + (B @ A) * lora_alpha / r`` in the
stored precision, with r and alpha from verl's ``lora_train_meta.json``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from verl.model_merger.fsdp_model_merger import FSDPModelMerger

from .errors import ConversionError

logger = logging.getLogger(__name__)


def is_lora_name(name: str) -> bool:
    return "lora_" in name


def adapter_name(name: str) -> str:
    """The name verl's adapter writer gives a checkpoint's ``lora_*`` entry (peft's file format)."""
    return name.replace(".default.weight", ".weight")


def check_lora(names: list[str], actor_dir: Path, merging: bool) -> bool:
    """Whether the checkpoint has a LoRA adapter; raises when it cannot become a full model (or be merged)."""
    lora = [n for n in names if is_lora_name(n)]
    if not lora:
        return False
    if all(is_lora_name(n) for n in names):
        raise ConversionError(
            f"{actor_dir} holds only LoRA adapter weights (saved with save_lora_only); the base weights are not in "
            "the checkpoint, so this tool cannot build a full model from it: load the base model and apply the "
            "adapter with peft instead"
        )
    present = set(names)
    for name in names:
        if name.endswith(".base_layer.weight"):
            module = name.removesuffix(".base_layer.weight")
            pair = (f"{module}.lora_A.default.weight", f"{module}.lora_B.default.weight")
            if not all(p in present for p in pair):
                raise ConversionError(f"{actor_dir}: {name} has no complete LoRA pair {pair}")
    if merging:
        read_lora_meta(actor_dir)
    return True


def read_lora_meta(actor_dir: Path) -> tuple[int, float]:
    """``(r, lora_alpha)`` from ``lora_train_meta.json``; without them a merge would silently add nothing."""
    path = actor_dir / "lora_train_meta.json"
    if not path.exists():
        raise ConversionError(
            f"{path} is missing, so the LoRA scaling (alpha / r) is unknown and the adapter cannot be merged; "
            "pass --keep-adapter to write the adapter separately"
        )
    try:
        meta = json.loads(path.read_text())
        rank, alpha = int(meta["r"]), float(meta["lora_alpha"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConversionError(f"{path} lacks a valid 'r' / 'lora_alpha' ({exc}); pass --keep-adapter") from None
    if rank <= 0 or alpha == 0:
        raise ConversionError(f"{path}: r={rank}, lora_alpha={alpha} cannot be merged; pass --keep-adapter")
    return rank, alpha


def split_adapter(merger: FSDPModelMerger, state: dict[str, torch.Tensor], folder: Path) -> Path:
    """Write ``state``'s adapter to ``folder/lora_adapter`` (verl's writer); ``state`` keeps the renamed base."""
    merger.config.target_dir = str(folder)
    return Path(merger.save_lora_adapter(state))


def merge_adapter(model: torch.nn.Module, adapter_dir: Path) -> dict[str, torch.Tensor]:
    """The state dict of ``model`` (holding the base weights) with the peft adapter at ``adapter_dir`` merged."""
    from peft import PeftModel

    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    return merged.state_dict()
