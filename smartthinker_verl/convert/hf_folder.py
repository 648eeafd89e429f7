"""The Hugging Face model folder: output dtype, the model built from the checkpoint's config, and the files written
(weights and config by ``save_pretrained``; tokenizer, chat template and the rest copied from ``huggingface/``)."""

from __future__ import annotations

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


def resolve_dtype(requested: str, merger: FSDPModelMerger, base_model: str | None) -> tuple[torch.dtype, str]:
    """The output dtype and where it came from. ``auto``: the base model config's (first, because verl rewrites the
    checkpoint's config to the training dtype, float32), else the checkpoint config's, else float32."""
    if requested != "auto":
        if requested not in DTYPES:
            raise ConversionError(f"--dtype must be auto, bfloat16 or float32, got {requested!r}")
        return DTYPES[requested], "--dtype"
    from transformers import AutoConfig

    base_config = None
    if base_model:
        try:
            base_config = AutoConfig.from_pretrained(str(Path(base_model).expanduser()), local_files_only=True)
        except (OSError, ValueError) as exc:
            logger.info("base model config %s not readable here (%s); using the checkpoint's", base_model, exc)
    checkpoint_config = f"{merger.hf_model_config_path}/config.json"
    sources = {
        "base model config": (base_config, base_model),
        "checkpoint config": (merger.model_config, checkpoint_config),
    }
    for source, (config, where) in sources.items():
        dtype = DTYPES.get(str(getattr(config, "dtype", None)).removeprefix("torch."))
        if dtype is not None:
            return dtype, f"{source} ({where})"
    logger.warning("no dtype declared in %s; writing float32", checkpoint_config)
    return torch.float32, "default (float32)"


def build_model(merger: FSDPModelMerger, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """The model class of the checkpoint's config, holding ``state``'s tensors (assigned, not copied); an entry too
    many or too few means the config is not the shards'."""
    if not getattr(merger.model_config, "architectures", None):
        raise ConversionError(
            f'{merger.hf_model_config_path}/config.json names no architecture ("architectures": [...]), so the '
            "model class is unknown; add the base model's architectures entry to it"
        )
    with init_empty_weights():
        model = merger.get_transformers_auto_model_class().from_config(
            merger.model_config, trust_remote_code=merger.config.trust_remote_code
        )
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise ConversionError(
            f"the checkpoint's entries do not match {type(model).__name__} built from "
            f"{merger.hf_model_config_path}/config.json, so the config does not belong to these shards: {exc}"
        ) from None
    return model


def write_folder(
    merger: FSDPModelMerger, model: torch.nn.Module, state: dict[str, torch.Tensor], folder: Path, max_shard_size: str
) -> list[str]:
    """Weights (tied aliases left out: transformers re-ties them) and config, then every non-weight file of
    ``huggingface/`` verbatim. Returns the names of the tensors written."""
    written = dict(state)
    drop_tied_target_keys(written, model, merger.model_config)
    names = list(written)
    model.save_pretrained(folder, state_dict=written, max_shard_size=max_shard_size)  # empties ``written``
    hf_dir = Path(merger.hf_model_config_path)
    for path in sorted(hf_dir.iterdir()):
        if path.name.endswith(WEIGHT_SUFFIXES) or path.name == "config.json":
            continue
        if path.is_dir():
            shutil.copytree(path, folder / path.name, dirs_exist_ok=True)
        else:
            shutil.copy2(path, folder / path.name)
    if not any(hf_dir.glob("tokenizer*")):
        logger.warning("%s has no tokenizer files; the output has none either", hf_dir)
    return names
