"""experiment_results' statistics against scipy and statsmodels on the same counts, and on simulated
experiments with a known true effect (pure statistics, no Spark)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from jobs.marts.experiment_statistics import Z_95, chi_square_sf, compare, srm_p_value

# (variant converters, visitors, control converters, visitors)
COUNTS = [
    (130, 1000, 100, 1000),
    (12, 340, 31, 401),
    (5500, 100_000, 5000, 100_000),
    (1, 7, 0, 9),
    (49, 50, 50, 50),
    (3, 12345, 3, 12345),
]


@pytest.mark.parametrize("counts", COUNTS)
def test_the_p_value_is_that_of_the_pooled_two_proportion_z_test(counts):
    x, n, xc, nc = counts
    _z, expected = proportions_ztest([x, xc], [n, nc], alternative="two-sided")
    assert compare(x, n, xc, nc).p_value == pytest.approx(expected, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("counts", COUNTS)
def test_the_interval_is_the_unpooled_wald_interval_of_the_difference(counts):
    x, n, xc, nc = counts
    low, high = confint_proportions_2indep(x, n, xc, nc, method="wald", compare="diff", alpha=0.05)
    result = compare(x, n, xc, nc)
    assert (result.ci_low, result.ci_high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))


@pytest.mark.parametrize("counts", COUNTS)
def test_uplift_is_the_difference_of_rates_absolute_and_relative_to_control(counts):
    x, n, xc, nc = counts
    result = compare(x, n, xc, nc)
    assert result.uplift_absolute == pytest.approx(x / n - xc / nc, abs=1e-15)
    assert result.uplift_relative == (pytest.approx((x / n - xc / nc) / (xc / nc)) if xc else None)


def test_the_critical_value_is_the_normal_975th_percentile():
    assert Z_95 == pytest.approx(stats.norm.ppf(0.975), rel=1e-12)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_zero_converters_everywhere_gives_a_zero_width_interval_and_no_p_value():
    result = compare(0, 500, 0, 480)
    assert (result.uplift_absolute, result.uplift_relative, result.ci_low, result.ci_high) == (0.0, None, 0.0, 0.0)
    assert result.p_value is None  # z = 0/0; statsmodels gives nan here
    assert math.isnan(proportions_ztest([0, 0], [500, 480])[1])


def test_a_variant_without_visitors_is_not_compared():
    assert compare(0, 0, 10, 100) == compare(3, 30, 0, 0) == compare(0, 0, 0, 0)
    assert compare(0, 0, 10, 100).p_value is None and compare(0, 0, 10, 100).ci_low is None


@pytest.mark.parametrize(
    "visitors, split",
    [
        ({"control": 5100, "treat": 4900}, {"control": 0.5, "treat": 0.5}),
        ({"control": 5000, "a": 2600, "b": 2400}, {"control": 0.5, "a": 0.25, "b": 0.25}),
        ({"control": 980, "a": 1020, "b": 1000, "c": 1005}, None),
        ({"control": 700, "treat": 300}, {"control": 2, "treat": 1}),
        ({"control": 1, "empty": 0}, {"control": 1, "empty": 1}),
    ],
)
def test_the_srm_p_value_is_scipys_chi_square_goodness_of_fit_against_the_split(visitors, split):
    observed = list(visitors.values())
    weights = [split[v] for v in visitors] if split else [1] * len(visitors)
    expected = [sum(observed) * w / sum(weights) for w in weights]
    assert srm_p_value(visitors, split) == pytest.approx(stats.chisquare(observed, expected).pvalue, rel=1e-9)


def test_a_planned_variant_nobody_saw_counts_as_zero_observed():
    with_zero = srm_p_value({"control": 60}, {"control": 0.5, "treat": 0.5})
    assert with_zero == pytest.approx(stats.chisquare([60, 0], [30, 30]).pvalue, rel=1e-9)


def test_visitors_in_a_variant_the_split_does_not_plan_are_a_mismatch_and_nothing_to_test_is_none():
    assert srm_p_value({"control": 50, "rogue": 3}, {"control": 0.5, "treat": 0.5}) == 0.0
    assert srm_p_value({"control": 0, "treat": 0}, None) is None
    assert srm_p_value({"control": 40}, None) is None


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 5, 8, 13])
def test_the_chi_square_tail_matches_scipy(dof):
    for statistic in (0.01, 0.5, 1.0, 3.84, 10.0, 40.0, 200.0):
        assert chi_square_sf(statistic, dof) == pytest.approx(stats.chi2.sf(statistic, dof), rel=1e-10, abs=1e-300)


def test_a_large_simulated_experiment_with_a_known_effect_has_an_interval_that_covers_it():
    rng = np.random.default_rng(20261201)
    visitors, control_rate, true_effect = 400_000, 0.040, 0.004
    control = int(rng.binomial(visitors, control_rate))
    variant = int(rng.binomial(visitors, control_rate + true_effect))
    result = compare(variant, visitors, control, visitors)
    assert result.ci_low <= true_effect <= result.ci_high
    assert result.ci_low > 0 and result.p_value < 1e-6  # the effect is found, not only covered


def test_the_interval_covers_the_true_effect_in_about_95_percent_of_simulated_experiments():
    rng = np.random.default_rng(7)
    trials, visitors, control_rate, true_effect = 2000, 20_000, 0.05, 0.006
    controls = rng.binomial(visitors, control_rate, size=trials)
    variants = rng.binomial(visitors, control_rate + true_effect, size=trials)
    covered = sum(
        result.ci_low <= true_effect <= result.ci_high
        for result in (compare(int(x), visitors, int(xc), visitors) for x, xc in zip(variants, controls))
    )
    # Binomial(2000, 0.95) lies in [0.935, 0.965] with probability above 99.9%.
    assert 0.935 <= covered / trials <= 0.965


def test_without_an_effect_the_test_rejects_at_5_percent_about_5_percent_of_the_time():
    rng = np.random.default_rng(11)
    trials, visitors, rate = 2000, 5_000, 0.08
    controls = rng.binomial(visitors, rate, size=trials)
    variants = rng.binomial(visitors, rate, size=trials)
    rejected = sum(compare(int(x), visitors, int(xc), visitors).p_value < 0.05 for x, xc in zip(variants, controls))
    assert 0.035 <= rejected / trials <= 0.065
