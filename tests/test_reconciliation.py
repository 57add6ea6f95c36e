"""Reconciliation checks: totals derived from silver events, and across marts, are compared with the
staged marts; a check is one registered function."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from expectations import reconciliation
from expectations.reconciliation import Inputs, check, runnable, valid_orders_from_events

AS_OF = dt.datetime(2026, 1, 6, 12, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def shop_events(spark, tmp_path_factory):
    """The shop history (tests/histories.py) landed and upcast into silver."""
    from jobs.landing.files import land_files
    from jobs.silver import build_silver, read_silver
    from tests.histories import shop_history

    root = tmp_path_factory.mktemp("reconciliation")
    shop_history().write(root / "landing")
    warehouse = str(root / "warehouse")
    land_files(spark, warehouse, root / "landing", "test-run")
    names = ("OrderCreated", "OrderConfirmed", "OrderCancelled", "PromotionApplied", "OrderRefunded")
    build_silver(spark, warehouse, only=names)
    return {name: read_silver(spark, warehouse, name) for name in names}


def test_valid_orders_and_revenue_are_derived_from_silver_events_as_the_spec_defines_them(shop_events):
    derived = {(r["tenant_id"], r["order_id"]): (r["currency"], r["revenue_cents"]) for r in valid_orders_from_events(shop_events).collect()}

    # Worked by hand from shop_history: o3 is cancelled and o6 never confirmed, so neither is valid;
    # o1 is v1 (25.0 EUR), o2 loses its 500 promotion once (delivered twice, one event),
    # o4 is refunded in full, o5 has 1 x 500 + 3 x 500; o7 is t2's, in GBP.
    assert derived == {
        ("t1", "o1"): ("EUR", 2500),
        ("t1", "o2"): ("EUR", 3500),
        ("t1", "o4"): ("EUR", 0),
        ("t1", "o5"): ("EUR", 2000),
        ("t2", "o7"): ("GBP", 999),
    }


def _orders(spark, rows):
    return spark.createDataFrame(rows, "tenant_id string, order_id string, currency string, is_valid boolean, revenue_cents bigint")


def _rows(frame):
    return {(r["tenant_id"], r["currency"], r["measure"]): (r["expected"], r["observed"]) for r in frame.collect()}


def test_orders_missing_a_valid_order_disagree_with_silver_by_that_order(spark, shop_events):
    orders = _orders(spark, [("t1", "o1", "EUR", True, 2500), ("t1", "o4", "EUR", True, 0), ("t1", "o5", "EUR", True, 2000),
                             ("t1", "o3", "EUR", False, 0), ("t2", "o7", "GBP", True, 999)])

    rows = _rows(reconciliation.orders_match_silver_events(Inputs({"orders": orders}, shop_events, AS_OF)))

    assert rows == {
        ("t1", "EUR", "valid_orders"): (4, 3),
        ("t1", "EUR", "revenue_cents"): (8000, 4500),
        ("t2", "GBP", "valid_orders"): (1, 1),
        ("t2", "GBP", "revenue_cents"): (999, 999),
    }


def test_marketing_kpis_daily_totals_are_compared_with_orders_per_tenant(spark):
    orders = _orders(spark, [("t1", "o1", "EUR", True, 2500), ("t1", "o2", "EUR", True, 3500), ("t1", "o3", "EUR", False, 0)])
    kpis = spark.createDataFrame(
        [("t1", dt.date(2026, 1, 5), "EUR", 1, 2500), ("t1", dt.date(2026, 1, 6), None, 0, 0), ("t2", dt.date(2026, 1, 6), "GBP", 1, 10)],
        "tenant_id string, activity_date date, currency string, valid_orders bigint, revenue_cents bigint",
    )

    rows = _rows(reconciliation.marketing_kpis_daily_matches_orders(Inputs({"orders": orders, "marketing_kpis_daily": kpis}, {}, AS_OF)))

    assert rows == {
        ("t1", None, "valid_orders"): (2, 1),
        ("t1", None, "revenue_cents"): (6000, 2500),
        # A tenant on one side only compares with nothing (0) on the other.
        ("t2", None, "valid_orders"): (0, 1),
        ("t2", None, "revenue_cents"): (0, 10),
    }


def test_a_cart_counted_twice_shows_as_more_carts_than_silver_has(spark):
    adds = spark.createDataFrame(
        [("t1", "k1", dt.datetime(2026, 1, 5, 9)), ("t1", "k1", dt.datetime(2026, 1, 5, 10)), ("t1", "k2", dt.datetime(2026, 1, 5, 11))],
        "tenant_id string, cart_id string, occurred_at timestamp",
    )
    daily = spark.createDataFrame([("t1", dt.date(2026, 1, 5), "EUR", 2), ("t1", dt.date(2026, 1, 6), "EUR", 1)],
                                  "tenant_id string, cart_date date, currency string, carts bigint")

    rows = _rows(reconciliation.cart_abandonment_counts_every_cart_once(Inputs({"cart_abandonment_daily": daily}, {"CartItemAdded": adds}, AS_OF)))

    assert rows == {("t1", None, "carts"): (2, 3)}


def test_a_check_whose_mart_is_not_enabled_is_skipped_and_says_so():
    ran, skipped = runnable(["orders", "basket_daily"])

    assert [each.name for each in ran] == ["orders_match_silver_events", "basket_daily_matches_orders"]
    assert "marketing_kpis_daily_matches_orders skipped: marketing_kpis_daily not enabled" in skipped
    assert "cart_abandonment_counts_every_cart_once skipped: cart_abandonment_daily not enabled" in skipped


def test_a_new_check_is_one_registered_function_that_then_fails_validation_naming_it(spark, monkeypatch, tmp_path):
    """The hook for e.g. experiment visitors: one decorated function, nothing else to change."""
    monkeypatch.setattr(reconciliation, "CHECKS", {})
    visits = spark.createDataFrame([("t1", "v1"), ("t1", "v2")], "tenant_id string, anonymous_id string")

    @check("visitors_add_up", description="visitors of the mart equal distinct visitors", marts=("funnel_daily",))
    def visitors_add_up(inputs):
        expected = visits.groupBy("tenant_id").agg(F.countDistinct("anonymous_id").alias("visitors"))
        observed = inputs.marts["funnel_daily"].groupBy("tenant_id").agg(F.sum("sessions").alias("visitors"))
        return reconciliation.compare(expected, observed, ["tenant_id"], ["visitors"])

    funnel = spark.createDataFrame([("t1", 3)], "tenant_id string, sessions bigint")
    result, skipped = reconciliation.reconcile(
        spark, str(tmp_path), {"funnel_daily": funnel}, AS_OF, run_id="hook", data_docs_dir=str(tmp_path / "docs")
    )

    assert skipped == []
    (failure,) = result.failed
    assert str(failure) == (
        "reconciliation: ExpectRowsToSatisfy(visitors_add_up: visitors of the mart equal distinct visitors): "
        "1 row, e.g. (check='visitors_add_up', tenant_id='t1', currency=null, measure='visitors', expected=2, observed=3)"
    )
    page = (tmp_path / "docs" / "runs" / "hook" / "index.html").read_text(encoding="utf-8")
    assert "visitors_add_up" in page and "FAILED" in page
