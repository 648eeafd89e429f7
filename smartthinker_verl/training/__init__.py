"""Old module paths, kept so that commands written before the move to :mod:`smartthinker_verl.launch` still run.

``python -m smartthinker_verl.training.train`` and ``python -m smartthinker_verl.training.cluster_check`` run their
``launch`` modules; ``smartthinker_verl.checkpoint.ShapingStateCallback`` is the same class as
``smartthinker_verl.shaping_state.ShapingStateCallback``.
"""
