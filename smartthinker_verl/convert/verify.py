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


def verify_model(
    out_dir: Path,
    dtype: torch.dtype,
    expected: Mapping[str, torch.Tensor],
    auto_class=None,
) -> int:
    """Load ``out_dir`` with transformers (``auto_class``, default ``AutoModelForCausalLM``) and compare every entry
    of ``expected``; tied aliases keep their own joined tensor, so a tie the trained weights do not honour is caught.
    Returns the number compared."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    auto_class = auto_class or AutoModelForCausalLM
    try:
        model, loading = auto_class.from_pretrained(
            str(out_dir), dtype=dtype, output_loading_info=True, device_map="cpu"
        )
    except Exception as exc:
        raise VerificationError(f"transformers cannot load {out_dir}: {type(exc).__name__}: {exc}") from exc
    problems = {k: sorted(v) for k, v in loading.items() if v and k != "error_msgs"}
    if problems or loading.get("error_msgs"):
        raise VerificationError(f"transformers loaded {out_dir} with problems: {problems or loading['error_msgs']}")
    state = model.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise VerificationError(f"the loaded model lacks {missing[:5]}")
    for name, want in expected.items():
        got = state[name]
        if not same_bits(got, want):
            diff = (got.double() - want.double()).abs().max().item() if got.shape == want.shape else float("nan")
            raise VerificationError(
                f"{out_dir}: {name} differs from the joined shards ({tuple(got.shape)} {got.dtype} vs "
                f"{tuple(want.shape)} {want.dtype}, max |diff| {diff:.3g})"
            )
    del model, state
    try:
        AutoTokenizer.from_pretrained(str(out_dir))
    except Exception as exc:
        if any(out_dir.glob("tokenizer*")):
            raise VerificationError(f"the tokenizer in {out_dir} does not load: {exc}") from exc
    logger.info("verified %d tensors of %s", len(expected), out_dir)
    return len(expected)


def verify_adapter(adapter_dir: Path, expected: Mapping[str, torch.Tensor]) -> int:
    """Compare ``adapter_dir/adapter_model.safetensors`` with ``expected`` (peft names): the same names, same bits."""
    from safetensors import safe_open

    path = adapter_dir / "adapter_model.safetensors"
    if not path.is_file():
        raise VerificationError(f"{path} was not written")
    with safe_open(str(path), framework="pt") as f:
        if set(f.keys()) != set(expected):
            raise VerificationError(f"{path} holds {sorted(f.keys())[:3]}..., expected {sorted(expected)[:3]}...")
        for key in f.keys():
            if not same_bits(f.get_tensor(key), expected[key]):
                raise VerificationError(f"{path}: {key} differs from the joined shards")
    return len(expected)
