"""customer_360 against rows worked out by hand from histories_marketing.customer_history."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs.marts import customer_360
from tests.histories import as_of
from tests.marts.histories_marketing import customer_history, landed_sources

AS_OF = as_of("2026-03-31T12:00:00+00:00")
D = dt.date


def _at(timestamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(timestamp)


# RFM among t1's customers with a valid order (c1, c2, c3, c5), score = ceil(5 * cume_dist):
#   recency, most days first: c3 365 -> 1/4 -> 2, c1 30 -> 2/4 -> 3, c5 1 -> 3/4 -> 4, c2 0 -> 4/4 -> 5
#   frequency: c5 1 -> 1/4 -> 2; c1, c2, c3 tied at 2 -> 4/4 -> 5
#   monetary: c3 2000 -> 2, c2 5000 -> 3, c1 6000 -> 4, c5 8000 -> 5
# (tenant, customer, registered_at, source, medium, campaign, country, email_consent, is_erased, currency,
#  valid_orders, revenue, avg_basket, first, last, 30d, 90d, 365d, revenue_90d, days_since, R, F, M, other currencies)
EXPECTED = [
    # o1 (5000, 2000 refunded) at exactly as-of - 30 days, o2 (3000) a second later; o3 cancelled.
    ("t1", "c1", _at("2025-12-01T10:00:00"), "google.com", "referral", None, "DE", False, False, "EUR",
     2, 6000, 4000.0, D(2026, 3, 1), D(2026, 3, 1), 1, 2, 2, 6000, 30, 3, 5, 4, 0),
    # o4 (2000) at exactly as-of - 90 days; o5 4000 - 1000 promotion on the as-of day.
    ("t1", "c2", _at("2025-11-01T08:00:00"), "newsletter", "email", "spring", "FR", True, False, "EUR",
     2, 5000, 2500.0, D(2025, 12, 31), D(2026, 3, 31), 1, 1, 2, 3000, 0, 5, 5, 3, 0),
    # Never registered; o6 at exactly as-of - 365 days, o7 a second later.
    ("t1", "c3", None, None, None, None, None, False, False, "EUR",
     2, 2000, 1000.0, D(2025, 3, 31), D(2025, 3, 31), 0, 0, 1, 0, 365, 2, 5, 2, 0),
    # Registered with v1 without referrer; only an order never confirmed.
    ("t1", "c4", _at("2026-03-19T10:00:00"), "direct", "none", None, None, False, False, None,
     0, 0, None, None, None, 0, 0, 0, 0, None, None, None, None, 0),
    ("t1", "c5", _at("2026-02-01T10:00:00"), "direct", "none", None, "NL", False, True, "EUR",
     1, 8000, 8000.0, D(2026, 3, 30), D(2026, 3, 30), 1, 1, 1, 8000, 1, 4, 2, 5, 0),
    # Alone among t2's customers with a valid order: 5 on every score.
    ("t2", "c1", _at("2026-01-05T10:00:00"), "google", "cpc", "winter", "GB", False, False, "GBP",
     1, 1234, 1234.0, D(2026, 3, 31), D(2026, 3, 31), 1, 1, 1, 1234, 0, 5, 5, 5, 0),
]


@pytest.fixture(scope="module")
def sources(spark, tmp_path_factory):
    return landed_sources(spark, tmp_path_factory.mktemp("customers"), customer_history(), customer_360.INPUTS, AS_OF)


@pytest.fixture(scope="module")
def built(sources):
    frame = customer_360.build(sources, AS_OF).cache()
    yield frame
    frame.unpersist()


@pytest.fixture(scope="module")
def rows(built):
    return {(row["tenant_id"], row["customer_id"]): row for row in built.collect()}


def test_customer_360_matches_the_rows_worked_out_by_hand(spark, built):
    expected = spark.createDataFrame(EXPECTED, built.schema)
    assert_df_equality(built, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_refund_lowers_revenue_but_not_the_average_basket(rows):
    c1 = rows["t1", "c1"]
    assert (c1["revenue_cents"], c1["avg_basket_cents"]) == (6000, 4000.0)


def test_a_customer_with_only_invalid_orders_has_a_row_without_scores(rows):
    c4 = rows["t1", "c4"]
    scores = (c4["recency_score"], c4["frequency_score"], c4["monetary_score"])
    assert (c4["valid_orders"], scores) == (0, (None, None, None))


def test_customers_tied_on_a_metric_share_its_score(rows):
    assert {rows["t1", c]["frequency_score"] for c in ("c1", "c2", "c3")} == {5}


def test_an_order_exactly_n_days_before_as_of_is_outside_the_last_n_days(rows):
    # c1's o1, c2's o4 and c3's o6 were created exactly 30, 90 and 365 days before as-of.
    windows = [
        (rows["t1", c]["valid_orders_30d"], rows["t1", c]["valid_orders_90d"], rows["t1", c]["valid_orders_365d"])
        for c in ("c1", "c2", "c3")
    ]
    assert windows == [(1, 2, 2), (1, 1, 2), (0, 0, 1)]


def test_email_consent_is_the_latest_change_by_stream_version_even_when_its_clock_says_earlier(rows):
    assert (rows["t1", "c1"]["email_consent"], rows["t1", "c2"]["email_consent"]) == (False, True)


def test_a_v1_registration_is_acquired_from_its_referrers_host(rows):
    c1 = rows["t1", "c1"]
    acquisition = (c1["acquisition_source"], c1["acquisition_medium"], c1["acquisition_campaign"])
    assert acquisition == ("google.com", "referral", None)


def test_a_customer_known_only_from_orders_has_a_row_without_registration(rows):
    c3 = rows["t1", "c3"]
    assert (c3["registered_at"], c3["acquisition_source"], c3["country"], c3["valid_orders"]) == (None, None, None, 2)


def test_an_erased_customer_keeps_a_row_with_aggregates_and_no_mart_row_holds_an_email(built, rows):
    c5 = rows["t1", "c5"]
    assert (c5["is_erased"], c5["valid_orders"], c5["revenue_cents"]) == (True, 1, 8000)
    assert not [name for name in built.columns if "email" in name and name != "email_consent"]


def test_an_order_without_a_customer_makes_no_row(rows):
    assert set(rows) == {("t1", "c1"), ("t1", "c2"), ("t1", "c3"), ("t1", "c4"), ("t1", "c5"), ("t2", "c1")}


def test_a_naive_as_of_time_is_taken_as_utc(sources, built):
    naive = as_of("2026-03-31T12:00:00")
    assert customer_360.build(sources, naive).filter("customer_id = 'c1'").collect() == built.filter(
        "customer_id = 'c1'"
    ).collect()


def test_amounts_in_another_currency_are_added_as_recorded_and_counted(sources):
    older_eur_order = sources["orders"].filter("order_id = 'o11'").withColumns(
        {"order_id": F.lit("o12"), "currency": F.lit("EUR"), "created_at": F.lit(dt.datetime(2026, 3, 1)),
         "order_date": F.lit(D(2026, 3, 1)), "revenue_cents": F.lit(500).cast("bigint")}
    )
    mixed = customer_360.build({**sources, "orders": sources["orders"].unionByName(older_eur_order)}, AS_OF)
    t2_c1 = mixed.filter("tenant_id = 't2'").first()
    # The latest valid order's currency (GBP) is the customer's; the older EUR order is added and counted.
    assert (t2_c1["currency"], t2_c1["valid_orders"], t2_c1["revenue_cents"], t2_c1["amounts_in_other_currencies"]) == (
        "GBP", 2, 1234 + 500, 1
    )


def test_the_built_mart_passes_its_expectations(built):
    from jobs.validation import validate_mart

    result = validate_mart(built, customer_360.CONTRACT, run_id="test-customer-360")
    assert result.success, result.summary()


def test_a_score_out_of_range_and_more_other_currency_orders_than_orders_fail_validation(built):
    from jobs.validation import validate_mart

    broken = built.withColumns(
        {
            "recency_score": F.when(F.col("customer_id") == "c2", F.lit(6)).otherwise(F.col("recency_score")),
            "amounts_in_other_currencies": F.when(F.col("tenant_id") == "t2", F.lit(1).cast("bigint")).otherwise(
                F.col("amounts_in_other_currencies")
            ),
        }
    )
    result = validate_mart(broken, customer_360.CONTRACT, run_id="test-customer-360-broken")
    failed = " ".join(failure.expectation for failure in result.failed)
    assert not result.success
    # t2's customer has one valid order, which names the currency: none can be in another one.
    assert "recency_score" in failed and "amounts_in_other_currencies <= greatest(valid_orders - 1, 0)" in failed
