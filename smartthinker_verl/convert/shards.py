"""Open and check the FSDP shards of one actor checkpoint, then join them tensor by tensor with verl's merger.

verl's ``FSDPModelMerger`` reads every shard fully into memory and casts everything to bfloat16 before joining.
This module keeps verl's joining rules (device-mesh detection, which ranks form one full copy, concatenation by
DTensor placement, the replicated-entry check) by calling the merger's own methods, and changes only how the
shards are read: memory-mapped, one tensor at a time (the pages of joined pieces are given back, see ``pages``),
in the dtype the caller asks for (no precision loss for float32). Everything is checked before anything is
written: every rank of the recorded world size present, every file readable, the same entries with the same
global shapes, dtypes and placements on every rank, and local pieces that add up to the global shape.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.distributed.tensor import DTensor
from verl.model_merger.base_model_merger import ModelMergerConfig
from verl.model_merger.fsdp_model_merger import FSDPModelMerger, merge_non_dtensor_shards

from .errors import ShardError
from .pages import PageReleaser

logger = logging.getLogger(__name__)

SHARD_RE = re.compile(r"^model_world_size_(\d+)_rank_(\d+)\.pt$")


@dataclass(frozen=True)
class EntryInfo:
    """Metadata of one state-dict entry: global ``shape``, stored ``dtype``, and its DTensor placements."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    placements: tuple | None  # None: a plain tensor, replicated on every rank


def make_merger(actor_dir: Path, target_dir: Path | None = None, trust_remote_code: bool = False) -> FSDPModelMerger:
    """verl's FSDP merger for ``actor_dir`` (reads ``actor_dir/huggingface`` for the model config)."""
    hf_dir = actor_dir / "huggingface"
    if not (hf_dir / "config.json").exists():
        raise ShardError(f"{hf_dir / 'config.json'} is missing: the trainer writes the model config there; re-copy it")
    config = ModelMergerConfig(
        operation="merge",
        backend="fsdp",
        local_dir=str(actor_dir),
        hf_model_config_path=str(hf_dir),
        target_dir=str(target_dir) if target_dir else None,
        trust_remote_code=trust_remote_code,
    )
    return FSDPModelMerger(config)


def read_fsdp_config(actor_dir: Path) -> tuple[int, int]:
    """``(world_size, FSDP_version)`` from ``fsdp_config.json``, with errors that name the file."""
    path = actor_dir / "fsdp_config.json"
    if not path.exists():
        raise ShardError(f"{path} is missing: without it the world size of the shards is unknown; re-copy it")
    try:
        data = json.loads(path.read_text())
        world_size = int(data["world_size"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ShardError(
            f"{path} is not a valid FSDP config ({exc}); expected {{'FSDP_version': 2, 'world_size': W}}"
        ) from None
    if world_size < 1:
        raise ShardError(f"{path} records world_size={world_size}; it must be >= 1")
    return world_size, int(data.get("FSDP_version", 0) or 0)


class ShardSet:
    """The checked, memory-mapped shards of one actor checkpoint.

    Use ``names`` / ``info`` for metadata and ``join(name, dtype)`` for one full tensor (shape ``info[name].shape``).
    Opening reads only file headers and tensor metadata (the data stays on disk until joined).
    """

    def __init__(self, actor_dir: str | Path, merger: FSDPModelMerger | None = None):
        self.actor_dir = Path(actor_dir)
        self.merger = merger or make_merger(self.actor_dir)
        self.world_size, self.fsdp_version = read_fsdp_config(self.actor_dir)
        self.files = self._check_files()
        self._state_dicts = [self._load(path) for path in self.files]
        self._pages = PageReleaser(self.files)  # joined pieces leave the process's resident memory
        mesh, self.mesh_dim_names = self.merger._extract_device_mesh_info(self._state_dicts[0], self.world_size)
        try:
            self.total_shards, self.mesh_shape = self.merger._calculate_shard_configuration(mesh, self.mesh_dim_names)
        except AssertionError as exc:
            raise ShardError(f"{self.files[0]}: unsupported device mesh {self.mesh_dim_names} ({exc})") from None
        if len(self.mesh_shape) != 1:
            raise ShardError(f"{self.files[0]}: FSDP with tensor parallelism (mesh {self.mesh_shape}) is not supported")
        # with an HSDP (ddp, fsdp) mesh, ranks 0..fsdp_size-1 hold one full copy (verl's merger reads only those)
        self.info = self._check_consistency()
        self.names = sorted(self.info)

    # ----------------------------------------------------------------------------------------------- checks
    def _check_files(self) -> list[Path]:
        world = self.world_size
        expected = [self.actor_dir / f"model_world_size_{world}_rank_{rank}.pt" for rank in range(world)]
        for path in expected:
            if not path.exists():
                raise ShardError(
                    f"{path} is missing: fsdp_config.json records world_size={world}, so ranks 0..{world - 1} are "
                    "all needed; copy the missing file from the training machine (or convert another step)"
                )
            if path.stat().st_size == 0:
                raise ShardError(f"{path} is empty (the save was interrupted?); re-copy it or convert another step")
        for path in self.actor_dir.glob("model_world_size_*_rank_*.pt"):
            match = SHARD_RE.match(path.name)
            if not match:
                continue
            size, rank = int(match.group(1)), int(match.group(2))
            if size == world and rank >= world:
                raise ShardError(
                    f"{path} does not belong to a world of {world} ranks (fsdp_config.json); remove the stray file"
                )
            if size != world:
                logger.warning("ignoring %s: fsdp_config.json records world_size=%d", path.name, world)
        return expected

    @staticmethod
    def _load(path: Path) -> dict:
        # unpickling a DTensor's device mesh without a process group makes torch warn about torch.compile;
        # nothing here compiles, so keep that warning out of the user's console
        mesh_logger = logging.getLogger("torch.distributed.device_mesh")
        level = mesh_logger.level
        mesh_logger.setLevel(logging.ERROR)
        try:
            state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        except Exception as exc:  # torch raises RuntimeError/EOFError/pickle errors for damaged files
            raise ShardError(
                f"{path} cannot be read ({type(exc).__name__}: {exc}); it is truncated or corrupt: re-copy it from "
                "the training machine or convert another step"
            ) from None
        finally:
            mesh_logger.setLevel(level)
        if not isinstance(state, dict) or not state:
            raise ShardError(f"{path} does not hold a model state dict (got {type(state).__name__})")
        bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
        if bad:
            raise ShardError(f"{path}: entries {bad[:3]} are not tensors; is this a model_world_size_* file?")
        return state

    def _check_consistency(self) -> dict[str, EntryInfo]:
        first = self._state_dicts[0]
        for path, state in zip(self.files[1:], self._state_dicts[1:], strict=True):
            if state.keys() != first.keys():
                missing = sorted(first.keys() - state.keys())[:3]
                extra = sorted(state.keys() - first.keys())[:3]
                raise ShardError(
                    f"{path} does not match rank 0's entries (missing {missing}, extra {extra}); it comes from "
                    "another model or run: re-copy the shards of one checkpoint"
                )
        info = {}
        group = self._state_dicts[: self.total_shards]
        for name, ref in first.items():
            placements = self._placements(ref)
            for path, state in zip(self.files, self._state_dicts, strict=True):
                tensor = state[name]
                if isinstance(tensor, DTensor) != isinstance(ref, DTensor) or tensor.shape != ref.shape:
                    raise ShardError(
                        f"{path}: {name} has shape {tuple(tensor.shape)} but rank 0 has {tuple(ref.shape)}; the "
                        "shards come from different models: re-copy the shards of one checkpoint"
                    )
                if tensor.dtype != ref.dtype or self._placements(tensor) != placements:
                    raise ShardError(f"{path}: {name} differs from rank 0 in dtype or placement")
                if isinstance(tensor, DTensor) and tensor.device_mesh.size() != self.world_size:
                    raise ShardError(
                        f"{path}: {name} was saved on {tensor.device_mesh.size()} ranks but fsdp_config.json "
                        f"records world_size={self.world_size}; the files come from different runs"
                    )
            if placements is not None:
                self._check_pieces(name, ref, [state[name] for state in group], placements)
            info[name] = EntryInfo(tuple(ref.shape), ref.dtype, placements)
        return info

    def _placements(self, tensor: torch.Tensor) -> tuple | None:
        if not isinstance(tensor, DTensor):
            return None
        placements = tuple(tensor.placements)
        # verl's rule: the replicated data-parallel dimension of an HSDP mesh carries no data to join
        if self.mesh_dim_names[0] in ("dp", "ddp"):
            placements = placements[1:]
        return placements

    def _check_pieces(self, name: str, ref: DTensor, pieces: list[DTensor], placements: tuple) -> None:
        (placement,) = placements
        if not placement.is_shard():
            return
        dim = placement.dim
        total = 0
        for path, piece in zip(self.files[: len(pieces)], pieces, strict=True):
            local = piece._local_tensor.shape
            if len(local) != len(ref.shape) or any(
                a != b for i, (a, b) in enumerate(zip(local, ref.shape, strict=True)) if i != dim
            ):
                raise ShardError(f"{path}: local piece of {name} has shape {tuple(local)}, global {tuple(ref.shape)}")
            total += local[dim]
        if total != ref.shape[dim]:
            raise ShardError(
                f"{self.files[0].parent}: the pieces of {name} add up to {total} rows along dim {dim}, expected "
                f"{ref.shape[dim]}; a shard is truncated or from another run"
            )

    # ------------------------------------------------------------------------------------------------- join
    def join(self, name: str, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The full tensor ``name`` (global shape), in ``dtype`` (None: the stored dtype).

        Each value is rounded once, from the stored precision, exactly as casting the unsharded tensor would
        (casting is element-wise, so the pieces are cast before concatenation: less memory for the same bits).
        """
        entry = self.info[name]
        pieces = [state[name] for state in self._state_dicts[: self.total_shards]]
        if entry.placements is None:
            try:
                full = merge_non_dtensor_shards(name, list(pieces))
            except ValueError as exc:
                raise ShardError(f"{self.actor_dir}: {exc}") from None
            full = full.to(dtype) if dtype is not None and full.dtype != dtype else full.clone()
        else:
            locals_ = [p._local_tensor for p in pieces]
            if dtype is not None and entry.dtype != dtype:
                locals_ = [t.to(dtype) for t in locals_]
            full = self.merger._merge_by_placement(locals_, entry.placements[0])
            if any(full.data_ptr() == p._local_tensor.data_ptr() for p in pieces):  # replicated: leave the map
                full = full.clone()
        for piece in pieces:
            self._pages.release(piece._local_tensor if isinstance(piece, DTensor) else piece)
        return full

    def close(self) -> None:
        """Drop the memory maps."""
        self._state_dicts = []
