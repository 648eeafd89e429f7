"""The ``verl.plugins`` entry point: importing this module registers SmartThinker into verl.

verl imports every ``verl.plugins`` entry point inside ``import verl``, in every process that imports verl.
Registration is idempotent (each module runs once per process) and loud: verl logs a failing entry point at DEBUG
only, so the user would later see a puzzling "Unknown advantage estimator"; here the error is logged with the fix.

Deployments that cannot pip-install on every node set ``VERL_USE_EXTERNAL_MODULES=smartthinker_verl.plugin``.
"""

from __future__ import annotations

import importlib
import logging
import os

logger = logging.getLogger(__name__)

#: Modules whose import registers something into verl, in order.
REGISTRATION_MODULES: tuple[str, ...] = (
    "smartthinker_verl.resolvers",  # ${smartthinker_sum:...} of the recipe yaml (rollout.max_model_len)
    "smartthinker_verl.advantage",  # advantage estimator `smartthinker` (alias `grpo_smartthinker`)
    "smartthinker_verl.reward_manager",  # reward-loop manager `smartthinker`
    "smartthinker_verl.step_metrics",  # smartthinker/... statistics into verl's logged metrics
    "smartthinker_verl.file_logger",  # verl's `file` logger keeps the steps before a resumed checkpoint
)

#: Imported only where the user selected verl's CPU platform (``VERL_PLATFORM=cpu``): the platform and the vLLM CPU
#: patches. A GPU process imports nothing of the CPU path.
CPU_PLATFORM_MODULE = "smartthinker_verl.platforms.cpu"


def registration_modules() -> tuple[str, ...]:
    """The modules this process registers: :data:`REGISTRATION_MODULES`, plus the CPU platform when selected."""
    # The test of platforms.cpu.cpu_platform_selected, repeated here: importing it would load the CPU package.
    cpu_selected = os.environ.get("VERL_PLATFORM", "").strip().lower() == "cpu"
    return REGISTRATION_MODULES + ((CPU_PLATFORM_MODULE,) if cpu_selected else ())


def register_all() -> None:
    """Import every registration module; surface (never hide) a failure."""
    for module_name in registration_modules():
        try:
            importlib.import_module(module_name)
        except Exception:
            logger.exception(
                "smartthinker-verl failed to register %s: verl will not know SmartThinker's names in this process. "
                "Fix the error above (reinstall with `pip install -e .` or `make install`; check the verl version "
                "is exactly the pinned one) and run again.",
                module_name,
            )
            raise


register_all()
