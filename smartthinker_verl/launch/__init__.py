"""Launch tooling around verl's trainer; none of it is imported by the training processes themselves.

- ``train``          ``python -m smartthinker_verl.launch.train``: compose the recipe config, check it, hand it
                     to verl's ``run_ppo`` (the recipes' entry point)
- ``compose``        compose the recipe yaml with Hydra overrides (what every launch path runs)
- ``validate``       every check of a composed config, each problem with its key and fix
- ``check_config``   ``smartthinker-verl check-config``: compose, validate, print the YAML
- ``doctor``         preflight of every Ray node before a run (``smartthinker-verl doctor``)
- ``cluster_check``  the plugin check: a Ray job that checks a cluster can run SmartThinker (the doctor runs it too)
- ``reproduce``      the stages of ``recipes/reproduce.sh`` (preflight, train, convert, eval, report)
- ``config/``        the recipe yaml: ``smartthinker_trainer`` (the paper's setup), ``platform/cpu``
                     (``+platform=cpu``), ``attention/sdpa`` (``+attention=sdpa``)
"""
