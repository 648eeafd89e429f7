"""LoRA checkpoints: map the saved peft names to the base model's names and merge adapters into the weights.

A LoRA actor saves ``base_model.model.<module>.base_layer.weight`` plus ``<module>.lora_A.default.weight``
(``[r, in]``) and ``<module>.lora_B.default.weight`` (``[out, r]``). Merging computes, like peft's
``merge_and_unload``, ``W' = W + (B @ A) * scaling`` with ``scaling = lora_alpha / r``, in the stored precision.
The rank and alpha come from ``lora_train_meta.json``, which verl writes next to the shards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import ConversionError

PEFT_PREFIX = "base_model.model."


def is_lora_name(name: str) -> bool:
    return "lora_" in name


def base_name(name: str) -> str:
    """The Hugging Face name of a (non-LoRA) entry of a peft-wrapped model."""
    if name.startswith(PEFT_PREFIX):
        name = name[len(PEFT_PREFIX) :]
    return name.replace(".base_layer.weight", ".weight").replace(".base_layer.bias", ".bias")


@dataclass(frozen=True)
class LoraPair:
    """Checkpoint names of one adapted weight: base, A (``[r, in]``) and B (``[out, r]``)."""

    base: str
    lora_a: str
    lora_b: str


@dataclass(frozen=True)
class LoraLayout:
    """How the checkpoint's entries map to output names. ``pairs``: output name -> adapter of that weight."""

    scaling: float
    rank: int
    alpha: float
    pairs: dict[str, LoraPair]
    lora_names: list[str]


def read_lora_meta(actor_dir: Path) -> tuple[int, float]:
    """``(r, lora_alpha)`` from ``lora_train_meta.json``; error naming the file and the fix if absent."""
    path = actor_dir / "lora_train_meta.json"
    if not path.exists():
        raise ConversionError(
            f"{path} is missing, so the LoRA scaling (alpha / r) is unknown and the adapter cannot be merged; "
            "pass --keep-adapter to write the adapter separately"
        )
    meta = json.loads(path.read_text())
    try:
        rank, alpha = int(meta["r"]), float(meta["lora_alpha"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConversionError(f"{path} lacks a valid 'r' / 'lora_alpha' ({exc}); pass --keep-adapter") from None
    if rank <= 0 or alpha == 0:
        raise ConversionError(f"{path}: r={rank}, lora_alpha={alpha} cannot be merged; pass --keep-adapter")
    return rank, alpha


def lora_layout(names: list[str], actor_dir: Path, merging: bool = True) -> LoraLayout | None:
    """None for a checkpoint without LoRA entries; else the name mapping and scaling (read only when ``merging``;
    a kept adapter takes its rank and alpha from the same file through verl's adapter writer)."""
    lora_names = [n for n in names if is_lora_name(n)]
    if not lora_names:
        return None
    base_names = [n for n in names if not is_lora_name(n)]
    if not base_names:
        raise ConversionError(
            f"{actor_dir} holds only LoRA adapter weights (saved with save_lora_only); the base weights are not in "
            "the checkpoint, so this tool cannot build a full model from it: load the base model and apply the "
            "adapter with peft instead"
        )
    rank, alpha = read_lora_meta(actor_dir) if merging else (0, 0.0)
    pairs: dict[str, LoraPair] = {}
    present = set(names)
    for name in base_names:
        if ".base_layer." not in name:
            continue
        module = name.rsplit(".base_layer.", 1)[0]
        suffix = name.rsplit(".", 1)[1]
        if suffix != "weight":
            continue
        a, b = f"{module}.lora_A.default.weight", f"{module}.lora_B.default.weight"
        if a not in present or b not in present:
            raise ConversionError(f"{actor_dir}: {name} has no complete LoRA pair ({a}, {b})")
        pairs[base_name(name)] = LoraPair(base=name, lora_a=a, lora_b=b)
    return LoraLayout(scaling=alpha / rank if rank else 0.0, rank=rank, alpha=alpha, pairs=pairs, lora_names=lora_names)


def merge(weight: torch.Tensor, lora_a: torch.Tensor, lora_b: torch.Tensor, scaling: float) -> torch.Tensor:
    """``weight + (lora_b @ lora_a) * scaling`` in ``weight``'s dtype. Shapes: [out, in], [r, in], [out, r]."""
    delta = (lora_b.to(weight.dtype) @ lora_a.to(weight.dtype)) * scaling
    return weight + delta
