"""The non-weight parts of the output: dtype choice, config, tokenizer, chat template, generation config, and
which checkpoint entries become output tensors (tied aliases dropped, as transformers expects).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from accelerate import init_empty_weights
from verl.model_merger.fsdp_model_merger import FSDPModelMerger
from verl.utils.transformers_compat import drop_tied_target_keys

from .errors import ConversionError

logger = logging.getLogger(__name__)

DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".index.json")


def _config_dtype(config) -> torch.dtype | None:
    value = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(value, torch.dtype):
        return value
    if isinstance(value, str):
        return DTYPES.get(value.replace("torch.", ""))
    return None


def resolve_dtype(requested: str, hf_dir: Path, base_model: str | None) -> tuple[torch.dtype, str]:
    """The output dtype and where it came from.

    ``auto``: the dtype the base model's config declares (verl rewrites the checkpoint's own config to the training
    dtype, float32, so the base model, found through the run config, comes first), else the checkpoint config's,
    else float32 (never loses precision).
    """
    if requested != "auto":
        if requested not in DTYPES:
            raise ConversionError(f"--dtype must be auto, bfloat16 or float32, got {requested!r}")
        return DTYPES[requested], "--dtype"
    from transformers import AutoConfig

    if base_model:
        try:
            dtype = _config_dtype(AutoConfig.from_pretrained(str(Path(base_model).expanduser()), local_files_only=True))
        except (OSError, ValueError) as exc:
            logger.info("base model config %s not readable here (%s); using the checkpoint's", base_model, exc)
            dtype = None
        if dtype is not None:
            return dtype, f"base model config ({base_model})"
    dtype = _config_dtype(AutoConfig.from_pretrained(hf_dir))
    if dtype is not None:
        return dtype, f"checkpoint config ({hf_dir / 'config.json'})"
    logger.warning("no dtype declared in %s; writing float32", hf_dir / "config.json")
    return torch.float32, "default (float32)"


def output_names(merger: FSDPModelMerger, names: list[str]) -> list[str]:
    """Checkpoint names (already mapped to Hugging Face names) minus tied aliases such as ``lm_head.weight``.

    Checks against the architecture built from the config (on the meta device, no memory): a name the model does
    not have, or a weight the model needs that the checkpoint lacks, stops the conversion.
    """
    if not getattr(merger.model_config, "architectures", None):
        raise ConversionError(
            f'{merger.hf_model_config_path}/config.json names no architecture ("architectures": [...]), so the '
            "model class is unknown; add the base model's architectures entry to it"
        )
    auto_class = merger.get_transformers_auto_model_class()
    with init_empty_weights():
        model = auto_class.from_config(merger.model_config, trust_remote_code=merger.config.trust_remote_code)
    expected = set(model.state_dict().keys())
    unknown = sorted(set(names) - expected)
    if unknown:
        raise ConversionError(
            f"checkpoint entries {unknown[:5]} are not parameters of {type(model).__name__} built from "
            f"{merger.hf_model_config_path}/config.json; the config does not belong to these shards"
        )
    kept = dict.fromkeys(names)
    drop_tied_target_keys(kept, model, merger.model_config)
    missing = [name for name, _ in model.named_parameters() if name not in kept]
    if missing:
        raise ConversionError(f"the checkpoint lacks {missing[:5]}, which {type(model).__name__} needs")
    return list(kept)


def copy_hf_files(hf_dir: Path, out_dir: Path, dtype: torch.dtype) -> list[str]:
    """Copy the tokenizer, chat template, generation config, custom code etc. verbatim from the checkpoint's
    ``huggingface/`` folder (weights excluded), and write ``config.json`` with the output dtype.

    Returns the copied file names.
    """
    copied = []
    for path in sorted(hf_dir.iterdir()):
        if path.name.endswith(WEIGHT_SUFFIXES) or path.name == "config.json":
            continue
        target = out_dir / path.name
        if path.is_dir():
            shutil.copytree(path, target)
        else:
            shutil.copy2(path, target)
        copied.append(path.name)
    config = json.loads((hf_dir / "config.json").read_text())
    dtype_name = str(dtype).replace("torch.", "")
    config["dtype"] = dtype_name
    if "torch_dtype" in config:
        config["torch_dtype"] = dtype_name
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    if not any(name.startswith("tokenizer") for name in copied):
        logger.warning("%s has no tokenizer files; the output has none either", hf_dir)
    return ["config.json", *copied]
