"""``smartthinker-verl convert RUN_DIR [--step N|latest] [--out DIR] [--dtype ...] [--verify/--no-verify]``."""

from __future__ import annotations

import argparse
import logging

from .discovery import locate_checkpoint
from .pipeline import ConvertOptions, convert_checkpoint

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    options = ConvertOptions(
        dtype=args.dtype,
        verify=args.verify,
        force=args.force,
        keep_adapter=args.keep_adapter,
        run_config=args.run_config,
        metrics=args.metrics,
        max_shard_size=args.max_shard_size,
        progress=not args.no_progress,
        trust_remote_code=args.trust_remote_code,
    )
    location = locate_checkpoint(args.run_dir, args.step)
    result = convert_checkpoint(location, args.out, options)  # a ConversionError: exit 2 (smartthinker_verl.cli)
    checked = f"verified {result.verified} tensors" if result.verified is not None else "not verified (--no-verify)"
    print(
        f"step {result.step} -> {result.output} ({result.tensors} tensors, {result.bytes / 1e9:.2f} GB, "
        f"{str(result.dtype).replace('torch.', '')}; {checked})"
    )
    return 0
