"""Scenario 2.8: events days late, and out of order within their stream, restate the affected days of
the marts, and only those, to what a full rebuild gives.

A good run publishes orders and basket_daily up to Jan 7. Then a delivery brings events that occurred
on Jan 5: a new order of t1 whose confirmation comes before its creation in the file (stream versions
2, then 1), and the cancellation of t2's only valid order. The next run must restate those orders and
their days (t1's and t2's Jan 5), leave every other row as published, and end where a full rebuild of
all the events ends. tests/test_incremental.py checks the same on a simulated history and every
restated mart; this is the scenario on two marts and a handful of events.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from chispa import assert_df_equality

from jobs import pipeline
from jobs.tables import BUILDS
from tests.histories import History
from tests.scenarios.deliveries import first_delivery, late_delivery, lines_delivered
from tests.scenarios.warehouse_state import account_landing, gold_state, publications

MARTS = ("orders", "basket_daily")


def days_late_delivery(landing: Path) -> list[dict]:
    """Events of Jan 5 delivered after Jan 7 was published; returns them in file order."""
    h = History()
    created = h.add(
        "OrderCreated", "order-o9",
        {"order_id": "o9", "cart_id": None, "customer_id": "c90", "session_id": None,
         "items": [{"product_id": "p2", "category": "bags", "quantity": 2, "unit_price_cents": 1250}],
         "total_cents": 2500, "currency": "EUR", "order_source": "phone"},
        "2026-01-05T19:00:00Z", schema_version=3, event_id="days-late-1",
    )
    confirmed = h.add("OrderConfirmed", "order-o9", {"order_id": "o9"}, "2026-01-05T19:05:00Z", event_id="days-late-2")
    cancelled = h.add(
        "OrderCancelled", "order-o7", {"order_id": "o7", "reason": "customer_request"}, "2026-01-05T20:00:00Z",
        tenant_id="t2", event_id="days-late-3",
    )
    cancelled["stream_version"] = 3  # after o7's creation and confirmation, delivered in the first file
    h.events = [confirmed, created, cancelled]  # o9's stream out of order: version 2 before version 1
    h.write(landing / "2026-01-09", "days-late.ndjson")
    return h.events


def test_events_days_late_and_out_of_order_restate_exactly_their_days_to_what_a_full_rebuild_gives(
    spark, scenario_settings, tmp_path, scenario_report
):
    row = scenario_report
    row.scenario = "2.8 events days late, out of order"
    row.injected = (
        "after a run published up to Jan 7: events of Jan 5, a new order's confirmation before its creation "
        "and a cancellation of another tenant's order"
    )
    settings = dataclasses.replace(scenario_settings, marts=dataclasses.replace(scenario_settings.marts, enabled=MARTS))
    landing = tmp_path / "landing"
    first_delivery(landing)
    late_delivery(landing)
    pipeline.run(settings, landing, run_id="good")
    good = gold_state(spark, settings)
    late_events = days_late_delivery(landing)
    row.events_in = lines_delivered(landing)

    pipeline.run(settings, landing, run_id="days-late")

    after = gold_state(spark, settings)
    builds = {r["mart"]: r for r in spark.read.format("delta").load(BUILDS.path(settings.warehouse)).collect() if r["run_id"] == "days-late"}
    assert {mart: build["mode"] for mart, build in builds.items()} == dict.fromkeys(MARTS, "restated")
    # The orders the late events belong to, and their days: nothing else changed.
    late_orders = {(event["tenant_id"], event["data"]["order_id"]) for event in late_events}
    orders_before, orders_after = (_rows(spark, settings, "orders", state["orders"][0], ORDER) for state in (good, after))
    assert _changed(orders_before, orders_after) == late_orders
    late_days = {(tenant, orders_after[tenant, order][0]["order_date"]) for tenant, order in late_orders}
    assert {day.isoformat() for _tenant, day in late_days} == {"2026-01-05"}
    days_before, days_after = (_rows(spark, settings, "basket_daily", state["basket_daily"][0], DAY) for state in (good, after))
    assert _changed(days_before, days_after) == late_days
    assert {mart: build["restated_units"] for mart, build in builds.items()} == {
        "orders": len(late_orders), "basket_daily": len(late_days)
    }
    # t2's only valid order of the day was cancelled: its day has no row any more.
    assert [day for day in late_days if day[0] == "t2"][0] not in days_after

    # The same events rebuilt in full (staged for a run never published) give the published rows.
    pipeline.build(settings, "full-rebuild", full=True)
    for mart in MARTS:
        published = spark.read.format("delta").load(pipeline.gold_path(settings, mart))
        rebuilt = spark.read.format("delta").load(pipeline.staging_path(settings, "full-rebuild", mart))
        assert_df_equality(published, rebuilt, ignore_row_order=True, ignore_nullable=True)

    account_landing(spark, settings.warehouse, row)
    assert row.accounted == row.events_in
    log = publications(spark, settings)
    row.marts_readable = True  # gold_state read every mart
    row.marts_at_last_good_version = {mart: version for mart, (version, _r) in after.items()} == {
        mart: version for mart, run_id, _action, version in log if run_id == "days-late"
    }
    assert row.marts_at_last_good_version
    row.outcome = (
        f"the next run restated {len(late_orders)} orders and {builds['basket_daily']['restated_units']} tenant-days "
        "(Jan 5 of t1 and t2), every other row as published; equal to a full rebuild"
    )


ORDER, DAY = ("tenant_id", "order_id"), ("tenant_id", "order_date")


def _rows(spark, settings, mart: str, version: int, key: tuple[str, ...]) -> dict:
    """The published mart at a table version, its rows grouped by `key`."""
    table = spark.read.format("delta").option("versionAsOf", version).load(pipeline.gold_path(settings, mart))
    groups: dict = {}
    for record in table.collect():
        groups.setdefault(tuple(record[k] for k in key), []).append(record.asDict())
    return {k: sorted(rows, key=repr) for k, rows in groups.items()}


def _changed(before: dict, after: dict) -> set:
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
