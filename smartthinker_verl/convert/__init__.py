"""FSDP checkpoints of a verl run -> verified Hugging Face model folders (``smartthinker-verl convert``).

Built on verl's ``verl.model_merger`` (its FSDP joining rules, LoRA adapter writer and output check); adds checkpoint
discovery, shard checks, exact float32 output, tensor-by-tensor memory, atomic output, LoRA merging, a model card
and verification. Modules: ``discovery`` (which checkpoint), ``shards`` (check + join), ``lora``,
``pages`` (memory), ``safetensors_writer``, ``hf_files`` (dtype, config, tokenizer), ``model_card``, ``verify``,
``pipeline``, ``cli``.
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
