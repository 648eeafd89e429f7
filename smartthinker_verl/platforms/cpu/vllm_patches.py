"""The patches vLLM's CPU build needs to serve verl's ``vllm`` rollout; installed only by the CPU platform.

A patch runs when vLLM imports the module it patches (or at once if it already has), in every process that loads a
model (vLLM's worker imports verl, and so this plugin, first). It checks that the upstream code still looks the way
it assumes and raises :class:`SetupError` naming the vLLM version otherwise, so an upgrade fails at start-up
rather than mid-training.
"""

from __future__ import annotations

import importlib.abc
import inspect
import logging
import sys
from types import ModuleType

from smartthinker_verl.errors import SetupError

logger = logging.getLogger(__name__)

#: The vLLM release these patches were written against (verl 0.9.1's pin; setup.py's VLLM_VERSION).
WRITTEN_FOR = "0.24.0"


def _fail(what: str) -> SetupError:
    return SetupError(
        f"smartthinker-verl's vLLM CPU patch 'keep_linear_weights' (written for vLLM {WRITTEN_FOR}) cannot be "
        f"applied: {what}. Install the pinned vLLM ({WRITTEN_FOR}: `make install`), or check whether the installed "
        "vLLM still needs the patch and update smartthinker_verl/platforms/cpu/vllm_patches.py"
    )


_LINEAR_MODULE = "vllm.model_executor.layers.linear"
_UPSTREAM_CALL = "dispatch_cpu_unquantized_gemm(layer, remove_weight=True)"


def keep_linear_weights(linear: ModuleType) -> None:
    """Keep unquantised linear weights loadable after vLLM's CPU repacking, so verl can push weights in place.

    On CPU vLLM calls ``dispatch_cpu_unquantized_gemm(layer, remove_weight=True)``, leaving an empty ``layer.weight``
    without a ``weight_loader``; verl's next push then fails ("'Parameter' object has no attribute 'weight_loader'").
    With ``remove_weight=False`` (as vLLM does for embeddings) verl's re-run of ``process_weights_after_loading``
    repacks each pushed weight, at the cost of one extra copy of the linear weights in host memory.
    """
    method = getattr(linear, "UnquantizedLinearMethod", None)
    original = getattr(method, "process_weights_after_loading", None)
    if original is None:
        raise _fail(f"{_LINEAR_MODULE}.UnquantizedLinearMethod.process_weights_after_loading is gone")
    if getattr(original, "_smartthinker_cpu", False):
        return
    from vllm.model_executor.layers import utils as layer_utils
    from vllm.platforms import current_platform

    dispatch = getattr(layer_utils, "dispatch_cpu_unquantized_gemm", None)
    if dispatch is None or "remove_weight" not in inspect.signature(dispatch).parameters:
        raise _fail("vllm.model_executor.layers.utils.dispatch_cpu_unquantized_gemm changed")
    try:
        source = inspect.getsource(original)
    except (OSError, TypeError) as error:
        raise _fail(f"the source of process_weights_after_loading is unreadable ({error})") from error
    if _UPSTREAM_CALL not in source:
        raise _fail(f"process_weights_after_loading no longer calls {_UPSTREAM_CALL}")

    def process_weights_after_loading(self, layer) -> None:
        if current_platform.is_cpu():
            dispatch(layer, remove_weight=False)
        else:
            original(self, layer)

    process_weights_after_loading.__doc__ = keep_linear_weights.__doc__
    process_weights_after_loading._smartthinker_cpu = True  # type: ignore[attr-defined]
    method.process_weights_after_loading = process_weights_after_loading
    logger.debug("vLLM CPU patch keep_linear_weights applied")


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Runs :func:`keep_linear_weights` right after vLLM executes its linear-layer module: the spec of the finder that
    would have found the module, with its (per-module) loader's ``exec_module`` wrapped."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _LINEAR_MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and hasattr(spec.loader, "exec_module"):

                def exec_module(module, execute=spec.loader.exec_module) -> None:
                    execute(module)
                    keep_linear_weights(module)

                spec.loader.exec_module = exec_module
                return spec
        return None


def install() -> None:
    """Apply the patch now (module already imported) or when vLLM imports it. Idempotent."""
    if _LINEAR_MODULE in sys.modules:
        keep_linear_weights(sys.modules[_LINEAR_MODULE])
    if not any(isinstance(finder, _PatchAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchAfterImport())
