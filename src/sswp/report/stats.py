"""Paired comparisons of two arms over seeds: the mean difference, its Student-t interval and
a one-word verdict.

Two arms run with the same seed share that seed's labelled subset and test sampling, so their
difference per seed cancels what the seed changes for both; the interval is over those
differences (n - 1 degrees of freedom), not over each arm's own spread."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import t as student_t

CONFIDENCE = 0.95

BETTER = "better"

WORSE = "worse"

NO_DIFFERENCE = "no difference detected"

NO_INTERVAL = "no interval: 1 seed"

# headline.json holds numbers only (DVC metrics): a verdict as a number, none for one seed.
VERDICT_CODES = {BETTER: 1, NO_DIFFERENCE: 0, WORSE: -1}


def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided Student-t critical value: t(1 - (1 - confidence) / 2, df)."""
    return float(student_t.ppf(0.5 + confidence / 2, df))


@dataclass(frozen=True)
class PairedDifference:
    """Mean of the per-seed differences a - b, with its interval (None for a single seed)."""

    mean: float
    low: float | None
    high: float | None
    n: int

    @property
    def verdict(self) -> str:
        """`better` when the whole interval is above 0, `worse` below, else no difference."""
        if self.low is None or self.high is None:
            return NO_INTERVAL
        if self.low > 0:
            return BETTER
        if self.high < 0:
            return WORSE
        return NO_DIFFERENCE


def paired_difference(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> PairedDifference:
    """Compare `a` with `b`, paired by position (the seed): mean(a - b) and its t interval."""
    if len(a) != len(b) or not a:
        raise ValueError(f"paired samples need the same, non-zero length, got {len(a)}, {len(b)}")
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    mean = statistics.fmean(diffs)
    if n < 2:
        return PairedDifference(mean, None, None, n)
    half = t_quantile(n - 1, confidence) * statistics.stdev(diffs) / math.sqrt(n)
    return PairedDifference(mean, mean - half, mean + half, n)
