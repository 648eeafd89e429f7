"""The CPU backend's registration: inert unless selected, and a working verl CPU platform when it is.

Each case runs in a fresh interpreter (verl resolves its platform once per process), with the real verl.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest


def _run(code: str, **env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if k not in ("VERL_PLATFORM", "VERL_ENGINE_DEVICE")}
    environ.update(env)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=environ, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_without_verl_platform_cpu_nothing_about_the_platform_changes():
    out = _run(
        """
        import json, os
        import verl
        from verl.plugin.platform.platform_manager import PlatformRegistry
        from verl.utils import distributed
        import smartthinker_verl.backends.cpu
        print(json.dumps({
            "platforms": list(PlatformRegistry.registered_names()),
            "engine_device": os.environ.get("VERL_ENGINE_DEVICE"),
            "patched": getattr(distributed.initialize_global_process_group_ray, "_smartthinker_cpu", False),
        }))
        """
    )
    assert "cpu" not in out["platforms"]
    assert out["engine_device"] is None
    assert out["patched"] is False


def test_hf_rollout_is_registered_lazily_in_both_verl_registries():
    out = _run(
        """
        import json, sys
        import verl
        import smartthinker_verl.backends.cpu
        heavy_before = "verl.workers.rollout.base" in sys.modules
        from verl.workers.rollout.base import get_rollout_class
        from verl.workers.rollout.replica import RolloutReplicaRegistry, get_rollout_replica_class
        print(json.dumps({
            "heavy_before": heavy_before,
            "replica": get_rollout_replica_class("hf").__name__,
            "adapter": get_rollout_class("hf", "async").__name__,
            "vllm_still_there": "vllm" in RolloutReplicaRegistry._registry,
        }))
        """,
        # only this module: other plugins may import verl's rollout modules themselves
        VERL_USE_EXTERNAL_PLUGINS="none",
        VERL_USE_EXTERNAL_MODULES="",
    )
    assert out == {
        "heavy_before": False,
        "replica": "HFReplica",
        "adapter": "HFServerAdapter",
        "vllm_still_there": True,
    }


def test_cpu_platform_drives_verl_device_helpers_and_a_gloo_process_group():
    out = _run(
        """
        import json, os
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="0", RANK="0", WORLD_SIZE="1")
        import torch, verl
        from verl.utils.device import get_device_name, get_nccl_backend, get_torch_device, get_device_id
        from verl.utils.distributed import initialize_global_process_group_ray
        from verl.utils.flops_counter import get_device_flops
        os.environ["MASTER_PORT"] = str(__import__("socket").create_server(("127.0.0.1", 0)).getsockname()[1])
        initialize_global_process_group_ray()
        t = torch.ones(3)
        torch.distributed.all_reduce(t)
        free, total = get_torch_device().mem_get_info()
        print(json.dumps({
            "device": get_device_name(), "backend": get_nccl_backend(),
            "pg_backend": torch.distributed.get_backend(), "sum": t.tolist(),
            "moved": str(torch.zeros(1).to(get_device_id()).device), "mem_ok": 0 < free <= total,
            "engine_device": os.environ.get("VERL_ENGINE_DEVICE"), "flops": get_device_flops() > 0,
        }))
        torch.distributed.destroy_process_group()
        """,
        VERL_PLATFORM="cpu",
    )
    assert out["device"] == "cpu" and out["backend"] == "gloo"
    assert out["pg_backend"] in ("gloo", "cpu:gloo")  # one gloo entry, not "cpu:gloo,cpu:gloo"
    assert out["sum"] == [1.0, 1.0, 1.0]
    assert out["moved"] == "cpu"
    assert out["mem_ok"] is True
    assert out["engine_device"] == "cuda"  # verl's FSDP engines are registered for cuda/npu; they run on CPU tensors


@pytest.mark.parametrize("value", ["cpu", "CPU "])
def test_platform_selection_is_explicit_only(value):
    out = _run(
        """
        import json
        import verl
        from verl.plugin.platform.platform_manager import PlatformRegistry
        cls = PlatformRegistry.get("cpu")
        import os
        available = cls().is_platform_available(use_smi_check=True)
        os.environ["VERL_PLATFORM"] = "nvidia"
        print(json.dumps({"selected": available, "after_unset": cls().is_platform_available(use_smi_check=True)}))
        """,
        VERL_PLATFORM=value,
    )
    assert out == {"selected": True, "after_unset": False}
