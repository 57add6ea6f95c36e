"""cart_abandonment_daily against rows worked out by hand from histories_behaviour.cart_history."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs.marts import cart_abandonment_daily as mart
from jobs.validation import validate_mart
from tests.histories import as_of
from tests.marts.histories_behaviour import cart_history, landed_sources

AS_OF = as_of("2026-01-10T12:00:00+00:00")
JAN_6, JAN_7, JAN_8, JAN_9, JAN_10 = (dt.date(2026, 1, day) for day in (6, 7, 8, 9, 10))

# (tenant, cart date, currency, carts, converted, abandoned, open, abandonment rate, abandoned value,
#  abandoned carts priced in another currency)
EXPECTED = [
    ("t1", JAN_6, "EUR", 1, 0, 1, 0, 1.0, 1260, 0),  # k5: 3 x 420, the price of its last add by version
    ("t1", JAN_7, "EUR", 1, 1, 0, 0, 0.0, 0, 0),  # k3, converted two days later
    # k1 (2 x 1300 + 999) and k2 (700) abandoned, k8 converted.
    ("t1", JAN_8, "EUR", 3, 1, 2, 0, 2 / 3, 3599 + 700, 0),
    ("t1", JAN_9, "EUR", 1, 0, 0, 1, None, 0, 0),  # k4, last touched exactly 24 h before as-of
    ("t1", JAN_10, "EUR", 1, 0, 0, 1, None, 0, 0),  # k6
    # t2's own k1 (GBP, abandoned, first added at 10:00, so its currency names the row) and k7 (added
    # in v1, so EUR, at 09:00; converted, so it carries no amount).
    ("t2", JAN_8, "GBP", 2, 1, 1, 0, 0.5, 1800, 0),
]


@pytest.fixture(scope="module")
def sources(spark, tmp_path_factory):
    return landed_sources(spark, tmp_path_factory.mktemp("carts"), cart_history(), mart.INPUTS, AS_OF)


@pytest.fixture(scope="module")
def built(sources):
    return mart.build(sources, AS_OF).cache()


@pytest.fixture(scope="module")
def carts(sources):
    """Each cart's outcome, by (tenant, cart id)."""
    rows = mart.cart_outcomes(sources, AS_OF).collect()
    return {(row["tenant_id"], row["cart_id"]): row for row in rows}


def test_cart_abandonment_daily_matches_the_rows_worked_out_by_hand(spark, built):
    expected = spark.createDataFrame(EXPECTED, built.schema)
    assert_df_equality(built, expected, ignore_row_order=True, ignore_nullable=True)


def test_removals_exceeding_additions_leave_nothing_rather_than_a_negative_value(carts):
    assert (carts["t1", "k2"]["outcome"], carts["t1", "k2"]["value_cents"]) == ("abandoned", 700)


def test_a_product_is_valued_at_the_unit_price_of_its_latest_add(carts):
    # p1: (2 + 1 - 1) x 1300, not at the first add's 12.50; p2: its v1 9.99 as 999 cents.
    assert carts["t1", "k1"]["value_cents"] == 2 * 1300 + 999


def test_a_duplicate_delivery_of_an_add_is_counted_once(carts):
    # k1's first add (2 x p1) was delivered twice: counted twice it would leave 4 x p1.
    assert carts["t1", "k1"]["value_cents"] == 3599


def test_a_cart_converted_more_than_24_hours_after_its_last_event_is_converted_not_abandoned(carts):
    assert carts["t1", "k3"]["outcome"] == "converted"


def test_a_cart_whose_last_event_is_exactly_24_hours_before_as_of_is_open(carts):
    assert carts["t1", "k4"]["outcome"] == "open"


def test_a_cart_whose_last_event_is_a_moment_more_than_24_hours_before_as_of_is_abandoned(sources):
    later = as_of("2026-01-10T12:00:00.000001+00:00")
    k4 = mart.cart_outcomes(sources, later).filter("tenant_id = 't1' and cart_id = 'k4'").first()
    assert k4["outcome"] == "abandoned"


def test_first_and_last_cart_events_follow_stream_version_not_occurred_at(carts):
    # k5's versions occurred on Jan 6, Jan 9 13:00 and Jan 5: dated Jan 6 (not Jan 5), abandoned
    # (not open), valued at version 3's price (not the 450 of the latest clock).
    k5 = carts["t1", "k5"]
    assert (k5["cart_date"], k5["outcome"], k5["value_cents"]) == (JAN_6, "abandoned", 3 * 420)


def test_a_cart_with_only_removals_is_not_a_cart(carts):
    assert ("t1", "k9") not in carts


def test_carts_with_the_same_id_in_two_tenants_are_two_carts(carts):
    t1, t2 = carts["t1", "k1"], carts["t2", "k1"]
    assert (t1["currency"], t1["value_cents"], t2["currency"], t2["value_cents"]) == ("EUR", 3599, "GBP", 1800)


def test_an_order_of_another_tenant_naming_the_cart_id_does_not_convert_it(carts):
    assert carts["t1", "k2"]["outcome"] == "abandoned"


def test_a_cart_added_in_v1_is_counted_in_euros(carts):
    assert carts["t2", "k7"]["currency"] == "EUR"


def test_a_day_with_only_open_carts_has_no_abandonment_rate(built):
    assert built.filter(F.col("cart_date") == JAN_10).first()["abandonment_rate"] is None


def test_the_built_mart_passes_its_expectations(built):
    result = validate_mart(built, mart.CONTRACT, run_id="test")
    assert result.success, result.summary()


def test_a_day_whose_outcomes_do_not_add_up_to_its_carts_fails_its_expectations(built):
    broken = built.withColumn("carts", F.when(F.col("cart_date") == JAN_8, F.lit(4)).otherwise(F.col("carts")))

    result = validate_mart(broken, mart.CONTRACT, run_id="test")

    assert [failure.expectation for failure in result.failed] == [
        "ExpectRowsToSatisfy(carts = converted + abandoned + open)"
    ]
