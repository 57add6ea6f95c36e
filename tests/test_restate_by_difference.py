"""funnel_daily restated by difference (jobs/marts/restate.py `Counted`): each session a delivery
touches is counted before and after it, and the difference is added to the published days, where a
restatement by day would rebuild every touched day from all of its sessions (in an hourly run of a long
history, nearly every day, so the mart was built in full from all of history).

The cases a difference must get right, one delivery after another (tenant t1):
- a late SessionStarted that comes first in its stream moves its session to another day, and the day
  it leaves, which had no other session, loses its row;
- a cancellation takes a valid order's session off `with_valid_order` (a change of `orders`, not of
  the funnel's own events);
- a cart add names a session published without one;
- a view names a session not started yet (counted nowhere), whose start arrives a delivery later.
Then published rows the events do not explain (a day deleted from gold): a difference would count
below zero there, so the mart is built in full instead, and says why.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import partial

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from jobs import pipeline
from jobs.tables import BUILDS
from tests.histories import History
from tests.marts.histories_behaviour import add_to_cart, view
from tests.marts.histories_marketing import place_order, start_session

MARTS = ("orders", "funnel_daily")
CHANNEL = ("google", "cpc", None)
MAR_1, MAR_2, MAR_3 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)
COLUMNS = ("sessions", "sessions_with_view", "with_add_to_cart", "with_order", "with_valid_order")


def _deliveries() -> list[History]:
    """Three deliveries, the events of each stream numbered in stream order whatever their delivery."""
    h, when = History(), {}

    def at(delivery: int, first: int) -> None:
        """Every event added since the history had `first` events goes in `delivery`."""
        for event in h.events[first:]:
            when[id(event)] = delivery

    def added(delivery: int, add, *args, **kwargs) -> None:
        first = len(h.events)
        add(h, *args, **kwargs)
        at(delivery, first)

    added(1, start_session, "s1", "a1", "2026-03-01T10:00:00Z", CHANNEL)  # first in its stream, delivered late
    added(0, start_session, "s1", "a1", "2026-03-02T10:00:00Z", CHANNEL)
    added(0, start_session, "s2", "a2", "2026-03-01T09:00:00Z", CHANNEL)
    added(0, view, "s2", "p1", "2026-03-01T09:01:00Z")
    added(0, place_order, "o2", None, "s2", 1000, "2026-03-01T09:05:00Z")
    added(1, _cancel, "o2", "2026-03-04T08:00:00Z")
    added(0, start_session, "s4", "a4", "2026-03-01T11:00:00Z", CHANNEL)
    added(0, place_order, "o4", None, "s4", 2000, "2026-03-01T11:05:00Z")
    added(2, _cancel, "o4", "2026-03-04T09:00:00Z")
    added(0, start_session, "s3", "a3", "2026-03-03T08:00:00Z", CHANNEL)
    added(1, add_to_cart, "k3", "p1", 1, "2026-03-03T08:05:00Z", unit_price_cents=1000, session_id="s3")
    added(1, view, "s9", "p1", "2026-03-03T07:00:00Z")
    added(2, start_session, "s9", "a9", "2026-03-03T06:59:00Z", CHANNEL)
    assert len(when) == len(h.events)
    deliveries = [History() for _ in range(3)]
    for event in h.events:
        deliveries[when[id(event)]].events.append(event)
    return deliveries


def _cancel(h: History, order_id: str, at: str) -> None:
    h.add("OrderCancelled", f"order-{order_id}", {"order_id": order_id, "reason": "customer_request"}, at)


@pytest.fixture(scope="module")
def runs(spark, settings, tmp_path_factory):
    """One pipeline run per delivery; gold funnel_daily after each, and the builds table's rows by
    (run, mart). After the second, everything landed is also rebuilt in full (staged for a run that is
    never published); before the third, Mar 1's published row is deleted from gold."""
    root = tmp_path_factory.mktemp("by-difference")
    enabled = dataclasses.replace(settings, marts=dataclasses.replace(settings.marts, enabled=MARTS))
    warehouse = dataclasses.replace(enabled, warehouse=str(root / "warehouse"))
    published, said = [], {}
    funnel = partial(_funnel_rows, spark)
    for number, delivery in enumerate(_deliveries()):
        if number == 2:
            gold = DeltaTable.forPath(spark, pipeline.gold_path(warehouse, "funnel_daily"))
            gold.delete(F.col("session_date") == MAR_1)
        delivery.write(root / "landing" / f"delivery-{number}")
        pipeline.run(warehouse, root / "landing", run_id=f"delivery-{number}",
                     progress=said.setdefault(f"delivery-{number}", []).append)
        published.append(funnel(pipeline.gold_path(warehouse, "funnel_daily")))
        if number == 1:
            pipeline.build(warehouse, "rebuilt", full=True)
            rebuilt = funnel(pipeline.staging_path(warehouse, "rebuilt", "funnel_daily"))
    builds = spark.read.format("delta").load(BUILDS.path(warehouse.warehouse)).collect()
    return published, rebuilt, {(row["run_id"], row["mart"]): row for row in builds}, said


def _funnel_rows(spark, path: str) -> dict:
    rows = spark.read.format("delta").load(path).collect()
    return {(row["tenant_id"], row["session_date"]): tuple(row[name] for name in COLUMNS) for row in rows}


def _funnel_message(said: dict, run_id: str) -> str:
    return next(message for message in said[run_id] if message.startswith("built funnel_daily"))


def test_the_first_delivery_is_built_in_full(runs):
    published, _rebuilt, builds, _said = runs
    assert builds["delivery-0", "funnel_daily"]["mode"] == "full"
    assert published[0] == {
        ("t1", MAR_1): (2, 1, 0, 2, 2),  # s2 (a view, valid o2), s4 (valid o4)
        ("t1", MAR_2): (1, 0, 0, 0, 0),  # s1, as far as this delivery knows
        ("t1", MAR_3): (1, 0, 0, 0, 0),  # s3
    }


def test_a_delivery_is_restated_by_difference_of_the_sessions_it_touches(runs):
    published, _rebuilt, builds, said = runs
    build = builds["delivery-1", "funnel_daily"]
    assert build["mode"] == "restated"
    # s1 (its late start), s2 (o2 cancelled), s3 (a cart add), s9 (a view): on Mar 1, Mar 2 and Mar 3.
    assert build["restated_units"] == 3
    assert "3 (tenant_id, session_date) restated by difference, 4 (tenant_id, session_id) touched" in _funnel_message(
        said, "delivery-1"
    )
    assert published[1] == {
        ("t1", MAR_1): (3, 1, 0, 2, 1),  # s1 moved here; o2 no longer valid
        ("t1", MAR_3): (1, 0, 1, 0, 0),  # s3's cart add; s9 not started yet
    }  # Mar 2 had only s1: its row is gone, as a build in full would not make it


def test_published_rows_the_events_do_not_explain_make_a_build_in_full(runs):
    published, _rebuilt, builds, said = runs
    # o4's cancellation takes one valid order off Mar 1, whose row was deleted: it would count -1.
    assert builds["delivery-2", "funnel_daily"]["mode"] == "full"
    assert "1 of its published rows count less than the events before this run" in _funnel_message(said, "delivery-2")
    assert published[2] == {
        ("t1", MAR_1): (3, 1, 0, 2, 0),
        ("t1", MAR_3): (2, 1, 1, 0, 0),  # s9 started at last, with its view
    }


def test_the_mart_restated_by_difference_equals_a_build_in_full_of_the_same_events(runs):
    published, rebuilt, _builds, _said = runs
    assert rebuilt == published[1]
