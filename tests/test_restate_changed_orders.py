"""A mart that reads `orders` is restated for the orders whose columns it reads changed, not for every
order restated upstream (jobs/marts/restate.py `changed`): a shipment changes only an order's status,
and `orders` restates every order of the customer who got it."""

from __future__ import annotations

import dataclasses

import pytest
from chispa import assert_df_equality

from jobs import pipeline
from jobs.tables import BUILDS
from tests.histories import History
from tests.marts.histories_marketing import place_order, start_session

MARTS = ("orders", "basket_daily", "product_sales_daily", "funnel_daily", "campaign_performance", "marketing_kpis_daily")
CHANNEL = ("newsletter", "email", "spring")


def _history() -> tuple[History, list[int]]:
    """Customer c1's two valid orders (Mar 2 in session s1 of campaign spring, Mar 3 in s2), then o1
    shipped on Mar 5, then o2 partly refunded on Mar 6: the ends of the three deliveries."""
    h = History()
    start_session(h, "s1", "a1", "2026-03-02T09:00:00Z", CHANNEL, customer_id="c1")
    place_order(h, "o1", "c1", "s1", 5000, "2026-03-02T09:10:00Z")
    start_session(h, "s2", "a1", "2026-03-03T09:00:00Z", CHANNEL, customer_id="c1")
    place_order(h, "o2", "c1", "s2", 3000, "2026-03-03T09:10:00Z")
    ends = [len(h.events)]
    h.add("OrderShipped", "order-o1", {"order_id": "o1", "carrier": "ups"}, "2026-03-05T08:00:00Z")
    ends.append(len(h.events))
    h.add("OrderRefunded", "order-o2", {"order_id": "o2", "amount_cents": 1000}, "2026-03-06T08:00:00Z")
    ends.append(len(h.events))
    return h, ends


@pytest.fixture(scope="module")
def runs(spark, settings, tmp_path_factory):
    """The three deliveries, one pipeline run each; the builds table's rows by (run, mart)."""
    root = tmp_path_factory.mktemp("changed-orders")
    enabled = dataclasses.replace(settings, marts=dataclasses.replace(settings.marts, enabled=MARTS))
    warehouse = dataclasses.replace(enabled, warehouse=str(root / "warehouse"))
    history, ends = _history()
    events, start = history.events, 0
    for number, end in enumerate(ends):
        delivery = History()
        delivery.events = events[start:end]
        delivery.write(root / "landing" / f"delivery-{number}")
        pipeline.run(warehouse, root / "landing", run_id=f"delivery-{number}")
        start = end
    builds = spark.read.format("delta").load(BUILDS.path(warehouse.warehouse)).collect()
    return warehouse, {(row["run_id"], row["mart"]): row for row in builds}


def test_a_shipment_restates_the_customers_orders_and_no_mart_that_reads_them(runs):
    _warehouse, builds = runs
    assert builds["delivery-1", "orders"]["restated_units"] == 2  # o1 and, as c1's other order, o2
    for mart in MARTS[1:]:
        assert builds["delivery-1", mart]["mode"] == "restated", mart
        assert builds["delivery-1", mart]["restated_units"] == 0, mart


def test_a_refund_restates_the_order_day_and_campaign_of_the_marts_that_read_revenue(runs):
    _warehouse, builds = runs
    assert builds["delivery-2", "basket_daily"]["restated_units"] == 1  # Mar 3
    # Product sales count the items' gross amount, which a refund does not change.
    assert builds["delivery-2", "product_sales_daily"]["restated_units"] == 0
    assert builds["delivery-2", "marketing_kpis_daily"]["restated_units"] == 1  # Mar 3
    assert builds["delivery-2", "campaign_performance"]["restated_units"] == 1  # spring
    # The funnel reads only an order's session and validity: a refund leaves it alone.
    assert builds["delivery-2", "funnel_daily"]["restated_units"] == 0


@pytest.fixture(scope="module")
def rebuilt(runs) -> str:
    """All three deliveries rebuilt in full from bronze (silver rewritten, every mart built from all
    events), staged for a run that is never published: the run id whose staging holds them."""
    warehouse, _builds = runs
    pipeline.build(warehouse, "all-at-once", full=True)
    return "all-at-once"


@pytest.mark.parametrize("mart", MARTS)
def test_the_restated_marts_equal_a_full_rebuild(spark, runs, rebuilt, mart):
    warehouse, _builds = runs
    got = spark.read.format("delta").load(pipeline.gold_path(warehouse, mart))
    expected = spark.read.format("delta").load(pipeline.staging_path(warehouse, rebuilt, mart))
    assert expected.count() > 0
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
