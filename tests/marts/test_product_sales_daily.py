"""product_sales_daily against rows worked out by hand from histories_behaviour.product_history."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs.marts import product_sales_daily as mart
from jobs.validation import validate_mart
from tests.histories import as_of
from tests.marts.histories_behaviour import landed_sources, product_history

AS_OF = as_of("2026-01-07T00:00:00+00:00")
JAN_5, JAN_6 = dt.date(2026, 1, 5), dt.date(2026, 1, 6)

# (tenant, date, product, views, adds, removes, view-to-cart rate, units sold, revenue, currency,
#  amounts in other currencies)
EXPECTED = [
    # o1 sells p1 x2 at 12.50 (v1); the cancelled o2's p1 x5 is not sold.
    ("t1", JAN_5, "p1", 3, 4, 1, 4 / 3, 2, 2500, "EUR", 0),
    ("t1", JAN_5, "p2", 2, 0, 0, 0.0, 1, 4000, "EUR", 0),
    ("t1", JAN_5, "p3", 0, 1, 0, None, 0, 0, None, 0),
    ("t1", JAN_6, "p1", 1, 0, 0, 0.0, 1, 1300, "EUR", 0),
    # o5's promotion and refund are not spread over its items.
    ("t1", JAN_6, "p2", 0, 0, 1, None, 1, 4000, "EUR", 0),
    ("t1", JAN_6, "p5", 0, 0, 0, None, 2, 500, "EUR", 0),
    ("t2", JAN_5, "p1", 1, 0, 0, 0.0, 1, 999, "GBP", 0),
    # 500 EUR cents (o8, v1) + 999 GBP pence (o9, created later, so it names the currency), added as
    # recorded; the EUR line is counted.
    ("t2", JAN_6, "p1", 0, 0, 0, None, 2, 1499, "GBP", 1),
]


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory):
    sources = landed_sources(spark, tmp_path_factory.mktemp("products"), product_history(), mart.INPUTS, AS_OF)
    return mart.build(sources, AS_OF).cache()


@pytest.fixture(scope="module")
def rows(built):
    return {(row["tenant_id"], row["activity_date"], row["product_id"]): row for row in built.collect()}


def test_product_sales_daily_matches_the_rows_worked_out_by_hand(spark, built):
    expected = spark.createDataFrame(EXPECTED, built.schema)
    assert_df_equality(built, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_cancelled_orders_items_are_not_sold(rows):
    assert rows["t1", JAN_5, "p1"]["units_sold"] == 2


def test_a_product_only_in_orders_never_confirmed_has_no_row(rows):
    assert not [key for key in rows if key[2] == "p4"]


def test_items_come_from_the_first_order_created_of_the_order(rows):
    assert not [key for key in rows if key[2] == "p9"]


def test_revenue_is_at_the_items_unit_price_without_order_discounts_or_refunds(rows):
    assert rows["t1", JAN_6, "p2"]["revenue_cents"] == 4000


def test_a_v1_order_sells_at_its_decimal_prices_in_euro_cents(rows):
    row = rows["t1", JAN_5, "p1"]
    assert (row["revenue_cents"], row["currency"]) == (2500, "EUR")


def test_a_product_added_more_often_than_viewed_has_a_rate_above_one(rows):
    assert rows["t1", JAN_5, "p1"]["view_to_cart_rate"] == pytest.approx(4 / 3)


def test_a_product_without_views_has_a_null_view_to_cart_rate(rows):
    assert rows["t1", JAN_5, "p3"]["view_to_cart_rate"] is None


def test_views_count_once_per_event_on_their_utc_date(rows):
    # 09:00, 09:05 (delivered twice) and 00:30 +02:00 on Jan 6, which is Jan 5 in UTC.
    assert (rows["t1", JAN_5, "p1"]["views"], rows["t1", JAN_6, "p1"]["views"]) == (3, 1)


def test_a_late_view_counts_on_the_day_it_occurred(rows):
    assert rows["t1", JAN_5, "p2"]["views"] == 2


def test_a_row_without_sales_has_no_currency(rows):
    assert rows["t1", JAN_5, "p3"]["currency"] is None


def test_sales_in_two_currencies_on_one_day_are_added_and_counted(rows):
    row = rows["t2", JAN_6, "p1"]
    got = (row["units_sold"], row["revenue_cents"], row["currency"], row["amounts_in_other_currencies"])
    assert got == (2, 1499, "GBP", 1)


def test_a_tenants_sales_are_its_own(rows):
    row = rows["t2", JAN_5, "p1"]
    assert (row["views"], row["units_sold"], row["revenue_cents"], row["currency"]) == (1, 1, 999, "GBP")


def test_the_built_mart_passes_its_expectations(built):
    result = validate_mart(built, mart.CONTRACT, run_id="test")
    assert result.success, result.summary()


def test_a_view_to_cart_rate_on_a_product_without_views_fails_its_expectations(built):
    broken = built.withColumn("view_to_cart_rate", F.coalesce("view_to_cart_rate", F.lit(0.0)))

    result = validate_mart(broken, mart.CONTRACT, run_id="test")

    assert [failure.expectation for failure in result.failed] == [
        "ExpectRowsToSatisfy(IF(views = 0, view_to_cart_rate IS NULL, abs(view_to_cart_rate - "
        "adds_to_cart / views) <= 1e-09 * greatest(1, view_to_cart_rate)))"
    ]
