"""Independent references for the baseline length rewards: one group at a time, plain Python floats, written from
the papers' formulas (docs/baselines.md); no torch, no code shared with the package."""

from __future__ import annotations

import math


def shorter_better(lengths, correct, alpha=2.0, beta=0.001):
    """arXiv 2504.21370: SOL = shortest correct length (mean length if none); r = alpha*1[c] - beta*|l - SOL|."""
    good = [x for x, c in zip(lengths, correct, strict=True) if c]
    sol = min(good) if good else sum(lengths) / len(lengths)
    return [alpha * float(c) - beta * abs(x - sol) for x, c in zip(lengths, correct, strict=True)]


def efficient_reasoning(lengths, correct, alpha=0.1):
    """arXiv 2502.04463: r = 1[c] * (1 - alpha * sigmoid((l - mean_C) / std_C)); std_C = 0 -> deviation 0."""
    good = [x for x, c in zip(lengths, correct, strict=True) if c]
    if not good:
        return [0.0] * len(lengths)
    mean = sum(good) / len(good)
    std = math.sqrt(sum((x - mean) ** 2 for x in good) / len(good))
    out = []
    for x, c in zip(lengths, correct, strict=True):
        z = (x - mean) / std if std > 0 else 0.0
        out.append((1.0 - alpha / (1.0 + math.exp(-z))) if c else 0.0)
    return out


def kimi_length(lengths, scores, correct, weight=1.0):
    """arXiv 2501.12599: lambda = 0.5 - (l - min)/(max - min) (0 if max == min); correct + lambda, wrong + min(0, .)."""
    lo, hi = min(lengths), max(lengths)
    out = []
    for x, s, c in zip(lengths, scores, correct, strict=True):
        lam = 0.0 if hi == lo else 0.5 - (x - lo) / (hi - lo)
        out.append(s + weight * (lam if c else min(0.0, lam)))
    return out


class LaserDE:
    """LASER-DE (arXiv 2505.15612) by the rules of the authors' released code, one step at a time, every group in a
    Python loop: a band's coverage at L is the fraction of ALL its responses of length <= L; its target is the first
    candidate with int(coverage * m_band) >= expected, else the current batch's longest response; candidates
    ``range(lower, upper + interval, interval)``; a correct response within the target, and a wrong one beyond it
    that was not truncated, earn alpha. ``calls_per_step`` advantage computations make one training step; the
    candidates are recomputed on the first computation of step 1, 1 + every, 1 + 2 * every, ..."""

    def __init__(
        self, alpha=0.5, lower=4096, interval=1024, upper=16384, expected=1, every=20, truncation=None, calls=1
    ):
        self.alpha, self.expected, self.every, self.truncation, self.calls = alpha, expected, every, truncation, calls
        self.grid = list(range(lower, upper + interval, interval))
        self.candidates = None
        self.steps, self.calls_in_step = 0, 0
        self._clear()

    def _clear(self):
        self.responses = {"low": 0, "medium": 0, "high": 0}
        self.within = {level: [0] * len(self.grid) for level in self.responses}

    @staticmethod
    def level(num_correct, size):
        p = num_correct / size
        return "high" if p >= 2 / 3 else "medium" if p >= 1 / 3 else "low"

    def step(self, groups):
        """``groups``: list of (lengths, scores, correct) per group. Returns the rewards per group."""
        for lengths, _, correct in groups:
            level = self.level(sum(correct), len(correct))
            self.responses[level] += len(lengths)
            for j, bound in enumerate(self.grid):
                self.within[level][j] += sum(1 for x in lengths if x <= bound)
        new_step = self.calls_in_step == 0
        self.calls_in_step = (self.calls_in_step + 1) % self.calls
        if new_step:
            self.steps += 1
        if self.candidates is None or (new_step and self.steps > self.every):
            n = round(sum(len(c) for _, _, c in groups) / len(groups))
            minimum = {"low": 1, "medium": int(n * 1 / 3), "high": int(n * 2 / 3)}
            self.candidates = {}
            for level in ("low", "medium", "high"):
                self.candidates[level] = None
                for j, bound in enumerate(self.grid):
                    ratio = self.within[level][j] / self.responses[level] if self.responses[level] else 0.0
                    if int(ratio * minimum[level]) >= self.expected:
                        self.candidates[level] = bound
                        break
            self._clear()
            self.steps = 1
        longest = max(max(lengths) for lengths, _, _ in groups)
        targets = {level: float(longest if c is None else c) for level, c in self.candidates.items()}
        rewards = []
        for lengths, scores, correct in groups:
            target = targets[self.level(sum(correct), len(correct))]
            group = []
            for x, s, c in zip(lengths, scores, correct, strict=True):
                finished = self.truncation is None or x < self.truncation
                bonus = (c and x <= target) or (not c and x > target and finished)
                group.append(s + (self.alpha if bonus else 0.0))
            rewards.append(group)
        self.targets = targets
        return rewards
