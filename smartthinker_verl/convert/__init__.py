"""FSDP checkpoints of a verl run -> verified Hugging Face model folders (``smartthinker-verl convert``).

Built on verl's ``verl.model_merger``, transformers, peft and huggingface_hub; adds checkpoint discovery, shard
checks with named errors, the dtype kept (float32 exactly), atomic output and verification.
"""

from .cli import add_arguments, run
from .discovery import CheckpointLocation, locate_checkpoint
from .errors import CheckpointNotFoundError, ConversionError, OutputExistsError, ShardError, VerificationError
from .pipeline import ConversionResult, ConvertOptions, convert_checkpoint

__all__ = [
    "CheckpointLocation",
    "CheckpointNotFoundError",
    "ConversionError",
    "ConversionResult",
    "ConvertOptions",
    "OutputExistsError",
    "ShardError",
    "VerificationError",
    "add_arguments",
    "convert_checkpoint",
    "locate_checkpoint",
    "run",
]
