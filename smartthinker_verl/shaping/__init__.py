"""Length shaping, pure torch (never imports verl): group statistics -> shaped reward -> GRPO normalisation.

- :mod:`.groups`: dense group ids and segment reductions shared by every method (:class:`GroupedBatch`).
- :mod:`.grpo`: GRPO's group normalisation, bit-compatible with verl's ``grpo``.
- :mod:`.registry`: the methods the verl adapter (:mod:`smartthinker_verl.advantage`) registers as estimators, and
  :func:`shaping_method`, the one way to add one.
- :mod:`.smartthinker`: SmartThinker's calibration (eqs. 1-4 of arXiv 2603.08000; docs/algorithm.md).
- Baselines (docs/baselines.md): :mod:`.shorter_better` (arXiv 2504.21370), :mod:`.efficient_reasoning`
  (arXiv 2502.04463), :mod:`.kimi_length` (arXiv 2501.12599), :mod:`.laser_de` (arXiv 2505.15612).

Importing this package registers every method in :data:`METHODS`.
"""

from smartthinker_verl.shaping import (  # noqa: F401  (importing registers each method)
    efficient_reasoning,
    kimi_length,
    laser_de,
    shorter_better,
    smartthinker,
)
from smartthinker_verl.shaping.groups import GroupedBatch, group_ids_from_index  # noqa: F401
from smartthinker_verl.shaping.grpo import grpo_normalize  # noqa: F401
from smartthinker_verl.shaping.registry import (  # noqa: F401  (the package's names)
    METHODS,
    ShapingMethod,
    ShapingOutput,
    estimator_names,
    find_method,
    foreign_option_errors,
    get_method,
    primary_methods,
    shaping_method,
)
from smartthinker_verl.shaping.smartthinker import CalibrationResult, calibrate  # noqa: F401
