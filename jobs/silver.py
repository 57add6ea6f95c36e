"""Silver: one typed Delta table per event type at its newest schema version, derived from bronze.

Silver can always be rebuilt from bronze; it is rewritten whole, each table in one commit. Events
that cannot be projected are kept beside it with their reason: `held_back` (a schema version newer
than the catalog knows, projected by a replay once an upcaster exists) and `invalid_payloads`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import reduce
from typing import Iterable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.events.catalog import CATALOG, EVENT_TYPES
from jobs.tables import BRONZE_EVENTS, overwrite, read_table
from jobs.upcasting.chain import upcast


@dataclass
class SilverReport:
    rows_per_table: dict[str, int] = field(default_factory=dict)
    held_back: int = 0
    invalid_payloads: int = 0
    unknown_event_types: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        unknown = ", ".join(f"{name}: {n}" for name, n in sorted(self.unknown_event_types.items())) or "none"
        return (
            f"silver: {sum(self.rows_per_table.values())} events in {len(self.rows_per_table)} tables, "
            f"{self.held_back} held back (newer schema version), {self.invalid_payloads} invalid payloads, "
            f"unknown event types kept in bronze: {unknown}"
        )


def silver_path(warehouse: str, table: str) -> str:
    return f"{warehouse.rstrip('/')}/silver/{table}"


def read_silver(spark: SparkSession, warehouse: str, event_type_name: str) -> DataFrame:
    return spark.read.format("delta").load(silver_path(warehouse, CATALOG[event_type_name].table_name))


def build_silver(
    spark: SparkSession, warehouse: str, progress=lambda message: None, only: Iterable[str] | None = None
) -> SilverReport:
    """Rewrite every silver table from bronze (`only`: just these event types' tables, for tests of
    marts that read a few; held_back and invalid_payloads then cover just those types)."""
    bronze = read_table(spark, BRONZE_EVENTS, warehouse).cache()
    wanted = set(only) if only is not None else None
    event_types = [t for t in EVENT_TYPES if wanted is None or t.name in wanted]
    results = [upcast(bronze.filter(F.col("event_type") == event_type.name), event_type) for event_type in event_types]
    writes = {silver_path(warehouse, t.table_name): r.events for t, r in zip(event_types, results)}
    erasures = silver_path(warehouse, CATALOG["CustomerErasureRequested"].table_name)
    if erasures in writes:
        from jobs.privacy.erasure import with_erasures_outside_the_event_log

        writes[erasures] = with_erasures_outside_the_event_log(spark, warehouse, writes[erasures])
    # One union part per event type; few rows, so one partition instead of one task per part.
    writes[silver_path(warehouse, "invalid_payloads")] = reduce(DataFrame.unionByName, [r.invalid for r in results]).coalesce(1)
    writes[silver_path(warehouse, "held_back")] = reduce(DataFrame.unionByName, [r.held_back for r in results]).coalesce(1)
    # Each table is a small job; on few cores, running them side by side hides Delta's per-commit latency.
    with ThreadPoolExecutor(max_workers=4) as pool:
        rows = dict(zip(writes, pool.map(lambda item: overwrite(spark, item[1], item[0]), writes.items())))
    report = SilverReport()
    report.rows_per_table = {t.table_name: rows[silver_path(warehouse, t.table_name)] for t in event_types}
    report.invalid_payloads = rows[silver_path(warehouse, "invalid_payloads")]
    report.held_back = rows[silver_path(warehouse, "held_back")]
    report.unknown_event_types = {
        row["event_type"]: row["count"]
        for row in bronze.filter(~F.col("event_type").isin(list(CATALOG))).groupBy("event_type").count().collect()
    }
    bronze.unpersist()
    progress(report.summary())
    return report
