"""FSDP checkpoints of a verl run -> verified Hugging Face model folders (``smartthinker-verl convert``).

Built on verl's ``verl.model_merger`` (its joining rules, model class, LoRA adapter writer and output check),
transformers (``save_pretrained``), peft (``merge_and_unload``) and huggingface_hub (``ModelCard``); adds checkpoint
discovery, shard checks with named errors, the dtype kept (float32 exactly), atomic output and verification.
Modules: ``discovery`` (which checkpoint), ``shards`` (check + join), ``lora``, ``hf_folder`` (dtype, model,
files), ``model_card``, ``verify``, ``pipeline``, ``cli``.
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
