"""A verl platform for CPU-only machines: device ``cpu``, gloo collectives, host-memory answers to device queries.

Only :func:`activate` changes verl. verl's resource pools always ask Ray for "GPU" resources, so the CPU config
(``+platform=cpu``) starts Ray with one logical GPU; nothing runs on a GPU.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import types
from typing import Any

import psutil
import torch
from verl.plugin.platform.platform_base import PlatformBase

from smartthinker_verl.platforms.cpu import cpu_platform_selected, vllm_cpu_env

logger = logging.getLogger(__name__)

PLATFORM_NAME = "cpu"


class _CPUStream(torch.cpu.Stream):
    """torch's no-op CPU stream, taking the event verl passes to ``record_event`` and with ``synchronize``."""

    def record_event(self, event: Any = None) -> Any:
        return event

    def synchronize(self) -> None:
        return None


# A ``torch.cuda``-shaped namespace for verl's ``get_torch_device()``; the RNG state is torch's CPU generator's, so
# verl's checkpoints save and restore it.
DEVICE_MODULE = types.ModuleType("smartthinker_verl_cpu_device")
for _name in ("set_device", "synchronize", "empty_cache", "ipc_collect", "reset_peak_memory_stats"):
    setattr(DEVICE_MODULE, _name, lambda *args, **kwargs: None)
for _name in ("memory_allocated", "memory_reserved", "max_memory_allocated", "max_memory_reserved"):
    setattr(DEVICE_MODULE, _name, lambda device=None: 0)
DEVICE_MODULE.is_available = lambda: True
DEVICE_MODULE.device_count = lambda: 1
DEVICE_MODULE.current_device = lambda: "cpu"  # as torch.cpu.current_device(): usable as a device
DEVICE_MODULE.get_device_name = lambda device=None: "CPU"
DEVICE_MODULE.get_device_capability = lambda device=None: (None, None)
DEVICE_MODULE.mem_get_info = lambda device=None: (psutil.virtual_memory().available, psutil.virtual_memory().total)
DEVICE_MODULE.set_per_process_memory_fraction = lambda fraction, device=None: None
DEVICE_MODULE.get_rng_state = lambda device=None: torch.get_rng_state()
DEVICE_MODULE.set_rng_state = lambda state, device=None: torch.set_rng_state(state)
DEVICE_MODULE.manual_seed = torch.manual_seed
DEVICE_MODULE.manual_seed_all = torch.manual_seed
DEVICE_MODULE.Stream = lambda *args, **kwargs: _CPUStream()
DEVICE_MODULE.Event = torch.cpu.Event
DEVICE_MODULE.current_stream = lambda device=None: _CPUStream()
DEVICE_MODULE.stream = lambda stream=None: contextlib.nullcontext()


class PlatformCPU(PlatformBase):
    """verl platform for CPU-only hosts: device ``cpu``, gloo collectives, Ray's logical GPU for scheduling."""

    device_name = vendor_name = property(lambda self: "cpu")
    device_module = property(lambda self: DEVICE_MODULE)

    def _nothing(self, *args: Any, **kwargs: Any) -> None:
        """CPU work is synchronous and has no device state to set, free or profile."""

    set_device = synchronize = set_allocator_settings = empty_cache = profiler_start = profiler_stop = _nothing

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # never auto-detected
        return cpu_platform_selected()

    def current_device(self) -> str:
        # verl declares an int but passes it to `.to()`; torch.cpu.current_device() answers "cpu" too
        return "cpu"

    def device_count(self) -> int:
        return 1

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    manual_seed_all = manual_seed

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextlib.contextmanager
    def nvtx_range(self, msg: str):
        yield

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None

    def rollout_env_vars(self) -> dict[str, str]:
        """The platform flag and :func:`vllm_cpu_env`: verl's vLLMReplica passes these to its server actor and so to
        vLLM's engine processes."""
        return {"VERL_PLATFORM": os.environ.get("VERL_PLATFORM", PLATFORM_NAME), **vllm_cpu_env()}


def _patch_process_group_init() -> None:
    """verl builds ``f"cpu:gloo,{device}:{backend}"``; with device ``cpu`` torch rejects the duplicate entry."""
    import sys

    from verl.utils import distributed

    original = distributed.initialize_global_process_group_ray
    if getattr(original, "_smartthinker_cpu", False):
        return

    @functools.wraps(original)
    def initialize(*args: Any, **kwargs: Any):
        if kwargs.get("backend") in (None, "cpu:gloo,cpu:gloo"):
            kwargs["backend"] = "cpu:gloo"
        return original(*args, **kwargs)

    initialize._smartthinker_cpu = True  # type: ignore[attr-defined]
    distributed.initialize_global_process_group_ray = initialize
    # a module that imported it by name before this ran (normally none: plugins load inside `import verl`)
    engine_workers = sys.modules.get("verl.workers.engine_workers")
    if getattr(engine_workers, "initialize_global_process_group_ray", None) is original:
        engine_workers.initialize_global_process_group_ray = initialize


def activate() -> None:
    """Register the ``cpu`` platform, a single ``cpu:gloo`` backend and the vLLM CPU patches. Idempotent.

    ``VERL_ENGINE_DEVICE=cuda`` (unless set): verl registers its FSDP engines for cuda/npu only; they run unchanged
    on CPU tensors.
    """
    from verl.plugin.platform.platform_manager import PlatformRegistry

    if PlatformRegistry.get(PLATFORM_NAME) is None:
        PlatformRegistry.register(platform=PLATFORM_NAME)(PlatformCPU)
    os.environ.setdefault("VERL_ENGINE_DEVICE", "cuda")
    _patch_process_group_init()
    from smartthinker_verl.platforms.cpu import vllm_patches

    vllm_patches.install()
    logger.debug("smartthinker-verl CPU platform active")
