"""The statistics of the reports, in one place (scipy for the normal quantiles).

* proportions: Wilson score interval (good coverage with few events, never outside [0, 1]);
* a difference of proportions: Newcombe's hybrid score interval (built from the two Wilson
  intervals), and the pooled two-proportion z-test;
* a ratio of proportions: Katz log interval;
* means (revenue per recipient / customer): normal interval from the sample variance; their
  difference: Welch; their ratio: delta method on the log.
Every function returns ``None`` bounds where the data cannot support an interval (n = 0, no
event in a group for a ratio).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy.stats import norm

CONFIDENCE = 0.95
Interval = tuple[float | None, float | None]


def z_value(confidence: float = CONFIDENCE) -> float:
    return float(norm.ppf(1 - (1 - confidence) / 2))


def rate(k: int, n: int) -> float | None:
    return k / n if n else None


def wilson(k: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    if n <= 0:
        return None, None
    z = z_value(confidence)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p_value(k1: int, n1: int, k2: int, n2: int) -> float | None:
    """Two-sided p-value of H0: p1 = p2 (pooled z-test)."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (k1 / n1 - k2 / n2) / se
    return float(2 * norm.sf(abs(z)))


def difference_of_proportions(k1: int, n1: int, k2: int, n2: int, confidence: float = CONFIDENCE) -> Interval:
    """Newcombe's interval for p1 - p2."""
    if n1 <= 0 or n2 <= 0:
        return None, None
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, confidence)
    l2, u2 = wilson(k2, n2, confidence)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def ratio_of_proportions(k1: int, n1: int, k2: int, n2: int, confidence: float = CONFIDENCE) -> Interval:
    """Katz log interval for p1 / p2 (None without events in both groups)."""
    if min(k1, k2, n1, n2) <= 0:
        return None, None
    ratio = (k1 / n1) / (k2 / n2)
    se = math.sqrt(max(0.0, 1 / k1 - 1 / n1 + 1 / k2 - 1 / n2))
    z = z_value(confidence)
    return ratio * math.exp(-z * se), ratio * math.exp(z * se)


def mean_and_variance(total: float, total_sq: float, n: int) -> tuple[float | None, float | None]:
    """Mean and sample variance from a sum and a sum of squares."""
    if n <= 0:
        return None, None
    mean = total / n
    if n == 1:
        return mean, None
    return mean, max(0.0, (total_sq - n * mean * mean) / (n - 1))


def mean_interval(total: float, total_sq: float, n: int, confidence: float = CONFIDENCE) -> Interval:
    mean, var = mean_and_variance(total, total_sq, n)
    if mean is None or var is None:
        return None, None
    half = z_value(confidence) * math.sqrt(var / n)
    return mean - half, mean + half


def summarise(values: Sequence[float]) -> tuple[float, float, int]:
    """(sum, sum of squares, n) of some values."""
    return float(sum(values)), float(sum(v * v for v in values)), len(values)


def difference_of_means(a: tuple[float, float, int], b: tuple[float, float, int],
                        confidence: float = CONFIDENCE) -> Interval:
    """Welch interval for mean(a) - mean(b), from (sum, sum of squares, n) of each group."""
    ma, va = mean_and_variance(*a)
    mb, vb = mean_and_variance(*b)
    if None in (ma, va, mb, vb):
        return None, None
    se = math.sqrt(va / a[2] + vb / b[2])
    d = ma - mb
    half = z_value(confidence) * se
    return d - half, d + half


def ratio_of_means(a: tuple[float, float, int], b: tuple[float, float, int],
                   confidence: float = CONFIDENCE) -> Interval:
    """Delta-method log interval for mean(a) / mean(b) (None when a mean is 0)."""
    ma, va = mean_and_variance(*a)
    mb, vb = mean_and_variance(*b)
    if None in (ma, va, mb, vb) or ma <= 0 or mb <= 0:
        return None, None
    se = math.sqrt(va / (a[2] * ma * ma) + vb / (b[2] * mb * mb))
    ratio = ma / mb
    z = z_value(confidence)
    return ratio * math.exp(-z * se), ratio * math.exp(z * se)
