"""experiment_results: counts worked out by hand from experiment_history; the statistics on those
counts checked against statsmodels and scipy."""

from __future__ import annotations

import dataclasses

import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from jobs.marts import experiment_results
from tests.histories import History, as_of
from tests.marts.histories_marketing import DIRECT, landed_sources, place_order, start_session

SPLITS = {"exp": {"control": 0.5, "treat": 0.5}, "exp2": {"control": 1, "empty": 1}}
CONTEXT = dataclasses.replace(as_of("2026-02-10T12:00:00+00:00"), experiment_splits=SPLITS)


def expose(h: History, session_id: str, visitor: str, variant: str, at: str, *, experiment: str = "exp", tenant_id: str = "t1"):
    data = {"experiment_id": experiment, "variant": variant, "session_id": session_id, "anonymous_id": visitor, "customer_id": None}
    return h.add("ExperimentExposed", f"session-{session_id}", data, at, tenant_id=tenant_id)


def experiment_history() -> History:
    """Experiment `exp` (split 50/50) and `exp2` (control and `empty`, 1:1) in t1; `exp` in t2.

    t1, exp, control:
    - v1: exposed in s1 at 10:00, o1 1000 in s1 at 10:30: converts.
    - v2: exposed in s2 at 10:00; o2 in s2 at 09:00, before the exposure: does not convert.
    - v7: exposed in s7; o9 valid, but in a session never started: does not convert.
    - v8: exposed in a session never started (the exposure names its visitor): a visitor, no order.
    - v9: exposed in s10 at 12:00 and, in s11, at 08:00 the same day, delivered later; o10 400 in s10
      at 09:00, after the first exposure (08:00): converts.
    t1, exp, treat:
    - v3: exposed twice to treat (s3, then s4 the next day): not contaminated; o3 2000 in s4, refunded
      500: converts with 1500.
    - v4: exposed to treat, then to control: contaminated, excluded; its o4 counts nowhere.
    - v5: o5 confirmed then cancelled, o6 never confirmed: does not convert.
    - v6: o7 700 created exactly at its exposure time and o8 300 GBP later: one converter, 1000 as
      recorded; treat's latest converting order (o3) is in EUR, so o8 is an amount in another currency.
    t1, exp2: v1 exposed to control at 11:00 (after o1): no converter; `empty` nobody saw.
    t2, exp: v1 (same anonymous id as t1's) exposed to treat; t1's orders are not its orders.
    """
    h = History()
    for session, visitor, at in [
        ("s1", "v1", "2026-02-01T09:55:00Z"), ("s2", "v2", "2026-02-01T08:55:00Z"), ("s3", "v3", "2026-02-01T09:55:00Z"),
        ("s4", "v3", "2026-02-02T09:55:00Z"), ("s5", "v4", "2026-02-01T09:55:00Z"), ("s6", "v5", "2026-02-01T09:55:00Z"),
        ("s7", "v6", "2026-02-01T09:55:00Z"), ("s8", "v7", "2026-02-01T09:55:00Z"), ("s10", "v9", "2026-02-03T07:00:00Z"),
        ("s11", "v9", "2026-02-03T07:30:00Z"),
    ]:
        start_session(h, session, visitor, at, DIRECT)
    start_session(h, "s1", "v1", "2026-02-01T09:55:00Z", DIRECT, tenant_id="t2")

    expose(h, "s1", "v1", "control", "2026-02-01T10:00:00Z")
    place_order(h, "o1", None, "s1", 1000, "2026-02-01T10:30:00Z")
    place_order(h, "o2", None, "s2", 900, "2026-02-01T09:00:00Z")
    expose(h, "s2", "v2", "control", "2026-02-01T10:00:00Z")
    expose(h, "s8", "v7", "control", "2026-02-01T10:00:00Z")
    place_order(h, "o9", None, "s-never-started", 800, "2026-02-01T11:00:00Z")
    expose(h, "s-never-started-2", "v8", "control", "2026-02-01T10:00:00Z")
    expose(h, "s10", "v9", "control", "2026-02-03T12:00:00Z")
    place_order(h, "o10", None, "s10", 400, "2026-02-03T09:00:00Z")

    expose(h, "s3", "v3", "treat", "2026-02-01T10:00:00Z")
    expose(h, "s4", "v3", "treat", "2026-02-02T10:00:00Z")
    place_order(h, "o3", None, "s4", 2000, "2026-02-02T10:30:00Z", refund=500)
    expose(h, "s5", "v4", "treat", "2026-02-01T10:00:00Z")
    expose(h, "s5", "v4", "control", "2026-02-01T10:05:00Z")
    place_order(h, "o4", None, "s5", 5000, "2026-02-01T10:30:00Z")
    expose(h, "s6", "v5", "treat", "2026-02-01T10:00:00Z")
    place_order(h, "o5", None, "s6", 600, "2026-02-01T10:30:00Z", cancelled=True)
    place_order(h, "o6", None, "s6", 600, "2026-02-01T10:40:00Z", confirmed=False)
    expose(h, "s7", "v6", "treat", "2026-02-01T10:00:00Z")
    place_order(h, "o7", None, "s7", 700, "2026-02-01T10:00:00Z")
    place_order(h, "o8", None, "s7", 300, "2026-02-01T11:00:00Z", currency="GBP")

    expose(h, "s1", "v1", "control", "2026-02-01T11:00:00Z", experiment="exp2")
    expose(h, "s1", "v1", "treat", "2026-02-01T10:00:00Z", tenant_id="t2")
    # Delivered last, with an earlier clock: v9's first exposure.
    expose(h, "s11", "v9", "control", "2026-02-03T08:00:00Z")
    return h


# (tenant, experiment, variant) -> (visitors, converters, revenue_cents, contaminated_visitors)
COUNTS = {
    ("t1", "exp", "control"): (5, 2, 1400, 1),
    ("t1", "exp", "treat"): (3, 2, 2500, 1),
    ("t1", "exp2", "control"): (1, 0, 0, 0),
    ("t1", "exp2", "empty"): (0, 0, 0, 0),
    ("t2", "exp", "control"): (0, 0, 0, 0),
    ("t2", "exp", "treat"): (1, 0, 0, 0),
}


@pytest.fixture(scope="module")
def sources(spark, tmp_path_factory):
    inputs = ("ExperimentExposed", "SessionStarted")
    return landed_sources(spark, tmp_path_factory.mktemp("experiments"), experiment_history(), inputs, CONTEXT)


@pytest.fixture(scope="module")
def rows(sources):
    built = experiment_results.build(sources, CONTEXT)
    assert built.columns == list(experiment_results.CONTRACT.column_names)
    return {(r["tenant_id"], r["experiment_id"], r["variant"]): r for r in built.collect()}


def test_counts_match_those_worked_out_by_hand(rows):
    found = {
        key: (r["visitors"], r["converters"], r["revenue_cents"], r["contaminated_visitors"]) for key, r in rows.items()
    }
    assert found == COUNTS


def test_rates_are_per_visitor_and_undefined_without_visitors(rows):
    treat, empty = rows["t1", "exp", "treat"], rows["t1", "exp2", "empty"]
    assert (treat["conversion_rate"], treat["revenue_per_visitor_cents"]) == (2 / 3, 2500 / 3)
    assert (empty["conversion_rate"], empty["revenue_per_visitor_cents"]) == (None, None)


def test_treat_against_control_matches_statsmodels_on_the_same_counts(rows):
    treat = rows["t1", "exp", "treat"]
    _z, p_value = proportions_ztest([2, 2], [3, 5])
    low, high = confint_proportions_2indep(2, 3, 2, 5, method="wald", compare="diff")
    assert treat["uplift_absolute"] == pytest.approx(2 / 3 - 2 / 5)
    assert treat["uplift_relative"] == pytest.approx((2 / 3 - 2 / 5) / (2 / 5))
    assert treat["p_value"] == pytest.approx(p_value, rel=1e-9)
    assert (treat["uplift_ci95_low"], treat["uplift_ci95_high"]) == (pytest.approx(low), pytest.approx(high))


def test_the_srm_p_value_matches_scipy_against_the_configured_split(rows):
    assert rows["t1", "exp", "treat"]["srm_p_value"] == pytest.approx(stats.chisquare([5, 3], [4, 4]).pvalue)
    # exp2's `empty`, planned 1:1 but seen by nobody, is a strong mismatch with 1 visitor of control.
    assert rows["t1", "exp2", "control"]["srm_p_value"] == pytest.approx(stats.chisquare([1, 0], [0.5, 0.5]).pvalue)
    assert {r["expected_share"] for k, r in rows.items() if k[:2] == ("t1", "exp")} == {0.5}


def test_control_is_not_compared_with_itself_nor_a_variant_without_visitors_or_without_control(rows):
    comparisons = ("uplift_absolute", "uplift_relative", "uplift_ci95_low", "uplift_ci95_high", "p_value")
    for key in [("t1", "exp", "control"), ("t1", "exp2", "empty"), ("t2", "exp", "treat")]:
        assert [rows[key][name] for name in comparisons] == [None] * 5, key
    assert rows["t1", "exp", "control"]["is_control"] and not rows["t1", "exp", "treat"]["is_control"]


def test_a_variants_currency_is_that_of_its_converting_orders_and_none_without_converters(rows):
    assert (rows["t1", "exp", "treat"]["currency"], rows["t1", "exp", "treat"]["amounts_in_other_currencies"]) == ("EUR", 1)
    assert (rows["t1", "exp", "control"]["currency"], rows["t1", "exp", "control"]["amounts_in_other_currencies"]) == ("EUR", 0)
    assert rows["t2", "exp", "treat"]["currency"] is None


def test_without_a_configured_split_the_srm_test_expects_an_equal_split(sources):
    # Same counts, no split: control 5 and treat 3 against 4 and 4 (the planned 50/50 was equal too),
    # but exp2 now has only the variants seen (control alone): nothing to test.
    context = dataclasses.replace(CONTEXT, experiment_splits={})
    rows = {(r["tenant_id"], r["experiment_id"], r["variant"]): r for r in experiment_results.build(sources, context).collect()}
    assert rows["t1", "exp", "control"]["srm_p_value"] == pytest.approx(stats.chisquare([5, 3]).pvalue)
    assert ("t1", "exp2", "empty") not in rows and rows["t1", "exp2", "control"]["srm_p_value"] is None
