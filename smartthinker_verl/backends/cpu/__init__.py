"""verl CPU platform and the ``hf`` rollout backend, registered on import (by ``smartthinker_verl.plugin``).

Cheap and inert by design, because every process that imports verl imports this:

- the CPU platform is registered only when ``VERL_PLATFORM=cpu``; otherwise verl's platform detection is untouched;
- the rollout name ``hf`` is added to verl's two rollout registries lazily, right after verl itself imports them
  (a post-import hook; nothing heavy is imported here). It only adds a name: ``vllm``/``sglang`` runs never look it up.

See docs/cpu.md for how verl's trainer runs on CPU with these.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import sys

logger = logging.getLogger(__name__)

ROLLOUT_NAME = "hf"
REPLICA_PATH = "smartthinker_verl.backends.cpu.replica"
_REPLICA_MODULE = "verl.workers.rollout.replica"
_BASE_MODULE = "verl.workers.rollout.base"


def _load_replica_class():
    from smartthinker_verl.backends.cpu.replica import HFReplica

    return HFReplica


def _register_replica(module) -> None:
    registry = module.RolloutReplicaRegistry
    if registry._registry.get(ROLLOUT_NAME) is not _load_replica_class:
        registry.register(ROLLOUT_NAME, _load_replica_class)


def _register_adapter(module) -> None:
    module._ROLLOUT_REGISTRY.setdefault((ROLLOUT_NAME, "async"), f"{REPLICA_PATH}.HFServerAdapter")


_HOOKS = {_REPLICA_MODULE: _register_replica, _BASE_MODULE: _register_adapter}


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Runs a registration right after verl executes one of the rollout registry modules."""

    def find_spec(self, fullname, path, target=None):
        hook = _HOOKS.get(fullname)
        if hook is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _HookedLoader(spec.loader, hook)
                return spec
        return None


class _HookedLoader(importlib.abc.Loader):
    def __init__(self, loader, hook) -> None:
        self._loader = loader
        self._hook = hook

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        self._hook(module)

    def __getattr__(self, name):  # get_resource_reader, get_filename, ... of the wrapped loader
        return getattr(self._loader, name)


def register_rollout() -> None:
    """Add ``hf`` to verl's rollout registries now (modules already imported) or when verl imports them. Idempotent."""
    pending = False
    for module_name, hook in _HOOKS.items():
        module = sys.modules.get(module_name)
        if module is not None and hasattr(
            module, "RolloutReplicaRegistry" if hook is _register_replica else "_ROLLOUT_REGISTRY"
        ):
            hook(module)
        else:
            pending = True
    if pending and not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())


def cpu_platform_selected() -> bool:
    """True when the user selected verl's CPU platform (``VERL_PLATFORM=cpu``)."""
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == "cpu"


register_rollout()
if cpu_platform_selected():
    from smartthinker_verl.backends.cpu.platform import activate

    activate()
