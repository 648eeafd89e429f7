"""The length arena (``smartthinker-verl arena``): every length-shaping method, through verl's own advantage path, on
simulated prompts whose accuracy-vs-length curve, and so whose best length, is known (docs/arena.md).

Tooling only; no training process imports it.
"""
