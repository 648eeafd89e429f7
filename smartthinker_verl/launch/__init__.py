"""Launch tooling around verl's trainer; none of it is imported by the training processes themselves.

- ``train``          ``python -m smartthinker_verl.launch.train``: compose the recipe config, check it, hand it
                     to verl's ``run_ppo`` (the recipes' entry point)
- ``compose``        compose the recipe yaml with Hydra overrides and validate it (``smartthinker-verl check-config``)
- ``doctor``         preflight of every Ray node before a run (``smartthinker-verl doctor``)
- ``cluster_check``  the plugin check: a Ray job that checks a cluster can run SmartThinker (the doctor runs it too)
- ``memory``         what training without flash-attn holds per micro-batch (the sdpa-fallback warning)
- ``reproduce``      the stages of ``recipes/reproduce.sh`` (preflight, train, convert, eval, report)
- ``config/``        the recipe yaml: ``smartthinker_trainer`` (the paper's setup); ``platform/cpu`` (``+platform=cpu``)
"""
