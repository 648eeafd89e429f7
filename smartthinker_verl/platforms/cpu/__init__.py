"""verl's CPU platform and the vLLM CPU patches, activated on import only when ``VERL_PLATFORM=cpu`` (docs/cpu.md).

Without it nothing is registered or patched, so a GPU process never touches the CPU path.
"""

from __future__ import annotations

import os


def cpu_platform_selected() -> bool:
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == "cpu"


def vllm_cpu_env() -> dict[str, str]:
    """vLLM CPU settings, the environment's winning. vLLM binds its worker to all cores but one, kept for its
    scheduler; the default here gives the worker every core this process may use and reserves none (docs/cpu.md)."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    defaults = {
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB: vLLM's CPU build sizes its KV cache from this, not gpu_memory_utilization
        "VLLM_CPU_OMP_THREADS_BIND": ",".join(str(core) for core in cores),
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
    }
    return {key: os.environ.get(key, value) for key, value in defaults.items()}


if cpu_platform_selected():
    from smartthinker_verl.platforms.cpu.platform import activate

    activate()
