"""The A/B test statistics of experiment_results, on counts, in plain Python (exact closed forms).

Spark aggregates visitors and converters per variant (a handful of rows); these functions turn the
counts into the spec's statistics. Spark SQL has neither the normal nor the chi-square distribution,
and the tests check these functions against scipy and statsmodels on the same counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Mapping

# Two-sided 95%: the 97.5th percentile of the standard normal distribution (1.959963984540054).
Z_95 = NormalDist().inv_cdf(0.975)


@dataclass(frozen=True)
class Comparison:
    """A variant against control. None where the counts do not define the value."""

    uplift_absolute: float | None  # p_variant - p_control
    uplift_relative: float | None  # (p_variant - p_control) / p_control; None when p_control is 0
    ci_low: float | None  # 95% CI of p_variant - p_control, unpooled normal approximation (Wald)
    ci_high: float | None
    p_value: float | None  # two-sided, pooled two-proportion z-test; None when the pooled rate is 0 or 1


NOT_COMPARABLE = Comparison(None, None, None, None, None)


def compare(converters: int, visitors: int, control_converters: int, control_visitors: int) -> Comparison:
    """The variant's conversion rate against control's; nothing is defined if either has no visitors."""
    if visitors <= 0 or control_visitors <= 0:
        return NOT_COMPARABLE
    rate, control_rate = converters / visitors, control_converters / control_visitors
    difference = rate - control_rate
    standard_error = math.sqrt(rate * (1 - rate) / visitors + control_rate * (1 - control_rate) / control_visitors)
    pooled = (converters + control_converters) / (visitors + control_visitors)
    pooled_error = math.sqrt(pooled * (1 - pooled) * (1 / visitors + 1 / control_visitors))
    return Comparison(
        uplift_absolute=difference,
        uplift_relative=difference / control_rate if control_rate > 0 else None,
        ci_low=difference - Z_95 * standard_error,
        ci_high=difference + Z_95 * standard_error,
        # No converter at all, or only converters: z = 0/0, the test says nothing.
        p_value=two_sided_normal_p(difference / pooled_error) if pooled_error > 0 else None,
    )


def two_sided_normal_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z, without cancellation in the tail."""
    return math.erfc(abs(z) / math.sqrt(2))


def srm_p_value(visitors: Mapping[str, int], split: Mapping[str, float] | None) -> float | None:
    """Sample-ratio mismatch: Pearson's chi-square goodness-of-fit p-value of the visitors per variant
    against the planned split (weights, normalised), or an equal split among the variants when none
    is planned.

    A variant with visitors that the split gives no share is a mismatch by itself: 0.0. None when
    there is nothing to test (no visitors, or a single variant).
    """
    total = sum(visitors.values())
    weights = dict(split) if split else {variant: 1.0 for variant in visitors}
    if total == 0:
        return None
    if any(count > 0 and weights.get(variant, 0) <= 0 for variant, count in visitors.items()):
        return 0.0
    if len(weights) < 2:
        return None
    weight_sum = sum(weights.values())
    statistic = 0.0
    for variant, weight in weights.items():
        expected = total * weight / weight_sum
        statistic += (visitors.get(variant, 0) - expected) ** 2 / expected
    return chi_square_sf(statistic, len(weights) - 1)


def chi_square_sf(statistic: float, degrees_of_freedom: int) -> float:
    """P(X >= statistic) for X chi-square distributed with an integer number of degrees of freedom:
    the regularized upper incomplete gamma Q(k/2, x/2) in its closed form for integer and half-integer k/2.
    """
    if degrees_of_freedom < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {degrees_of_freedom}")
    if statistic <= 0:
        return 1.0
    half = statistic / 2
    if degrees_of_freedom % 2 == 0:
        # Q(m, x) = e^-x * sum_{i<m} x^i / i!
        term, total = 1.0, 1.0
        for i in range(1, degrees_of_freedom // 2):
            term *= half / i
            total += term
        return min(1.0, math.exp(-half) * total)
    # Q(m + 1/2, x) = erfc(sqrt x) + e^-x * sum_{i=1..m} x^(i-1/2) / Gamma(i + 1/2)
    tail = math.erfc(math.sqrt(half))
    term = math.sqrt(half) / math.gamma(1.5)
    total = 0.0
    for i in range(1, (degrees_of_freedom - 1) // 2 + 1):
        if i > 1:
            term *= half / (i - 0.5)
        total += term
    return min(1.0, tail + math.exp(-half) * total)
