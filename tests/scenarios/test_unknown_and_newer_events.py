"""Scenario 2.6: an event type no release knows, and a schema version newer than the catalog knows.
Both land and are counted; the unknown type stays in bronze, the newer version is held back from
silver, and is projected exactly once when a release brings its upcaster.

Moved here from tests/upcasting/test_chains_on_simulated_events.py, with the unknown event type added.
Silver is what the scenario is about: no mart is built.
"""

from __future__ import annotations

import dataclasses
import json

from pyspark.sql import functions as F

from jobs.events.catalog import CATALOG, EVENT_TYPES
from jobs.landing.files import land_files
from jobs.silver import build_silver, read_silver, silver_path
from jobs.tables import BRONZE_EVENTS, LANDING_LEDGER, read_table
from tests.histories import History
from tests.scenarios.deliveries import lines_delivered
from tests.scenarios.warehouse_state import account_landing

UNKNOWN_TYPE = "LoyaltyPointsEarned"


def test_an_unknown_event_type_is_kept_and_a_newer_schema_version_is_projected_once_when_its_upcaster_arrives(
    spark, warehouse, tmp_path, monkeypatch, scenario_report
):
    row = scenario_report
    row.scenario = "2.6 unknown event type, newer schema version"
    row.injected = (
        f"an event of type {UNKNOWN_TYPE} (in no catalog) and OrderConfirmed v2 (the catalog knows v1); "
        "then a release with OrderConfirmed v2 and its upcaster, built twice"
    )
    assert UNKNOWN_TYPE not in CATALOG
    history = History()
    history.add("OrderConfirmed", "order-o1", {"order_id": "o1"}, "2026-01-05T10:00:00Z")
    history.add("OrderConfirmed", "order-o2", {"order_id": "o2", "confirmed_by": "agent-7"}, "2026-01-05T11:00:00Z", schema_version=2)
    history.add(UNKNOWN_TYPE, "loyalty-c1", {"customer_id": "c1", "points": 40}, "2026-01-05T12:00:00Z")
    history.write(tmp_path / "landing")
    row.events_in = lines_delivered(tmp_path / "landing")
    land_files(spark, warehouse, tmp_path / "landing", "r1")

    report = build_silver(spark, warehouse)
    assert report.held_back == 1
    assert report.unknown_event_types == {UNKNOWN_TYPE: 1}
    assert [r["event_id"] for r in read_silver(spark, warehouse, "OrderConfirmed").collect()] == ["ev-0001"]
    # Every line accounted for by the ledger, which also counts the unknown type among the landed ones;
    # the newer version is landed too, and held back.
    account_landing(spark, warehouse, row)
    assert (row.landed, row.duplicates, row.quarantined, row.held_back) == (3, 0, 0, 1)
    assert row.accounted == row.events_in
    assert read_table(spark, LANDING_LEDGER, warehouse).agg(F.sum("unknown_event_types")).first()[0] == 1

    # A release adds OrderConfirmed v2 and its upcaster; a rebuild (replay) projects the held-back event.
    confirmed = CATALOG["OrderConfirmed"]
    v2 = dataclasses.replace(
        confirmed,
        schemas={**confirmed.schemas, 2: "order_id STRING, confirmed_by STRING"},
        upcasters={1: lambda p: F.struct(p["order_id"].alias("order_id"), F.lit(None).cast("string").alias("confirmed_by"))},
    )
    released = tuple(v2 if t.name == "OrderConfirmed" else t for t in EVENT_TYPES)
    monkeypatch.setattr("jobs.silver.EVENT_TYPES", released)
    monkeypatch.setattr("jobs.incremental.EVENT_TYPES", released)  # the catalog's fingerprint changes with it
    monkeypatch.setitem(CATALOG, "OrderConfirmed", v2)
    replays = [build_silver(spark, warehouse) for _replay in range(2)]

    rows = sorted((r["event_id"], r["confirmed_by"]) for r in read_silver(spark, warehouse, "OrderConfirmed").collect())
    assert rows == [("ev-0001", None), ("ev-0002", "agent-7")]  # each once, after two builds
    assert replays[0].mode == "full" and replays[0].unknown_event_types == {UNKNOWN_TYPE: 1}
    assert spark.read.format("delta").load(silver_path(warehouse, "held_back")).count() == 0  # none held back now
    # The unknown type is still in bronze, whole, for the release that learns it.
    bronze = spark.read.format("delta").load(BRONZE_EVENTS.path(warehouse))
    kept = bronze.filter(F.col("event_type") == UNKNOWN_TYPE).collect()
    assert [(r["event_id"], json.loads(r["data"])) for r in kept] == [("ev-0003", {"customer_id": "c1", "points": 40})]
    row.outcome = (
        f"all 3 landed; {UNKNOWN_TYPE} kept in bronze, counted by the ledger and by the builds that read it (never in silver); OrderConfirmed v2 "
        "held back until the release with its upcaster, then projected once (two builds, one row)"
    )
