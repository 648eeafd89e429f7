"""Open and check the FSDP shards of one actor checkpoint, then join them into one state dict.

verl's ``merge_and_save`` casts every piece to bfloat16 before joining, which loses the float32 training weights,
and unpickles the files with ``weights_only=False``, so loading and casting are done here and verl's merger only
joins the pieces (``_merge_by_placement``, ``merge_non_dtensor_shards``), following its rules: ranks
``0..fsdp_size-1`` hold one full copy (an HSDP mesh's first dimension is a replica), a ``Shard(d)`` entry is the
concatenation along ``d``, a ``Replicate`` entry any piece, a plain tensor equal on every rank.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch
from torch.distributed.tensor import DTensor
from verl.model_merger.fsdp_model_merger import FSDPModelMerger, merge_non_dtensor_shards

from .errors import ShardError

logger = logging.getLogger(__name__)

SHARD_RE = re.compile(r"^model_world_size_(\d+)_rank_(\d+)\.pt$")
SUPPORTED_MESHES = (("fsdp",), ("ddp", "fsdp"))


def shard_files(actor_dir: Path) -> list[Path]:
    """The rank files of the world size in ``fsdp_config.json``: all present and non-empty, no stray rank beyond."""
    config = actor_dir / "fsdp_config.json"
    if not config.exists():
        raise ShardError(f"{config} is missing: without it the world size of the shards is unknown; re-copy it")
    try:
        world_size = int(json.loads(config.read_text())["world_size"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ShardError(
            f"{config} is not a valid FSDP config ({exc}); expected {{'FSDP_version': 2, 'world_size': W}}"
        ) from None
    if world_size < 1:
        raise ShardError(f"{config} records world_size={world_size}; it must be >= 1")
    expected = [actor_dir / f"model_world_size_{world_size}_rank_{rank}.pt" for rank in range(world_size)]
    for path in expected:
        if not path.exists():
            raise ShardError(
                f"{path} is missing: fsdp_config.json records world_size={world_size}, so ranks "
                f"0..{world_size - 1} are all needed; copy the missing file from the training machine (or convert "
                "another step)"
            )
        if path.stat().st_size == 0:
            raise ShardError(f"{path} is empty (the save was interrupted?); re-copy it or convert another step")
    for path in actor_dir.glob("model_world_size_*_rank_*.pt"):
        match = SHARD_RE.match(path.name)
        if match and int(match.group(1)) == world_size and int(match.group(2)) >= world_size:
            raise ShardError(
                f"{path} does not belong to a world of {world_size} ranks (fsdp_config.json); remove the stray file"
            )
        if match and int(match.group(1)) != world_size:
            logger.warning("ignoring %s: fsdp_config.json records world_size=%d", path.name, world_size)
    return expected


def load_shard(path: Path) -> dict[str, torch.Tensor]:
    """One rank's state dict, memory-mapped (its data stays on disk until read).

    Loaded with ``weights_only=True``: only tensors, containers and the classes torch allows are unpickled
    (``torch.distributed.tensor`` adds DTensor, its spec, placements and device mesh to that list when imported, as
    here), so a shard from elsewhere cannot run code when it is converted; anything else is refused unread.
    """
    # unpickling a DTensor's device mesh without a process group makes torch warn about torch.compile
    mesh_logger = logging.getLogger("torch.distributed.device_mesh")
    level = mesh_logger.level
    mesh_logger.setLevel(logging.ERROR)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch raises RuntimeError/EOFError/UnpicklingError for damaged files
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if refused:
            raise ShardError(
                f"{path} holds objects other than tensors (a pickled {refused.group(1)}); unpickling them could run "
                "code, so it is refused. Fix: convert only checkpoints written by verl's trainer (their "
                "model_world_size_* files hold tensors and DTensors only)"
            ) from None
        raise ShardError(
            f"{path} cannot be read ({type(exc).__name__}: {exc}); it is truncated or corrupt: re-copy it from "
            "the training machine or convert another step"
        ) from None
    finally:
        mesh_logger.setLevel(level)
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ShardError(f"{path} does not hold a model state dict of tensors; is this a model_world_size_* file?")
    return state


def load_shards(actor_dir: Path) -> list[dict[str, torch.Tensor]]:
    """Every rank's memory-mapped state dict, checked: each has rank 0's entries, with the same global shape, dtype,
    placement and mesh size."""
    files = shard_files(actor_dir)
    states = [load_shard(path) for path in files]
    first = states[0]
    for path, state in zip(files, states, strict=True):
        if state.keys() != first.keys():
            missing, extra = sorted(first.keys() - state.keys())[:3], sorted(state.keys() - first.keys())[:3]
            raise ShardError(
                f"{path} does not match rank 0's entries (missing {missing}, extra {extra}); it comes from "
                "another model or run: re-copy the shards of one checkpoint"
            )
        for name, ref in first.items():
            tensor = state[name]
            if isinstance(tensor, DTensor) != isinstance(ref, DTensor) or tensor.shape != ref.shape:
                raise ShardError(
                    f"{path}: {name} has shape {tuple(tensor.shape)} but rank 0 has {tuple(ref.shape)}; the "
                    "shards come from different models: re-copy the shards of one checkpoint"
                )
            if tensor.dtype != ref.dtype or (isinstance(ref, DTensor) and tensor.placements != ref.placements):
                raise ShardError(f"{path}: {name} differs from rank 0 in dtype or placement")
            if isinstance(tensor, DTensor) and tensor.device_mesh.size() != len(files):
                raise ShardError(
                    f"{path}: {name} was saved on {tensor.device_mesh.size()} ranks but fsdp_config.json "
                    f"records world_size={len(files)}; the files come from different runs"
                )
    return states


def join_shards(
    actor_dir: Path, states: list[dict[str, torch.Tensor]], merger: FSDPModelMerger, dtype: torch.dtype | None
) -> dict[str, torch.Tensor]:
    """The full (unsharded) state dict, floating-point entries cast to ``dtype`` (None: as stored); the pieces are
    cast before joining (the same bits, element-wise, with less memory)."""
    # how many ranks hold one full copy: the size of the mesh's last (``fsdp``) dimension; 1 when nothing is sharded
    replica_size = 1
    dtensor = next((t for t in states[0].values() if isinstance(t, DTensor)), None)
    if dtensor is not None:
        names = tuple(dtensor.device_mesh.mesh_dim_names or ())
        if names not in SUPPORTED_MESHES:
            raise ShardError(
                f"{actor_dir}: device mesh {names} is not supported (only FSDP {SUPPORTED_MESHES[0]} or HSDP "
                f"{SUPPORTED_MESHES[1]}; tensor parallelism is not)"
            )
        replica_size = dtensor.device_mesh.size(len(names) - 1)
    joined = {}
    for name in sorted(states[0]):
        pieces = [state[name] for state in states[:replica_size]]
        sharded = isinstance(pieces[0], DTensor)
        locals_ = [p.to_local() if sharded else p for p in pieces]
        if dtype is not None and pieces[0].dtype.is_floating_point:
            locals_ = [t.to(dtype) for t in locals_]
        try:  # unequal plain copies, a Partial placement, pieces that do not join
            if sharded:  # an HSDP mesh's first dimension is a replica
                joined[name] = merger._merge_by_placement(locals_, pieces[0].placements[-1])
            else:
                joined[name] = merge_non_dtensor_shards(name, locals_)
            if joined[name].shape != pieces[0].shape:
                raise ValueError(f"pieces {[tuple(t.shape) for t in locals_]} do not join to {tuple(pieces[0].shape)}")
        except (ValueError, NotImplementedError, RuntimeError) as exc:
            raise ShardError(f"{actor_dir}: {name}: {exc}; a shard is truncated or from another run") from None
    logger.info("joined %d entries of %s (%d ranks a copy)", len(joined), actor_dir, replica_size)
    return joined
