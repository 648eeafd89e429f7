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
        import smartthinker_verl.platforms.cpu
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


def test_without_verl_platform_cpu_vllm_is_not_patched():
    out = _run(
        """
        import json, sys
        import verl
        import smartthinker_verl.plugin
        from vllm.model_executor.layers.linear import UnquantizedLinearMethod
        print(json.dumps({
            "patches_module_loaded": "smartthinker_verl.platforms.cpu.vllm_patches" in sys.modules,
            "patched": getattr(UnquantizedLinearMethod.process_weights_after_loading, "_smartthinker_cpu", False),
        }))
        """
    )
    assert out == {"patches_module_loaded": False, "patched": False}


def test_on_the_cpu_platform_vllm_linear_layers_take_a_second_weight_push():
    """vLLM's real CPU linear layer (oneDNN repacking): verl reloads weights in place, then re-runs
    process_weights_after_loading. Upstream drops the weight on CPU, so the second load fails with
    "'Parameter' object has no attribute 'weight_loader'"; with the patch it loads and computes with the new weight.
    """
    out = _run(
        """
        import json, sys, socket
        import verl
        import smartthinker_verl.plugin
        imported_before = "vllm.model_executor.layers.linear" in sys.modules
        import torch
        from vllm.config import VllmConfig, set_current_vllm_config
        from vllm.distributed import init_distributed_environment, initialize_model_parallel
        from vllm.model_executor.layers.linear import ReplicatedLinear
        from vllm.platforms import current_platform
        port = socket.create_server(("127.0.0.1", 0)).getsockname()[1]
        with set_current_vllm_config(VllmConfig()):
            init_distributed_environment(
                world_size=1, rank=0, local_rank=0, distributed_init_method=f"tcp://127.0.0.1:{port}", backend="gloo"
            )
            initialize_model_parallel(1, 1)
            layer = ReplicatedLinear(64, 32, bias=False, params_dtype=torch.float32)
        x = torch.randn(2, 64)
        first, second = torch.randn(32, 64), torch.randn(32, 64)
        for w in (first,):
            layer.weight.weight_loader(layer.weight, w)
        layer.quant_method.process_weights_after_loading(layer)
        out_first = layer(x)[0]
        layer.weight.weight_loader(layer.weight, second)
        layer.quant_method.process_weights_after_loading(layer)
        out_second = layer(x)[0]
        print(json.dumps({
            "imported_before": imported_before,
            "platform": current_platform.device_type,
            "weight_kept": tuple(layer.weight.shape) == (32, 64),
            "first_ok": torch.allclose(out_first, x @ first.T, atol=1e-4),
            "second_ok": torch.allclose(out_second, x @ second.T, atol=1e-4),
        }))
        """,
        VERL_PLATFORM="cpu",
    )
    assert out == {
        "imported_before": False,  # applied when vLLM imports the module: nothing heavy is imported up front
        "platform": "cpu",
        "weight_kept": True,
        "first_ok": True,
        "second_ok": True,  # the repacked kernel computes with the pushed weight
    }


def test_a_vllm_patch_fails_loudly_when_the_upstream_symbol_changed():
    out = _run(
        """
        import json
        from smartthinker_verl.platforms.cpu import vllm_patches
        from vllm.model_executor.layers import linear

        class Changed:
            def process_weights_after_loading(self, layer):
                return None

        linear.UnquantizedLinearMethod = Changed
        try:
            vllm_patches.keep_linear_weights(linear)
            print(json.dumps({"raised": None}))
        except vllm_patches.SetupError as error:
            print(json.dumps({"raised": str(error)}))
        """
    )
    assert "keep_linear_weights" in out["raised"] and "make install" in out["raised"]


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
