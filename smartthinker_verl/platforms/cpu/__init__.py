"""verl's CPU platform and the vLLM CPU patches, activated on import only when ``VERL_PLATFORM=cpu`` (docs/cpu.md).

Without it nothing is registered or patched, so a GPU process never touches the CPU path.
"""

from __future__ import annotations

import os


def cpu_platform_selected() -> bool:
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == "cpu"


if cpu_platform_selected():
    from smartthinker_verl.platforms.cpu.platform import activate

    activate()
