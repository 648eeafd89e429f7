"""One conversion, start to finish: check the shards, write to a temporary folder, verify, move into place.

Nothing reaches the output path unless every step succeeded: the shards are checked before any file is created,
the model is written into ``.<name>.partial-<id>`` next to the output and renamed into place at the end (an existing
output is replaced only with ``force``, and only after the new one is complete).
"""

from __future__ import annotations

import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm
from verl.model_merger.fsdp_model_merger import FSDPModelMerger
from verl.model_merger.output_validation import validate_hf_model_output

from .discovery import CheckpointLocation
from .errors import ConversionError, OutputExistsError
from .hf_files import copy_hf_files, output_names, resolve_dtype
from .lora import LoraLayout, base_name, is_lora_name, lora_layout, merge
from .model_card import RunInfo, base_model_of, read_run_info, render_card, write_card
from .safetensors_writer import TensorSpec, parse_size, write_weights
from .shards import ShardSet, make_merger
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


class _Sources:
    """Output name -> tensor, from the shards (joined, LoRA-merged if asked, cast to the output dtype)."""

    def __init__(self, shards: ShardSet, layout: LoraLayout | None, keep_adapter: bool, dtype: torch.dtype):
        self.shards, self.layout, self.dtype = shards, layout, dtype
        self.merged = layout.pairs if layout is not None and not keep_adapter else {}
        # output name -> checkpoint name, for every entry that becomes a model weight
        self.names = {base_name(n): n for n in shards.names if not is_lora_name(n)}

    def out_dtype(self, checkpoint_name: str) -> torch.dtype:
        stored = self.shards.info[checkpoint_name].dtype
        return self.dtype if stored.is_floating_point else stored

    def tensor(self, name: str) -> torch.Tensor:
        checkpoint_name = self.names[name]
        if name in self.merged:
            pair = self.merged[name]
            weight = merge(
                self.shards.join(pair.base),
                self.shards.join(pair.lora_a),
                self.shards.join(pair.lora_b),
                self.layout.scaling,
            )
            return weight.to(self.out_dtype(checkpoint_name))
        return self.shards.join(checkpoint_name, self.out_dtype(checkpoint_name))

    def adapter_tensor(self, peft_key: str) -> torch.Tensor:
        """A tensor of the kept adapter, by its peft file name (``...lora_A.weight``)."""
        checkpoint_name = peft_key[: -len(".weight")] + ".default.weight"
        return self.shards.join(checkpoint_name, self.out_dtype(checkpoint_name))


def _bar(enabled: bool, **kwargs) -> tqdm:
    return tqdm(disable=not enabled, dynamic_ncols=True, **kwargs)


def _check_output(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise OutputExistsError(f"{out} already exists; pass --force to replace it, or choose another --out")
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} exists and is not a folder; remove it or choose another --out")


def _check_free_space(folder: Path, weight_bytes: int) -> None:
    free = shutil.disk_usage(folder).free
    needed = int(weight_bytes * 1.02) + 64 * 2**20  # weights + tokenizer and the rest
    if free < needed:
        raise ConversionError(
            f"{folder} has {free / 1e9:.1f} GB free but the model needs about {needed / 1e9:.1f} GB; free space or "
            "choose another --out"
        )


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


@dataclass
class _Plan:
    """Everything decided before the first byte is written."""

    location: CheckpointLocation
    out: Path
    options: ConvertOptions
    merger: FSDPModelMerger
    shards: ShardSet
    layout: LoraLayout | None
    info: RunInfo
    base_model: str | None
    dtype: torch.dtype
    dtype_source: str
    sources: _Sources
    specs: list[TensorSpec]

    @property
    def weight_bytes(self) -> int:
        return sum(s.nbytes for s in self.specs)


def _plan(location: CheckpointLocation, out: Path, options: ConvertOptions, shards: ShardSet) -> _Plan:
    layout = lora_layout(shards.names, location.actor_dir, merging=not options.keep_adapter)
    info = read_run_info(location, options.run_config, options.metrics)
    base_model = base_model_of(info)
    dtype, dtype_source = resolve_dtype(options.dtype, location.actor_dir / "huggingface", base_model)
    sources = _Sources(shards, layout, options.keep_adapter, dtype)
    written = output_names(shards.merger, list(sources.names))
    specs = [TensorSpec(n, shards.info[sources.names[n]].shape, sources.out_dtype(sources.names[n])) for n in written]
    return _Plan(
        location, out, options, shards.merger, shards, layout, info, base_model, dtype, dtype_source, sources, specs
    )


def _write(plan: _Plan, folder: Path) -> Path | None:
    """Weights, config, tokenizer etc., the LoRA adapter when kept, and the model card. Returns the adapter path."""
    with _bar(plan.options.progress, total=plan.weight_bytes, unit="B", unit_scale=True, desc="writing") as bar:
        write_weights(
            folder,
            plan.specs,
            lambda spec: plan.sources.tensor(spec.name),
            parse_size(plan.options.max_shard_size),
            on_tensor=lambda spec: bar.update(spec.nbytes),
        )
    copy_hf_files(plan.location.actor_dir / "huggingface", folder, plan.dtype)
    adapter = None
    if plan.layout is not None and plan.options.keep_adapter:
        plan.merger.config.target_dir = str(folder)
        tensors = {n: plan.shards.join(n, plan.sources.out_dtype(n)) for n in plan.layout.lora_names}
        adapter = Path(plan.merger.save_lora_adapter(tensors))  # verl's peft adapter writer
    validate_hf_model_output(folder)  # verl's completeness check of a model folder

    lora_note = None
    if plan.layout is not None:
        lora_note = (
            "LoRA adapter kept in `lora_adapter/`"
            if plan.options.keep_adapter
            else f"LoRA adapter (r={plan.layout.rank}, alpha={plan.layout.alpha:g}) merged into the weights"
        )
    card = render_card(
        location=plan.location,
        info=plan.info,
        dtype=str(plan.dtype).replace("torch.", ""),
        dtype_source=plan.dtype_source,
        lora=lora_note,
        base_model=plan.base_model,
        out_name=plan.out.name,
    )
    write_card(folder, card, plan.info)
    return adapter


def _verify(plan: _Plan, folder: Path, adapter: Path | None) -> int:
    if not plan.options.progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    names = list(plan.sources.names)  # tied aliases included: each must reload equal to its own shards
    with _bar(plan.options.progress, total=len(names), desc="verifying") as bar:
        verified = verify_model(
            folder,
            plan.dtype,
            plan.sources.tensor,
            names,
            plan.merger.get_transformers_auto_model_class(),
            progress=lambda _name: bar.update(1),
        )
    if adapter is not None:
        verified += verify_adapter(adapter, plan.sources.adapter_tensor)
    return verified


def convert_checkpoint(
    location: CheckpointLocation, out: str | Path | None = None, options: ConvertOptions = ConvertOptions()
) -> ConversionResult:
    """Convert the actor checkpoint at ``location`` into a Hugging Face model folder (default
    ``location.default_output()``). Raises a ``ConversionError`` subclass whose message names the problem."""
    out = Path(out).expanduser().resolve() if out else location.default_output()
    _check_output(out, options.force)
    try:
        parse_size(options.max_shard_size)
    except ValueError as exc:
        raise ConversionError(f"--max-shard-size: {exc}") from None

    shards = ShardSet(location.actor_dir, make_merger(location.actor_dir, trust_remote_code=options.trust_remote_code))
    try:
        plan = _plan(location, out, options, shards)
        logger.info(
            "step %d: %d tensors from %d ranks -> %s (%s, from %s)",
            location.step,
            len(plan.specs),
            shards.world_size,
            out,
            plan.dtype,
            plan.dtype_source,
        )
        new_dirs = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
        try:
            _check_free_space(out.parent, plan.weight_bytes)
            tmp.mkdir()
            adapter = _write(plan, tmp)
            verified = _verify(plan, tmp, adapter) if options.verify else None
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
        dtype=plan.dtype,
        dtype_source=plan.dtype_source,
        tensors=len(plan.specs),
        bytes=plan.weight_bytes,
        verified=verified,
        adapter=out / adapter.name if adapter is not None else None,
    )
