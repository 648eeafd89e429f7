"""Length shaping, pure torch (never imports verl): group statistics (:mod:`.groups`) -> shaped reward
(:mod:`.smartthinker`, eqs. 1-4 of arXiv 2603.08000; the baselines of docs/baselines.md, one module each) -> GRPO
normalisation (:mod:`.grpo`). Importing this package registers every method in :data:`METHODS` (:mod:`.registry`).
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
    shaping_method,
)
from smartthinker_verl.shaping.smartthinker import CalibrationResult, calibrate  # noqa: F401
