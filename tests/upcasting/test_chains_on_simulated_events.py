"""Every event type's chain from each of its versions, on payloads the simulator writes.

A version newer than the catalog, projected once its upcaster arrives, is scenario 2.6:
tests/scenarios/test_unknown_and_newer_events.py."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pyspark.sql import functions as F

from jobs.events.catalog import CATALOG, EVENT_TYPES
from jobs.landing.files import land_files
from jobs.simulator import simulate
from jobs.upcasting.chain import upcast


@pytest.fixture(scope="module")
def simulated_bronze(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("simulated")
    simulate(root / "landing", days=16, tenants=1, seed=3, start_date=dt.date(2026, 1, 5))
    warehouse = str(root / "warehouse")
    land_files(spark, warehouse, root / "landing", "sim")
    return spark.read.format("delta").load(f"{warehouse}/bronze/events").cache()


def test_the_simulated_history_has_every_version_of_every_event_type(simulated_bronze):
    seen = {(r["event_type"], r["schema_version"]) for r in simulated_bronze.select("event_type", "schema_version").distinct().collect()}
    expected = {(t.name, v) for t in EVENT_TYPES for v in t.schemas}
    assert expected <= seen


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.name)
def test_every_known_version_upcasts_to_the_newest_with_every_required_field(simulated_bronze, event_type):
    events = simulated_bronze.filter(F.col("event_type") == event_type.name)
    result = upcast(events, event_type)
    known = events.filter(F.col("schema_version") <= event_type.newest_version).count()
    assert result.invalid.count() == 0
    assert result.events.count() == known > 0
    for version in event_type.schemas:
        # Nothing is lost on the way: each version's events come out once, by event id.
        ids = {r[0] for r in events.filter(F.col("schema_version") == version).select("event_id").collect()}
        out = {r[0] for r in result.events.filter(F.col("schema_version") == version).select("event_id").collect()}
        assert ids == out


def test_v1_amounts_of_simulated_orders_come_out_as_the_cents_written(simulated_bronze):
    v1 = simulated_bronze.filter("event_type = 'OrderCreated' and schema_version = 1").select("event_id", "data").collect()
    totals = {r["event_id"]: round(json.loads(r["data"])["total"] * 100) for r in v1}
    result = upcast(simulated_bronze.filter("event_type = 'OrderCreated'"), CATALOG["OrderCreated"]).events
    upcast_totals = {r["event_id"]: r["total_cents"] for r in result.filter("schema_version = 1").collect()}
    assert upcast_totals == totals

