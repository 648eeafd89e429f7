"""The length arena (``smartthinker-verl arena``): every length-shaping method, through verl's own advantage path, on
simulated prompts whose accuracy-vs-length curve, and so whose best length, is known (docs/arena.md).

Tooling only; no training process imports it.

- :mod:`.curves`: the difficulty levels, their P(correct | length) and critical lengths; user curve files.
- :mod:`.policy`: one log-normal policy over response length per prompt, trained by REINFORCE.
- :mod:`.estimators`: the composed ``algorithm`` config per method and the call verl's trainer makes.
- :mod:`.loop`: one (method, seed) run, and every run of an arena on worker processes.
- :mod:`.report`: intervals over seeds, ``arena.md``, ``arena.json`` and ``arena.png``.
- :mod:`.cli`: the subcommand.
"""
