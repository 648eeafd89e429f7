"""Check a written model: transformers loads it with no missing or unexpected weights, and every tensor it holds
equals, bit for bit, the tensor joined from the shards (rounded to the output dtype, LoRA merged if asked).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch

from .errors import VerificationError

logger = logging.getLogger(__name__)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Exact equality of shape, dtype and every bit (so NaNs compare equal and -0.0 differs from 0.0)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.numel() == 0:
        return True
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
