"""One conversion: check and join the shards, write to ``.<name>.partial-<id>`` next to the output, verify, rename.

Nothing reaches the output path unless every step succeeded; an existing output is replaced only with ``force``,
and only after the new one is complete. Verification reloads the folder with transformers (no missing or unexpected
weights) and compares every tensor, bit for bit, with the one joined from the shards (rounded to the output dtype,
LoRA merged if asked).

LoRA entries are ``<module>.base_layer.weight``, ``<module>.lora_A.default.weight`` ``[r, in]`` and
``<module>.lora_B.default.weight`` ``[out, r]``; verl's writer splits the adapter off and peft's merge computes
``W' = W + (B @ A) * lora_alpha / r`` in the stored precision, with r and alpha from verl's ``lora_train_meta.json``.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import init_empty_weights
from huggingface_hub import split_torch_state_dict_into_shards
from verl.model_merger.base_model_merger import ModelMergerConfig
from verl.model_merger.fsdp_model_merger import FSDPModelMerger
from verl.model_merger.output_validation import validate_hf_model_output
from verl.utils.transformers_compat import drop_tied_target_keys

from .discovery import CheckpointLocation
from .errors import ConversionError, OutputExistsError, ShardError, VerificationError
from .model_card import read_run_info, write_card
from .shards import join_shards, load_shards

logger = logging.getLogger(__name__)

DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".index.json")


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


def resolve_dtype(requested: str, merger: FSDPModelMerger, base_model: str | None) -> tuple[torch.dtype, str]:
    """The output dtype and where it came from. ``auto``: the base model config's (first, because verl rewrites the
    checkpoint's config to the training dtype, float32), else the checkpoint config's, else float32."""
    if requested != "auto":  # argparse's choices checked the name
        return DTYPES[requested], "--dtype"
    from transformers import AutoConfig

    checkpoint_config = f"{merger.hf_model_config_path}/config.json"
    sources = [("checkpoint config", merger.model_config, checkpoint_config)]
    if base_model:
        try:
            config = AutoConfig.from_pretrained(str(Path(base_model).expanduser()), local_files_only=True)
            sources.insert(0, ("base model config", config, base_model))
        except (OSError, ValueError) as exc:
            logger.info("base model config %s not readable here (%s); using the checkpoint's", base_model, exc)
    for source, config, where in sources:
        dtype = DTYPES.get(str(getattr(config, "dtype", None)).removeprefix("torch."))
        if dtype is not None:
            return dtype, f"{source} ({where})"
    logger.warning("no dtype declared in %s; writing float32", checkpoint_config)
    return torch.float32, "default (float32)"


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


def _write(
    merger: FSDPModelMerger, states: list[dict], lora: bool, dtype: torch.dtype, folder: Path, options: ConvertOptions
) -> tuple[dict[str, torch.Tensor], list[str], Path | None, dict[str, torch.Tensor]]:
    """Join, split or merge the adapter, write the weights (tied aliases left out: transformers re-ties them) and
    config, then every non-weight file of ``huggingface/`` verbatim. Returns (every output tensor by name, tied
    aliases included; the names written; the kept adapter folder; its tensors by file name)."""
    merging = lora and not options.keep_adapter
    state = join_shards(Path(merger.config.local_dir), states, merger, None if merging else dtype)  # merge: stored
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
    model = build_model(merger, state)
    written = dict(state)
    drop_tied_target_keys(written, model, merger.model_config)
    names = list(written)
    model.save_pretrained(folder, state_dict=written, max_shard_size=options.max_shard_size)  # empties ``written``
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
    return state, names, adapter, adapter_tensors


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Exact equality of shape, dtype and every bit (so NaNs compare equal and -0.0 differs from 0.0)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return torch.equal(a.contiguous().reshape(-1).view(torch.uint8), b.contiguous().reshape(-1).view(torch.uint8))


def _compare(where: Path, got: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> int:
    missing = sorted(set(expected) - set(got))
    if missing:
        raise VerificationError(f"{where} lacks {missing[:5]}")
    for name, want in expected.items():
        if not same_bits(got[name], want):
            have = got[name]
            diff = (have.double() - want.double()).abs().max().item() if have.shape == want.shape else float("nan")
            raise VerificationError(
                f"{where}: {name} differs from the joined shards ({tuple(have.shape)} {have.dtype} vs "
                f"{tuple(want.shape)} {want.dtype}, max |diff| {diff:.3g})"
            )
    return len(expected)


def verify_model(out_dir: Path, dtype: torch.dtype, expected: Mapping[str, torch.Tensor], auto_class=None) -> int:
    """Load ``out_dir`` with transformers (``auto_class``, default ``AutoModelForCausalLM``) and compare every entry
    of ``expected``; tied aliases keep their own joined tensor, so a tie the trained weights do not honour is caught.
    Returns the number compared."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model, loading = (auto_class or AutoModelForCausalLM).from_pretrained(
            str(out_dir), dtype=dtype, output_loading_info=True, device_map="cpu"
        )
    except Exception as exc:
        raise VerificationError(f"transformers cannot load {out_dir}: {type(exc).__name__}: {exc}") from exc
    problems = {k: sorted(v) for k, v in loading.items() if v and k != "error_msgs"}
    if problems or loading.get("error_msgs"):
        raise VerificationError(f"transformers loaded {out_dir} with problems: {problems or loading['error_msgs']}")
    count = _compare(out_dir, model.state_dict(), expected)
    del model
    try:
        AutoTokenizer.from_pretrained(str(out_dir))
    except Exception as exc:
        if any(out_dir.glob("tokenizer*")):
            raise VerificationError(f"the tokenizer in {out_dir} does not load: {exc}") from exc
    logger.info("verified %d tensors of %s", count, out_dir)
    return count


def verify_adapter(adapter_dir: Path, expected: Mapping[str, torch.Tensor]) -> int:
    """Compare ``adapter_dir/adapter_model.safetensors`` with ``expected`` (peft names): the same names, same bits."""
    from safetensors.torch import load_file

    path = adapter_dir / "adapter_model.safetensors"
    got = load_file(path) if path.is_file() else {}
    if set(got) != set(expected):
        raise VerificationError(f"{path} holds {sorted(got)[:3]}..., expected {sorted(expected)[:3]}...")
    return _compare(path, got, expected)


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
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # huggingface_hub's bars too
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
    states = load_shards(location.actor_dir)
    lora = _check_lora(sorted(states[0]), merger, options.keep_adapter)
    info = read_run_info(location, options.run_config, options.metrics)
    dtype, dtype_source = resolve_dtype(options.dtype, merger, info.base_model)
    logger.info("step %d: %d ranks -> %s (%s, from %s)", location.step, len(states), out, dtype, dtype_source)

    new_dirs = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        state, written, adapter, adapter_tensors = _write(merger, states, lora is not None, dtype, tmp, options)
        weights = f"{str(dtype).replace('torch.', '')} ({dtype_source}){'; ' + lora if lora else ''}"
        write_card(tmp, out.name, location, info, weights)
        validate_hf_model_output(tmp)  # verl's completeness check of a model folder
        verified = None
        if options.verify:
            verified = verify_model(tmp, dtype, state, merger.get_transformers_auto_model_class())
            verified += verify_adapter(adapter, adapter_tensors) if adapter else 0
        if not out.exists():
            tmp.rename(out)
        else:  # set the old output aside, restored if the rename fails
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            out.rename(old)
            try:
                tmp.rename(out)
            except BaseException:
                old.rename(out)
                raise
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in new_dirs:  # innermost first: remove the folders this call created, if still empty
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    finally:
        states.clear()  # drop the memory maps (tensors joined from them stay valid)
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
