"""`maintain`: OPTIMIZE and VACUUM every table, never below the retention floor unless forced."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from jobs.landing.files import land_files
from jobs.maintenance import RetentionRefused, delta_tables, maintain
from jobs.silver import SPLIT as SILVER_SPLIT
from jobs.tables import quoted_path
from tests.histories import History


def _parquet_files(table: str) -> set[str]:
    return {str(p) for p in Path(table).rglob("*.parquet")}


def test_a_retention_below_the_minimum_is_refused_without_force(settings, warehouse):
    with pytest.raises(RetentionRefused, match="below the minimum of 168"):
        maintain(dataclasses.replace(settings, warehouse=warehouse), 0)


def test_forced_zero_retention_deletes_files_no_version_needs_and_keeps_tables_readable(spark, settings, warehouse, tmp_path):
    history = History()
    for n in range(4):
        history.add("OrderConfirmed", f"order-o{n}", {"order_id": f"o{n}"}, "2026-01-05T10:00:00Z")
    for n, event in enumerate(history.events):
        single = History()
        single.events = [event]
        single.write(tmp_path / "landing", f"{n}.ndjson")
        land_files(spark, warehouse, tmp_path / "landing", f"r{n}")  # one small file per landing
    bronze = f"{warehouse}/bronze/events"
    spark.sql(f"DELETE FROM {quoted_path(bronze)} WHERE event_id = 'ev-0001'")
    files_before = _parquet_files(bronze)

    done = {t.path: t for t in maintain(dataclasses.replace(settings, warehouse=warehouse), 0, force=True)}

    assert bronze in done and done[bronze].files_removed_by_optimize > 1 and done[bronze].files_deleted_by_vacuum > 0
    assert len(_parquet_files(bronze)) < len(files_before)
    assert spark.read.format("delta").load(bronze).count() == 3
    assert set(delta_tables(spark, warehouse)) == set(done)


def test_maintenance_removes_the_copy_of_bronze_that_a_stopped_full_rebuild_left(spark, settings, warehouse):
    left = Path(warehouse) / SILVER_SPLIT / "a-build-killed-before-its-cleanup"
    spark.range(3).write.format("delta").save(str(left))
    messages: list[str] = []

    done = maintain(dataclasses.replace(settings, warehouse=warehouse), 0, force=True, progress=messages.append)

    assert not (Path(warehouse) / SILVER_SPLIT).exists()
    assert str(left) not in {table.path for table in done}
    assert any(message.startswith(f"removed {SILVER_SPLIT}") for message in messages)
