"""FSDP checkpoints of a verl run -> verified Hugging Face model folders (``smartthinker-verl convert``).

Built on verl's ``verl.model_merger``, transformers, peft and huggingface_hub; adds checkpoint discovery, shard
checks with named errors, the dtype kept (float32 exactly), atomic output and verification.
"""

from __future__ import annotations

import argparse
import dataclasses

from .discovery import locate_checkpoint
from .pipeline import ConvertOptions, convert_checkpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``smartthinker-verl convert RUN_DIR [--step N|latest] [--out DIR] [--dtype ...] [--verify/--no-verify]``."""
    parser.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help="the trainer's default_local_dir (holds latest_checkpointed_iteration.txt), a global_step_N folder, "
        "or its actor/ folder",
    )
    parser.add_argument("--step", default="latest", help="step to convert when RUN_DIR is a run dir (default: latest)")
    parser.add_argument("--out", default=None, help="output folder (default: RUN_DIR/hf/global_step_N)")
    parser.add_argument(
        "--dtype",
        choices=["auto", "bfloat16", "float32"],
        default="auto",
        help="weights dtype; auto = what the base model's config declares; float32 keeps training precision exactly",
    )
    parser.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="reload the written model with transformers and compare every tensor with the shards (default: on)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing output folder")
    parser.add_argument(
        "--keep-adapter",
        action="store_true",
        help="LoRA runs: write the adapter separately (lora_adapter/) instead of merging it into the weights",
    )
    parser.add_argument("--run-config", default=None, help="the run's resolved config (default: RUN_DIR/config.yaml)")
    parser.add_argument("--metrics", default=None, help="verl file-logger JSONL (default: RUN_DIR/metrics.jsonl)")
    parser.add_argument("--max-shard-size", default="5GB", help="largest safetensors file (default: 5GB)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow custom model code in the config")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    options = ConvertOptions(**{field.name: getattr(args, field.name) for field in dataclasses.fields(ConvertOptions)})
    result = convert_checkpoint(locate_checkpoint(args.run_dir, args.step), args.out, options)  # errors: exit 2
    checked = f"verified {result.verified} tensors" if result.verified is not None else "not verified (--no-verify)"
    print(
        f"step {result.step} -> {result.output} ({result.tensors} tensors, {result.bytes / 1e9:.2f} GB, "
        f"{str(result.dtype).replace('torch.', '')}; {checked})"
    )
    return 0
