"""One conversion: check and join the shards, write to ``.<name>.partial-<id>`` next to the output, verify, rename.

Nothing reaches the output path unless every step succeeded; an existing output is replaced only with ``force``,
and only after the new one is complete.

LoRA entries are ``<module>.base_layer.weight``, ``<module>.lora_A.default.weight`` ``[r, in]`` and
``<module>.lora_B.default.weight`` ``[out, r]``; verl's writer splits the adapter off and peft's merge computes
``W' = W + (B @ A) * lora_alpha / r`` in the stored precision, with r and alpha from verl's ``lora_train_meta.json``.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import split_torch_state_dict_into_shards
from verl.model_merger.base_model_merger import ModelMergerConfig
from verl.model_merger.fsdp_model_merger import FSDPModelMerger
from verl.model_merger.output_validation import validate_hf_model_output

from .discovery import CheckpointLocation
from .errors import ConversionError, OutputExistsError, ShardError
from .hf_folder import build_model, resolve_dtype, write_folder
from .model_card import read_run_info, render_card, write_card
from .shards import Shards
from .verify import verify_adapter, verify_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConvertOptions:
    """Options of one conversion (the CLI flags of ``smartthinker-verl convert``)."""

    dtype: str = "auto"  # auto | bfloat16 | float32
    verify: bool = True
    force: bool = False
    keep_adapter: bool = False
    run_config: str | None = None
    metrics: str | None = None
    max_shard_size: str = "5GB"
    progress: bool = True
    trust_remote_code: bool = False


@dataclass(frozen=True)
class ConversionResult:
    output: Path
    step: int
    dtype: torch.dtype
    dtype_source: str
    tensors: int
    bytes: int
    verified: int | None  # tensors compared, None when verification was skipped
    adapter: Path | None


def _check_lora(names: list[str], merger: FSDPModelMerger, keep_adapter: bool) -> str | None:
    """The model card's note on the LoRA adapter (None: no adapter); raises when the checkpoint cannot become a
    full model, or the adapter cannot be merged."""
    actor_dir = Path(merger.config.local_dir)
    lora = [n for n in names if "lora_" in n]
    if not lora:
        return None
    if len(lora) == len(names):
        raise ConversionError(
            f"{actor_dir} holds only LoRA adapter weights (saved with save_lora_only); the base weights are not in "
            "the checkpoint, so this tool cannot build a full model from it: load the base model and apply the "
            "adapter with peft instead"
        )
    for name in names:
        module = name.removesuffix(".base_layer.weight")
        pair = {f"{module}.lora_A.default.weight", f"{module}.lora_B.default.weight"}
        if module != name and not pair <= set(lora):
            raise ConversionError(f"{actor_dir}: {name} has no complete LoRA pair {sorted(pair)}")
    if keep_adapter:
        return "LoRA adapter kept in `lora_adapter/`"
    meta = merger._load_lora_train_meta() or {}  # verl's reader, the one its adapter writer uses
    rank, alpha = meta.get("r", 0), meta.get("lora_alpha", 0)
    if rank <= 0 or not alpha:
        raise ConversionError(
            f"{actor_dir / 'lora_train_meta.json'} gives no usable LoRA scaling (r={rank}, lora_alpha={alpha}; "
            "alpha / r), so the adapter cannot be merged; pass --keep-adapter to write the adapter separately"
        )
    return f"LoRA adapter (r={rank}, alpha={alpha:g}) merged into the weights"


def _write(
    merger: FSDPModelMerger, shards: Shards, lora: bool, dtype: torch.dtype, folder: Path, options: ConvertOptions
) -> tuple[dict[str, torch.Tensor], list[str], Path | None, dict[str, torch.Tensor]]:
    """Join, split or merge the adapter, write the folder. Returns (every output tensor by name, tied aliases
    included; the names written; the kept adapter folder; its tensors by file name)."""
    merging = lora and not options.keep_adapter
    state = shards.state_dict(None if merging else dtype)  # a LoRA merge runs in the stored precision
    adapter, adapter_tensors = None, {}
    if lora:
        adapter_tensors = {k.replace(".default.weight", ".weight"): v for k, v in state.items() if "lora_" in k}
        merger.config.target_dir = str(folder)
        adapter = Path(merger.save_lora_adapter(state))  # verl's writer; ``state`` keeps the renamed base weights
        if merging:
            from peft import PeftModel

            state = PeftModel.from_pretrained(build_model(merger, state), str(adapter)).merge_and_unload().state_dict()
            shutil.rmtree(adapter)
            adapter, adapter_tensors = None, {}
    state = {k: v.to(dtype) if v.dtype.is_floating_point else v for k, v in state.items()}
    free, needed = shutil.disk_usage(folder).free, sum(t.numel() * t.element_size() for t in state.values())
    needed = int(needed * 1.02) + 64 * 2**20  # weights + tokenizer and the rest
    if free < needed:
        raise ConversionError(
            f"{folder} has {free / 1e9:.1f} GB free but the model needs about {needed / 1e9:.1f} GB; free space or "
            "choose another --out"
        )
    written = write_folder(merger, build_model(merger, state), state, folder, options.max_shard_size)
    return state, written, adapter, adapter_tensors


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is set aside first and restored if the rename fails."""
    if not out.exists():
        tmp.rename(out)
        return
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    out.rename(old)
    try:
        tmp.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old)


def convert_checkpoint(
    location: CheckpointLocation, out: str | Path | None = None, options: ConvertOptions = ConvertOptions()
) -> ConversionResult:
    """Convert the actor checkpoint at ``location`` into a Hugging Face model folder (default
    ``location.default_output()``). Raises a ``ConversionError`` subclass whose message names the problem."""
    out = Path(out).expanduser().resolve() if out else location.default_output()
    if out.exists() and not options.force:
        raise OutputExistsError(f"{out} already exists; pass --force to replace it, or choose another --out")
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} exists and is not a folder; remove it or choose another --out")
    try:
        split_torch_state_dict_into_shards({}, max_shard_size=options.max_shard_size)  # parses the size
    except ValueError as exc:
        raise ConversionError(f"--max-shard-size: {exc} (write e.g. 5GB or 500MB)") from None
    if not options.progress:
        from huggingface_hub.utils import disable_progress_bars
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        disable_progress_bars()
    hf_dir = location.actor_dir / "huggingface"
    if not (hf_dir / "config.json").exists():
        raise ShardError(f"{hf_dir / 'config.json'} is missing: the trainer writes the model config there; re-copy it")
    merger = FSDPModelMerger(  # verl's merger: model config and class, shard joining, LoRA adapter writer
        ModelMergerConfig(
            operation="merge",
            backend="fsdp",
            local_dir=str(location.actor_dir),
            hf_model_config_path=str(hf_dir),
            target_dir=None,
            trust_remote_code=options.trust_remote_code,
        )
    )
    shards = Shards(location.actor_dir, merger)
    lora = _check_lora(shards.names, merger, options.keep_adapter)
    info = read_run_info(location, options.run_config, options.metrics)
    base_model = str(info.get("actor_rollout_ref.model.path") or "") or None
    dtype, dtype_source = resolve_dtype(options.dtype, merger, base_model)
    logger.info("step %d: %d ranks -> %s (%s, from %s)", location.step, shards.world_size, out, dtype, dtype_source)

    new_dirs = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        state, written, adapter, adapter_tensors = _write(merger, shards, lora is not None, dtype, tmp, options)
        dtype_name = f"{str(dtype).replace('torch.', '')} ({dtype_source})"
        write_card(tmp, render_card(location, info, dtype_name, lora, base_model, out.name), info)
        validate_hf_model_output(tmp)  # verl's completeness check of a model folder
        verified = None
        if options.verify:
            verified = verify_model(tmp, dtype, state, merger.get_transformers_auto_model_class())
            verified += verify_adapter(adapter, adapter_tensors) if adapter else 0
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in new_dirs:  # innermost first: remove the folders this call created, if still empty
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    finally:
        shards.close()
    logger.info("wrote %s", out)
    return ConversionResult(
        output=out,
        step=location.step,
        dtype=dtype,
        dtype_source=dtype_source,
        tensors=len(written),
        bytes=sum(state[n].numel() * state[n].element_size() for n in written),
        verified=verified,
        adapter=out / adapter.name if adapter is not None else None,
    )
