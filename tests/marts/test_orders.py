"""The orders mart against rows worked out by hand from tests.histories.shop_history."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality

from jobs.marts import orders

UTC = dt.timezone.utc


def _row(order_id, customer_id, session_id, created_at, order_source, status, is_valid, is_first, gross, discount,
         refunded, revenue, items_count, units, channel, tenant_id="t1", currency="EUR"):
    source, medium, campaign = channel
    created = dt.datetime.fromisoformat(created_at).astimezone(UTC).replace(tzinfo=None)
    return (tenant_id, order_id, customer_id, f"k-{order_id}" if order_id not in ("o1", "o2") else f"k{order_id[1]}",
            session_id, created, created.date(), order_source, status, is_valid, is_first, currency, gross, discount,
            gross - discount, refunded, revenue, items_count, units, source, medium, campaign)


GOOGLE = ("google", "cpc", "spring")
DIRECT = ("direct", "none", None)
UNKNOWN = ("unknown", "unknown", None)

EXPECTED = [
    _row("o1", "c1", "s1", "2026-01-05T23:30:00+00:00", "unknown", "paid", True, True, 2500, 0, 0, 2500, 1, 2, GOOGLE),
    _row("o2", "c2", "s1", "2026-01-05T12:00:00+00:00", "unknown", "confirmed", True, True, 4000, 500, 0, 3500, 1, 1, GOOGLE),
    _row("o3", "c1", "s2", "2026-01-05T13:00:00+00:00", "web", "cancelled", False, False, 3000, 0, 0, 0, 1, 1, DIRECT),
    _row("o4", "c3", None, "2026-01-05T15:00:00+00:00", "phone", "refunded", True, True, 1000, 0, 1000, 0, 1, 1, UNKNOWN),
    _row("o5", "c1", "s-never-started", "2026-01-06T08:00:00+00:00", "mobile_app", "delivered", True, False, 2000, 0, 0, 2000, 2, 4, UNKNOWN),
    _row("o6", "c4", "s2", "2026-01-05T16:00:00+00:00", "web", "created", False, False, 1500, 0, 0, 0, 1, 1, DIRECT),
    _row("o7", "c9", "s1", "2026-01-05T17:00:00+00:00", "web", "confirmed", True, True, 999, 0, 0, 999, 1, 1, UNKNOWN,
         tenant_id="t2", currency="GBP"),
]


def test_orders_mart_matches_the_rows_worked_out_by_hand(spark, shop_sources):
    expected = spark.createDataFrame(EXPECTED, orders.CONTRACT.conform(shop_sources["orders"]).schema)
    assert_df_equality(shop_sources["orders"], expected, ignore_row_order=True, ignore_nullable=True)


def test_a_duplicate_delivery_of_a_promotion_is_discounted_once(shop_sources):
    row = shop_sources["orders"].filter("order_id = 'o2'").first()
    assert (row["discount_cents"], row["net_cents"]) == (500, 3500)


def test_an_order_cancelled_after_confirmation_is_not_valid(shop_sources):
    row = shop_sources["orders"].filter("order_id = 'o3'").first()
    assert (row["status"], row["is_valid"], row["revenue_cents"]) == ("cancelled", False, 0)


def test_a_refund_equal_to_the_net_amount_makes_the_status_refunded_and_keeps_the_order_valid(shop_sources):
    row = shop_sources["orders"].filter("order_id = 'o4'").first()
    assert (row["status"], row["is_valid"], row["revenue_cents"]) == ("refunded", True, 0)


def test_a_v1_order_is_upcast_to_cents_euros_and_an_unknown_order_source(shop_sources):
    row = shop_sources["orders"].filter("order_id = 'o1'").first()
    assert (row["gross_cents"], row["currency"], row["order_source"]) == (2500, "EUR", "unknown")


def test_the_order_date_is_the_utc_date_of_creation_not_the_producers_local_date(shop_sources):
    row = shop_sources["orders"].filter("order_id = 'o1'").first()
    assert row["order_date"] == dt.date(2026, 1, 5)


def test_an_order_without_a_known_session_has_an_unknown_channel(shop_sources):
    rows = shop_sources["orders"].filter("order_id in ('o4', 'o5')").collect()
    assert {(r["channel_source"], r["channel_medium"], r["channel_campaign"]) for r in rows} == {UNKNOWN}


def test_a_session_of_another_tenant_with_the_same_id_is_not_the_orders_session(shop_sources):
    row = shop_sources["orders"].filter("order_id = 'o7'").first()
    assert row["channel_source"] == "unknown"


def test_status_follows_the_stream_not_the_producers_clocks(shop_sources):
    assert shop_sources["orders"].filter("order_id = 'o5'").first()["status"] == "delivered"


def test_only_the_customers_earliest_valid_order_is_their_first(shop_sources):
    firsts = shop_sources["orders"].filter("customer_id = 'c1' and is_first_valid_order").collect()
    assert [r["order_id"] for r in firsts] == ["o1"]
