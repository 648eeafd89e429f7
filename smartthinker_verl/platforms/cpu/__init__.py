"""verl's CPU platform, registered on import (by ``smartthinker_verl.plugin``) when ``VERL_PLATFORM=cpu``.

The plugin entry imports this package only in processes where ``VERL_PLATFORM=cpu`` (a GPU process imports nothing of
the CPU path); imported directly without it, it registers and patches nothing. With it,
:func:`smartthinker_verl.platforms.cpu.platform.activate` registers the platform and installs the few vLLM patches
verl's own ``vllm`` rollout needs on vLLM's CPU build (:mod:`smartthinker_verl.platforms.cpu.vllm_patches`).

See docs/cpu.md for how verl's trainer and rollout run on CPU.
"""

from __future__ import annotations

import os


def cpu_platform_selected() -> bool:
    """True when the user selected verl's CPU platform (``VERL_PLATFORM=cpu``)."""
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == "cpu"


if cpu_platform_selected():
    from smartthinker_verl.platforms.cpu.platform import activate

    activate()
