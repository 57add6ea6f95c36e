"""marketing_kpis_daily against rows worked out by hand from histories_marketing.kpi_history."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs.marts import marketing_kpis_daily
from tests.histories import as_of
from tests.marts.histories_marketing import kpi_history, landed_sources

AS_OF = as_of("2026-01-12T12:00:00+00:00")
JAN_9, JAN_10, JAN_11 = dt.date(2026, 1, 9), dt.date(2026, 1, 10), dt.date(2026, 1, 11)

# (tenant, date, currency, sessions, visitors, valid orders, revenue, avg basket, conversion rate, new customers,
#  spend, cac, amounts in other currencies)
EXPECTED = [
    # Only a spend: a row, with no sessions (no conversion rate) and nobody registered (no cac).
    ("t1", JAN_9, "EUR", 0, 0, 0, 0, None, None, 0, 800, None, 0),
    # s1, s2 of a1 and s3 of a2 (00:30 +02:00 on Jan 11); o1 refunded in full (revenue 0, net 4000) and
    # o2 2500 - 500 by phone; o3 never confirmed. Avg basket (4000 + 2000) / 2. c1 and c2 registered.
    ("t1", JAN_10, "EUR", 3, 2, 2, 2000, 3000.0, 2 / 3, 2, 1500, 750.0, 0),
    # s4 whose order was cancelled; c3 registered at 01:00 +02:00 on Jan 12.
    ("t1", JAN_11, "EUR", 1, 1, 0, 0, None, 0.0, 1, 300, 300.0, 0),
    ("t2", JAN_10, "GBP", 1, 1, 1, 999, 999.0, 1.0, 0, 0, None, 0),
    # Only a session: nothing in any currency.
    ("t2", JAN_11, None, 1, 1, 0, 0, None, 0.0, 0, 0, None, 0),
]


@pytest.fixture(scope="module")
def sources(spark, tmp_path_factory):
    return landed_sources(spark, tmp_path_factory.mktemp("kpis"), kpi_history(), marketing_kpis_daily.INPUTS, AS_OF)


@pytest.fixture(scope="module")
def built(sources):
    frame = marketing_kpis_daily.build(sources, AS_OF).cache()
    yield frame
    frame.unpersist()


@pytest.fixture(scope="module")
def rows(built):
    return {(row["tenant_id"], row["activity_date"]): row for row in built.collect()}


@pytest.fixture(scope="module")
def mixed_currencies(sources):
    """t1's Jan 10 also gets a valid order in GBP besides its EUR spend and orders."""
    gbp_order = sources["orders"].filter("order_id = 'o2'").withColumns(
        {"order_id": F.lit("o2-gbp"), "currency": F.lit("GBP")}
    )
    return marketing_kpis_daily.build({**sources, "orders": sources["orders"].unionByName(gbp_order)}, AS_OF).cache()


def test_marketing_kpis_daily_matches_the_rows_worked_out_by_hand(spark, built):
    expected = spark.createDataFrame(EXPECTED, built.schema)
    assert_df_equality(built, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_day_with_only_spend_has_a_row(rows):
    jan_9 = rows["t1", JAN_9]
    assert (jan_9["sessions"], jan_9["valid_orders"], jan_9["new_customers"], jan_9["spend_cents"]) == (0, 0, 0, 800)


def test_cac_is_null_when_nobody_registered(rows):
    assert (rows["t1", JAN_9]["cac_cents"], rows["t1", JAN_10]["cac_cents"]) == (None, 750.0)


def test_a_refund_lowers_revenue_but_not_the_average_basket(rows):
    jan_10 = rows["t1", JAN_10]
    assert (jan_10["revenue_cents"], jan_10["avg_basket_cents"]) == (2000, 3000.0)


def test_visitors_are_distinct_anonymous_ids_of_the_days_sessions(rows):
    assert (rows["t1", JAN_10]["sessions"], rows["t1", JAN_10]["visitors"]) == (3, 2)


def test_spend_counts_on_its_spend_date_not_when_it_was_recorded(rows):
    assert [rows["t1", day]["spend_cents"] for day in (JAN_9, JAN_10, JAN_11)] == [800, 1500, 300]


def test_a_repeated_registration_is_not_a_new_customer_and_makes_no_row(rows):
    assert ("t1", dt.date(2026, 1, 12)) not in rows
    assert [rows["t1", day]["new_customers"] for day in (JAN_10, JAN_11)] == [2, 1]


def test_tenants_sharing_session_and_visitor_ids_are_counted_apart(rows):
    t2 = rows["t2", JAN_10]
    assert (t2["sessions"], t2["visitors"], t2["currency"]) == (1, 1, "GBP")


def test_an_order_in_another_currency_than_the_days_spend_is_added_as_recorded_and_counted(
    sources, rows, mixed_currencies
):
    row = mixed_currencies.filter("tenant_id = 't1' and activity_date = '2026-01-10'").first()
    before, o2 = rows["t1", JAN_10], sources["orders"].filter("order_id = 'o2'").first()
    got = (
        row["currency"], row["valid_orders"], row["revenue_cents"], row["avg_basket_cents"],
        row["amounts_in_other_currencies"],
    )
    # The day's EUR spend names the currency; the GBP copy of o2 is added and counted.
    mean = (before["avg_basket_cents"] * before["valid_orders"] + o2["net_cents"]) / (before["valid_orders"] + 1)
    assert got == ("EUR", before["valid_orders"] + 1, before["revenue_cents"] + o2["revenue_cents"], mean, 1)
    assert before["amounts_in_other_currencies"] == 0


def test_the_built_mart_passes_its_expectations(built):
    from jobs.validation import validate_mart

    result = validate_mart(built, marketing_kpis_daily.CONTRACT, run_id="test-marketing-kpis-daily")
    assert result.success, result.summary()


def test_a_wrong_cac_fails_validation(mixed_currencies):
    from jobs.validation import validate_mart

    broken = mixed_currencies.withColumn(
        "cac_cents", F.when(F.col("activity_date") == F.lit(JAN_11), F.lit(1.0)).otherwise(F.col("cac_cents"))
    )
    result = validate_mart(broken, marketing_kpis_daily.CONTRACT, run_id="test-marketing-kpis-daily-broken")
    failed = [failure.expectation for failure in result.failed]
    assert not result.success
    assert any("cac_cents - spend_cents / new_customers" in name for name in failed), failed
