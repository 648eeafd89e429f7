"""An independent SmartThinker reference for the tests: one group at a time, plain Python floats, written from
docs/algorithm.md (no torch, no code shared with the package)."""

from __future__ import annotations

import math
import zlib

import numpy as np


def rng_for(*parts) -> np.random.Generator:
    """A generator seeded by the CRC-32 of ``parts`` (not ``hash``: str hashes change with every process)."""
    return np.random.default_rng(zlib.crc32(repr(parts).encode()))


def _log_ratio(x: float, m1: float, v1: float, m2: float, v2: float) -> float:
    return -((x - m2) ** 2) / (2 * v2) + (x - m1) ** 2 / (2 * v1) - 0.5 * math.log(v2 / v1)


def reference_group(lengths, scores, rule, penalty, coefficient, fixed=None, threshold=0.5):
    """Returns (l_opt, coef, penalties, shaped rewards) for one group; ``scores`` may be bools (1/0 scores)."""
    scores = [float(x) for x in scores]
    correct = [x >= threshold for x in scores]
    n = len(lengths)
    k = sum(correct)
    lo, hi = min(lengths), max(lengths)
    m1 = sum(lengths) / n
    v1 = sum((x - m1) ** 2 for x in lengths) / n
    if k == n:
        l_opt = lo
    elif k == 0:
        l_opt = hi
    else:
        good = [x for x, a in zip(lengths, correct, strict=True) if a]
        m2 = sum(good) / k
        v2 = sum((x - m2) ** 2 for x in good) / k
        equal = math.isclose(v1, v2, rel_tol=1e-12, abs_tol=0.0)
        if rule == "reference":
            if equal:
                l_opt = hi if m2 < m1 else lo
            elif v2 < v1:
                l_opt = min(max((v1 * m2 - v2 * m1) / (v1 - v2), lo), hi)
            else:
                l_opt = lo
        else:
            if v2 == 0 or v1 == 0:
                l_opt = m2
            elif v2 < v1 and not equal:
                l_opt = min(max((v1 * m2 - v2 * m1) / (v1 - v2), lo), hi)
            else:
                l_opt = hi if _log_ratio(hi, m1, v1, m2, v2) > _log_ratio(lo, m1, v1, m2, v2) else lo
    s = []
    for x, a in zip(lengths, correct, strict=True):
        excess = (x - l_opt) if penalty == "one_sided" else abs(x - l_opt)
        s.append(excess if a and excess > 1e-6 else 0.0)
    mixed = 0 < k < n
    if coefficient == "fixed":
        coef = fixed if mixed else 0.0
    else:
        gap = max([si for si, a in zip(s, correct, strict=True) if a], default=0.0) - sum(s) / n
        coef = (1 - k / n) / gap if mixed and gap > 0 else 0.0
    rewards = [score - coef * si for score, si in zip(scores, s, strict=True)]
    return l_opt, coef, s, rewards


def reference_advantages(rewards, norm_by_std=True, eps=1e-6):
    """GRPO normalisation of one group (unbiased std; a group of one: mean 0, std 1)."""
    n = len(rewards)
    if n == 1:
        mean, std = 0.0, 1.0
    else:
        mean = sum(rewards) / n
        std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / (n - 1))
    return [(r - mean) / (std + eps) if norm_by_std else r - mean for r in rewards]
