"""The ``verl.plugins`` entry point: importing this module registers SmartThinker into verl.

verl imports every ``verl.plugins`` entry point inside ``import verl``, in every process. A failing registration is
logged with the fix and raised (verl would log it at DEBUG only, and the user see "Unknown advantage estimator").

Deployments that cannot pip-install on every node set ``VERL_USE_EXTERNAL_MODULES=smartthinker_verl.plugin``.
"""

from __future__ import annotations

import importlib
import logging
import os

from smartthinker_verl import verl_patches

logger = logging.getLogger(__name__)

#: Modules whose import registers something into verl, in order.
REGISTRATION_MODULES: tuple[str, ...] = (
    "smartthinker_verl.resolvers",  # ${smartthinker_sum:...} of the recipe yaml (rollout.max_model_len)
    "smartthinker_verl.advantage",  # the shaping methods' advantage estimators
    "smartthinker_verl.reward_manager",  # reward-loop manager `smartthinker`
)

#: Imported only where the user selected verl's CPU platform (``VERL_PLATFORM=cpu``).
CPU_PLATFORM_MODULE = "smartthinker_verl.platforms.cpu"


def register_all() -> None:
    """Import every registration module (and the CPU platform where selected) and install the logging patches;
    surface (never hide) a failure."""
    # The test of platforms.cpu.cpu_platform_selected, repeated here: importing it would load the CPU package.
    cpu_selected = os.environ.get("VERL_PLATFORM", "").strip().lower() == "cpu"
    for module_name in REGISTRATION_MODULES + ((CPU_PLATFORM_MODULE,) if cpu_selected else ()):
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
    verl_patches.install_logging_patches()


register_all()
