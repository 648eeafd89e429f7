"""Length shaping, pure torch (never imports verl): group statistics -> shaped reward -> GRPO normalisation.

- :mod:`.groups`: dense group ids and segment reductions shared by every method (:class:`GroupedBatch`).
- :mod:`.grpo`: GRPO's group normalisation, bit-compatible with verl's ``grpo``.
- :mod:`.registry`: the methods the verl adapter (:mod:`smartthinker_verl.advantage`) registers as estimators.
- :mod:`.smartthinker`: SmartThinker's calibration (eqs. 1-4 of arXiv 2603.08000; docs/algorithm.md).

Importing this package registers every method in :data:`METHODS`.
"""

from smartthinker_verl.shaping import smartthinker  # noqa: F401  (registers the method)
from smartthinker_verl.shaping.groups import GroupedBatch, group_ids_from_index
from smartthinker_verl.shaping.grpo import grpo_normalize
from smartthinker_verl.shaping.registry import METHODS, ShapingMethod, ShapingOutput, get_method
from smartthinker_verl.shaping.smartthinker import CalibrationResult, calibrate

__all__ = [
    "METHODS",
    "CalibrationResult",
    "GroupedBatch",
    "ShapingMethod",
    "ShapingOutput",
    "calibrate",
    "get_method",
    "group_ids_from_index",
    "grpo_normalize",
]
