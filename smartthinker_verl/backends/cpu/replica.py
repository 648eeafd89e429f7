"""verl glue for the ``hf`` rollout: the replica that starts the server actor, and the trainer-side adapter.

- :class:`HFReplica` (``RolloutReplicaRegistry`` name ``hf``) runs in the trainer's driver process: it starts one
  :class:`~smartthinker_verl.backends.cpu.server.HFRolloutServer` Ray actor per replica, named
  ``hf_server_<replica>_0`` like verl's own servers, and waits until the model is loaded.
- :class:`HFServerAdapter` (``_ROLLOUT_REGISTRY[("hf", "async")]``) lives inside each trainer worker: after every
  update verl hands it the actor's weights, which it gathers and pushes to the server.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterable
from typing import Any

import ray
import torch
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutMode, RolloutReplica

logger = logging.getLogger(__name__)

ROLLOUT_NAME = "hf"


def server_actor_name(replica_rank: int, node_rank: int = 0, suffix: str = "") -> str:
    """Ray name of the server actor of a replica (the scheme verl's vLLM/SGLang servers use)."""
    return f"{ROLLOUT_NAME}_server_{replica_rank}_{node_rank}{suffix}"


class HFReplica(RolloutReplica):
    """A rollout replica backed by one transformers server actor on the local node (CPU)."""

    def rollout_worker_use_gpu(self) -> bool:
        return False

    async def launch_servers(self) -> None:
        """Start the server actor and wait until it has loaded the model (errors surface here, named)."""
        from smartthinker_verl.backends.cpu.server import HFRolloutServer

        if self.rollout_mode != RolloutMode.HYBRID:
            raise NotImplementedError(
                f"the hf CPU rollout supports verl's colocated (hybrid) mode only, not {self.rollout_mode}; "
                "keep actor_rollout_ref.hybrid_engine=True"
            )
        if self.world_size != 1:
            raise ValueError(
                f"the hf CPU rollout runs one process per replica; set rollout.tensor_model_parallel_size=1, "
                f"data_parallel_size=1, pipeline_model_parallel_size=1 (world size is {self.world_size})"
            )
        kind = "reward_" if self.is_reward_model else "teacher_" if self.is_teacher_model else ""
        name = f"{ROLLOUT_NAME}_server_{kind}{self.replica_rank}_0{self.name_suffix}"
        env_vars = {
            key: os.environ[key]
            for key in ("SMARTTHINKER_CPU_THREADS", "SMARTTHINKER_CPU_MAX_BATCH", "VERL_PLATFORM")
            if key in os.environ
        }
        server_cls = ray.remote(HFRolloutServer)
        server = server_cls.options(
            name=name,
            num_cpus=0,
            max_concurrency=self.max_concurrency,
            runtime_env={"env_vars": env_vars},
        ).remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        try:
            await server.ping.remote()
        except ray.exceptions.RayActorError as error:
            raise RuntimeError(
                f"the hf rollout server {name} failed to start: {error}. Check that actor_rollout_ref.model.path "
                "holds a transformers model and that there is enough memory."
            ) from error
        self.servers = [server]
        self._server_handle = server
        self._server_address = f"ray://{name}"


def _to_full_cpu(tensor: torch.Tensor) -> torch.Tensor:
    """A plain CPU tensor from a (possibly sharded DTensor) parameter."""
    if hasattr(tensor, "full_tensor"):
        tensor = tensor.full_tensor()
    return tensor.detach().to("cpu").contiguous()


async def _iterate(weights: Iterable | AsyncIterator) -> AsyncIterator:
    if hasattr(weights, "__aiter__"):
        async for item in weights:
            yield item
    else:
        for item in weights:
            yield item


class HFServerAdapter(BaseRollout):
    """Trainer-side handle on the ``hf`` server: pushes weights, forwards sleep / wake-up (no-ops on CPU)."""

    def __init__(self, config: Any, model_config: Any, device_mesh: Any, replica_rank: int = -1) -> None:
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", "0"))
        rollout_world_size = (
            self.config.tensor_model_parallel_size
            * self.config.data_parallel_size
            * self.config.pipeline_model_parallel_size
        )
        self.replica_rank = rank // rollout_world_size if replica_rank == -1 else replica_rank
        self.rollout_rank = rank % rollout_world_size
        self._has_server = self.rollout_rank == 0
        self.server_handle = None

    def _server(self):
        if self._has_server and self.server_handle is None:
            self.server_handle = ray.get_actor(server_actor_name(self.replica_rank))
        return self.server_handle

    async def resume(self, tags: list[str]) -> None:
        """Nothing to restore on CPU: the server keeps its weights and has no persistent KV cache."""
        return None

    async def release(self) -> None:
        return None

    async def update_weights(self, weights, global_steps: int | None = None, wire_format: str = "named_tensors", **kw):
        """Gather the trainer's weights (every rank iterates: FSDP gathers are collective) and push them.

        Args:
            weights: iterator of ``(name, tensor)`` with Hugging Face parameter names.
            global_steps: the trainer step the weights belong to (recorded by the server).
            wire_format: only ``named_tensors`` (full tensors) is supported.
        """
        if wire_format != "named_tensors":
            raise NotImplementedError(
                f"the hf CPU rollout takes full weights only (wire_format='named_tensors'), got {wire_format!r}; "
                "keep actor_rollout_ref.rollout.checkpoint_engine.backend=naive"
            )
        if kw.get("peft_config") is not None:
            raise NotImplementedError("the hf CPU rollout does not take LoRA adapters; set model.lora.merge=True")
        state: dict[str, torch.Tensor] = {}
        async for name, tensor in _iterate(weights):
            full = _to_full_cpu(tensor)
            if self._has_server:
                state[name] = full
        server = self._server()
        if server is None:
            return None
        loaded = await server.update_weights.remote(state, global_steps=global_steps)
        logger.debug("pushed %d weights to %s (step %s)", loaded, server_actor_name(self.replica_rank), global_steps)
        return None

    def generate_sequences(self, prompts):
        raise NotImplementedError("the hf rollout is server-based; verl's agent loop calls the server directly")
