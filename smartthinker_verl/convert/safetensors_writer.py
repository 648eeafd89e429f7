"""Write a Hugging Face weight set (safetensors files + index) one tensor at a time.

``safetensors.torch.save_file`` needs every tensor of a file in memory at once; a 1.5B model in float32 is 6 GB.
The safetensors layout is simple (8-byte little-endian header length, a JSON header with each tensor's dtype, shape
and byte range, then the raw bytes in that order), and every shape is known before any data is read, so the header
can be written first and the tensors streamed after it: memory holds one tensor at a time.

Kept over the libraries because it is measured to need a third of their memory (``benchmarks/bench_convert.py
--writers``, a 1.5B-shaped FSDP2 checkpoint of 2 ranks to bfloat16, 2 CPU cores): peak anonymous memory 1.32 GiB
and 20.6 s with this writer; 3.99 GiB and 29.0 s with ``safetensors.torch.save_file`` per output file; 4.14 GiB and
33.7 s with ``huggingface_hub.save_torch_state_dict``. The gap grows with the model (a whole output file, or the
whole state dict, in memory). The output is the same format: the converter's verification loads it back with
transformers (``from_pretrained``).
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

SAFETENSORS_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"


@dataclass(frozen=True)
class TensorSpec:
    """One tensor to write: its name in the output, full ``shape`` and output ``dtype``."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def nbytes(self) -> int:
        numel = 1
        for size in self.shape:
            numel *= size
        return numel * torch.empty((), dtype=self.dtype).element_size()


def plan_files(specs: Iterable[TensorSpec], max_file_bytes: int) -> list[list[TensorSpec]]:
    """Split ``specs`` (in order) into files of at most ``max_file_bytes`` (a larger single tensor gets its own)."""
    files: list[list[TensorSpec]] = [[]]
    size = 0
    for spec in specs:
        if files[-1] and size + spec.nbytes > max_file_bytes:
            files.append([])
            size = 0
        files[-1].append(spec)
        size += spec.nbytes
    return files


def file_names(count: int) -> list[str]:
    """Hugging Face names: ``model.safetensors``, or ``model-0000i-of-0000n.safetensors`` with an index."""
    if count == 1:
        return [SINGLE_FILE]
    return [f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)]


def _header(specs: list[TensorSpec], metadata: dict[str, str]) -> bytes:
    header: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for spec in specs:
        if spec.dtype not in SAFETENSORS_DTYPES:
            raise ValueError(f"{spec.name}: dtype {spec.dtype} cannot be stored in safetensors")
        header[spec.name] = {
            "dtype": SAFETENSORS_DTYPES[spec.dtype],
            "shape": list(spec.shape),
            "data_offsets": [offset, offset + spec.nbytes],
        }
        offset += spec.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # align the data section to 8 bytes
    return struct.pack("<Q", len(raw)) + raw


def _tensor_bytes(tensor: torch.Tensor) -> memoryview:
    if sys.byteorder != "little":  # safetensors stores little-endian data
        raise RuntimeError("writing safetensors on a big-endian machine is not supported")
    flat = tensor.detach().contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy()) if flat.numel() else memoryview(b"")


def write_weights(
    out_dir: Path,
    specs: list[TensorSpec],
    produce: Callable[[TensorSpec], torch.Tensor],
    max_file_bytes: int,
    on_tensor: Callable[[TensorSpec], None] | None = None,
) -> dict[str, str]:
    """Write ``specs`` into ``out_dir``; ``produce(spec)`` returns each tensor (shape ``spec.shape``, dtype
    ``spec.dtype``) when its turn comes. Writes the index file when there is more than one file.

    Returns the weight map ``{tensor name: file name}``.
    """
    groups = plan_files(specs, max_file_bytes)
    names = file_names(len(groups))
    weight_map: dict[str, str] = {}
    for file_name, group in zip(names, groups, strict=True):
        with open(out_dir / file_name, "wb") as f:
            f.write(_header(group, {"format": "pt"}))
            for spec in group:
                tensor = produce(spec)
                if tuple(tensor.shape) != spec.shape or tensor.dtype != spec.dtype:
                    raise ValueError(
                        f"{spec.name}: produced {tuple(tensor.shape)} {tensor.dtype}, planned {spec.shape} {spec.dtype}"
                    )
                f.write(_tensor_bytes(tensor))
                weight_map[spec.name] = file_name
                del tensor
                if on_tensor:
                    on_tensor(spec)
    if len(groups) > 1:
        index = {"metadata": {"total_size": sum(s.nbytes for s in specs)}, "weight_map": weight_map}
        (out_dir / INDEX_FILE).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return weight_map


def parse_size(text: str | int) -> int:
    """``"5GB"`` / ``"500MB"`` / ``"2GiB"`` / ``1000`` -> bytes."""
    if isinstance(text, int):
        return text
    units = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    stripped = text.strip().upper()
    number = stripped.rstrip("KMGIB")
    unit = stripped[len(number) :]
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"cannot read size {text!r}; write e.g. 5GB or 500MB") from None
    if unit not in units or value <= 0:
        raise ValueError(f"cannot read size {text!r}; write e.g. 5GB or 500MB")
    return int(value * units[unit])
