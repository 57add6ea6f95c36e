"""Silver records how far each table has read bronze, also when a build brings it nothing new.

One warehouse lands events of two types, then of one type only, then, after a forced maintenance
has deleted every old version of bronze, of both again, with a build after each delivery.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs.events.catalog import CATALOG
from jobs.incremental import bronze_version, silver_states
from jobs.landing.files import land_files
from jobs.maintenance import maintain
from jobs.silver import SPLIT, _split_by_type, build_silver, read_silver, silver_path
from jobs.tables import BRONZE_EVENTS, SILVER_FRONTIERS, latest_version
from tests.histories import History

TYPES = ("OrderConfirmed", "PaymentCaptured")
TABLES = ("order_confirmed", "payment_captured")


def _deliveries() -> list[History]:
    """Three deliveries of one history (so that event ids differ): both types, confirmations only
    (one delivered twice), both types again."""
    history = History()
    for n in range(3):
        history.add("OrderConfirmed", f"order-o{n}", {"order_id": f"o{n}"}, f"2026-01-05T1{n}:00:00Z")
        payment = {"order_id": f"o{n}", "amount_cents": 100 * n, "method": None}
        history.add("PaymentCaptured", f"order-o{n}", payment, f"2026-01-05T1{n}:01:00Z")
    first = len(history.events)
    late = history.add("OrderConfirmed", "order-o7", {"order_id": "o7"}, "2026-01-04T09:00:00Z")
    history.add("OrderConfirmed", "order-o8", {"order_id": "o8"}, "2026-01-06T09:00:00Z")
    history.redeliver(late)
    second = len(history.events)
    history.add("OrderConfirmed", "order-o9", {"order_id": "o9"}, "2026-01-06T10:00:00Z")
    payment = {"order_id": "o9", "amount_cents": 900, "method": "card"}
    history.add("PaymentCaptured", "order-o9", payment, "2026-01-06T10:01:00Z")
    parts = []
    for events in (history.events[:first], history.events[first:second], history.events[second:]):
        part = History()
        part.events = events
        parts.append(part)
    return parts


def _land(spark, warehouse: str, folder: Path, delivery: History, name: str) -> None:
    delivery.write(folder, f"{name}.ndjson")
    land_files(spark, warehouse, folder, name)


def _versions(spark, warehouse: str) -> dict[str, int]:
    """The latest Delta version of every silver table and of the frontiers' record."""
    paths = [silver_path(warehouse, name) for name in (*TABLES, "invalid_payloads", "held_back")]
    return {path: latest_version(spark, path) for path in (*paths, SILVER_FRONTIERS.path(warehouse))}


def _payments_fail(monkeypatch, warehouse: str) -> None:
    """Silver's write of payment_captured fails, as when a build is killed there (until `monkeypatch.undo`)."""
    import jobs.silver
    from jobs.tables import write

    def payments_fail(spark_, frame, path, mode, metadata=None):
        if path == silver_path(warehouse, "payment_captured"):
            raise RuntimeError("killed")
        return write(spark_, frame, path, mode, metadata)

    monkeypatch.setattr(jobs.silver, "write", payments_fail)


@pytest.fixture(scope="module")
def runs(spark, settings, tmp_path_factory):
    """(warehouse, {step: (report, bronze version)}) after each delivery and build, a forced
    maintenance between the second and the third; the silver states after the second build."""
    root = tmp_path_factory.mktemp("silver_state")
    warehouse = str(root / "warehouse")
    first, second, third = _deliveries()
    reports = {}
    _land(spark, warehouse, root / "landing", first, "both")
    reports["both"] = build_silver(spark, warehouse, only=TYPES), bronze_version(spark, warehouse)
    _land(spark, warehouse, root / "landing", second, "confirmations")
    reports["confirmations"] = build_silver(spark, warehouse, only=TYPES), bronze_version(spark, warehouse)
    reports["states"] = silver_states(spark, warehouse, {name: silver_path(warehouse, name) for name in TABLES})
    before = _versions(spark, warehouse)
    reports["nothing landed"] = build_silver(spark, warehouse, only=TYPES), bronze_version(spark, warehouse)
    reports["versions"] = before, _versions(spark, warehouse)
    maintain(dataclasses.replace(settings, warehouse=warehouse), 0, force=True, progress=lambda message: None)
    history = spark.sql(f"DESCRIBE HISTORY delta.`{warehouse}/bronze/events`")
    reports["oldest after maintenance"] = history.agg({"version": "min"}).first()[0]
    _land(spark, warehouse, root / "landing", third, "after-maintenance")
    reports["after-maintenance"] = build_silver(spark, warehouse, only=TYPES), bronze_version(spark, warehouse)
    return warehouse, reports


def test_a_build_reports_the_rows_it_wrote_and_zero_for_a_table_with_nothing_new(runs):
    _warehouse, reports = runs
    assert reports["both"][0].rows_per_table == {"order_confirmed": 3, "payment_captured": 3}
    # Landing drops the redelivered confirmation: two new rows, and none for payments.
    assert reports["confirmations"][0].rows_per_table == {"order_confirmed": 2, "payment_captured": 0}
    assert reports["confirmations"][0].mode == "incremental"


def test_a_table_with_nothing_new_still_records_the_bronze_version_it_has_read_up_to(runs):
    _warehouse, reports = runs
    _report, version = reports["confirmations"]
    assert {name: s.bronze_version for name, s in reports["states"].items()} == dict.fromkeys(TABLES, version)


def test_a_build_with_nothing_landed_since_the_last_writes_no_table_and_reports_the_same_watermark(runs):
    _warehouse, reports = runs
    report, version = reports["nothing landed"]
    assert version == reports["confirmations"][1]
    assert report.mode == "incremental"
    assert report.rows_per_table == dict.fromkeys(TABLES, 0)
    assert report.event_watermark == reports["confirmations"][0].event_watermark
    before, after = reports["versions"]
    assert after == before


def test_after_maintenance_deleted_old_bronze_versions_a_build_reads_only_the_new_events(runs):
    _warehouse, reports = runs
    report, _version = reports["after-maintenance"]
    # The versions after the second build's are gone from bronze's log, maintenance's own commits too.
    assert reports["oldest after maintenance"] > reports["confirmations"][1] + 1
    assert report.mode == "incremental"
    assert report.rows_per_table == {"order_confirmed": 1, "payment_captured": 1}


def test_each_build_reports_the_largest_occurred_at_in_bronze_late_events_included(runs):
    _warehouse, reports = runs
    watermarks = {step: reports[step][0].event_watermark for step in ("both", "confirmations", "after-maintenance")}
    assert watermarks == {
        "both": "2026-01-05T12:01:00.000000Z",
        "confirmations": "2026-01-06T09:00:00.000000Z",  # a late event (Jan 4) does not move it back
        "after-maintenance": "2026-01-06T10:01:00.000000Z",
    }


def test_silver_built_incrementally_equals_a_full_rebuild(spark, runs):
    warehouse, _reports = runs
    incremental = {name: read_silver(spark, warehouse, name).collect() for name in TYPES}
    build_silver(spark, warehouse, only=TYPES, full=True)
    for name in TYPES:
        rebuilt = read_silver(spark, warehouse, name)
        assert_df_equality(spark.createDataFrame(incremental[name], rebuilt.schema), rebuilt, ignore_row_order=True)
    assert len(incremental["OrderConfirmed"]) == 6 and len(incremental["PaymentCaptured"]) == 4


def test_a_build_stopped_after_some_writes_is_rerun_without_skipping_or_doubling_events(
    spark, warehouse, tmp_path, monkeypatch
):
    first, second, third = _deliveries()
    _land(spark, warehouse, tmp_path / "landing", first, "both")
    build_silver(spark, warehouse, only=TYPES)
    _land(spark, warehouse, tmp_path / "landing", third, "both-again")

    _payments_fail(monkeypatch, warehouse)
    with pytest.raises(RuntimeError, match="killed"):
        build_silver(spark, warehouse, only=TYPES)
    monkeypatch.undo()
    # The rerun, with more landed meanwhile: confirmations get only what they lack, payments all of it.
    _land(spark, warehouse, tmp_path / "landing", second, "confirmations")
    report = build_silver(spark, warehouse, only=TYPES)
    assert report.mode == "incremental"
    assert report.rows_per_table == {"order_confirmed": 2, "payment_captured": 1}
    ids = {name: [r["event_id"] for r in read_silver(spark, warehouse, name).collect()] for name in TYPES}
    assert len(ids["OrderConfirmed"]) == len(set(ids["OrderConfirmed"])) == 6
    assert len(ids["PaymentCaptured"]) == len(set(ids["PaymentCaptured"])) == 4


def _split_folder(warehouse: str) -> Path:
    return Path(warehouse) / SPLIT


def test_a_full_build_reads_each_type_from_its_own_partition_of_a_copy_of_bronze(spark, warehouse, tmp_path):
    first, _second, _third = _deliveries()
    _land(spark, warehouse, tmp_path / "landing", first, "both")
    bronze = spark.read.format("delta").load(BRONZE_EVENTS.path(warehouse))

    with _split_by_type(spark, warehouse, bronze) as split:
        confirmations = split.of_type(silver_path(warehouse, "order_confirmed"), CATALOG["OrderConfirmed"])
        plan = confirmations._jdf.queryExecution().executedPlan().toString()
        rows = sorted(confirmations.collect())
        assert any(_split_folder(warehouse).iterdir())

    # Only that type's files are listed for the scan (the partition filter), and it has all its rows.
    assert re.search(r"PartitionFilters: \[[^\]]*\(_silver_table#\d+ = OrderConfirmed\)", plan), plan
    assert rows == sorted(bronze.filter(F.col("event_type") == "OrderConfirmed").collect())
    assert confirmations.columns == bronze.columns
    assert not _split_folder(warehouse).exists()  # removed when the build is done with it


def test_a_full_build_removes_the_copy_of_bronze_when_it_fails_and_what_a_stopped_one_left(
    spark, warehouse, tmp_path, monkeypatch
):
    first, _second, _third = _deliveries()
    _land(spark, warehouse, tmp_path / "landing", first, "both")
    stopped = _split_folder(warehouse) / "a-build-killed-before-its-cleanup"
    stopped.mkdir(parents=True)
    (stopped / "part-00000.parquet").write_bytes(b"left over")

    _payments_fail(monkeypatch, warehouse)
    with pytest.raises(RuntimeError, match="killed"):
        build_silver(spark, warehouse, only=TYPES, full=True)
    assert not _split_folder(warehouse).exists()
    monkeypatch.undo()

    report = build_silver(spark, warehouse, only=TYPES, full=True)
    assert report.mode == "full" and report.rows_per_table == {"order_confirmed": 3, "payment_captured": 3}
    assert not _split_folder(warehouse).exists()
    # The copy's partition column stays in the copy.
    assert "_silver_table" not in read_silver(spark, warehouse, "OrderConfirmed").columns


def test_a_build_upcasts_each_type_once_for_its_own_table_invalid_payloads_and_held_back(
    spark, warehouse, tmp_path, monkeypatch
):
    import jobs.silver

    first, second, _third = _deliveries()
    upcast_types = []

    def counted(rows, event_type):
        upcast_types.append(event_type.name)
        return jobs.silver.upcast.__wrapped__(rows, event_type)

    counted.__wrapped__ = jobs.silver.upcast
    monkeypatch.setattr(jobs.silver, "upcast", counted)
    _land(spark, warehouse, tmp_path / "landing", first, "both")
    full = build_silver(spark, warehouse, only=TYPES)
    _land(spark, warehouse, tmp_path / "landing", second, "confirmations")
    incremental = build_silver(spark, warehouse, only=TYPES)

    assert (full.mode, incremental.mode) == ("full", "incremental")
    # One plan per type and build, not three; none for a type with no new rows (payments, the second time).
    assert upcast_types[:2] == list(TYPES) and upcast_types[2:] == ["OrderConfirmed"]
    assert incremental.rows_per_table == {"order_confirmed": 2, "payment_captured": 0}


def test_a_full_build_writes_a_type_without_rows_empty_in_the_schema_its_rows_get(spark, runs, warehouse, tmp_path):
    with_payments, _reports = runs
    _first, confirmations_only, _third = _deliveries()
    _land(spark, warehouse, tmp_path / "landing", confirmations_only, "confirmations")

    report = build_silver(spark, warehouse, only=TYPES)

    assert report.mode == "full" and report.rows_per_table == {"order_confirmed": 2, "payment_captured": 0}
    payments = read_silver(spark, warehouse, "PaymentCaptured")
    assert payments.count() == 0
    assert payments.schema == read_silver(spark, with_payments, "PaymentCaptured").schema
    for table in ("invalid_payloads", "held_back"):
        written = spark.read.format("delta").load(silver_path(warehouse, table))
        assert written.schema == spark.read.format("delta").load(silver_path(with_payments, table)).schema
