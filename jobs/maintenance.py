"""Table maintenance: compact small files (OPTIMIZE) and delete files older versions no longer need
(VACUUM), on every Delta table of the warehouse. Time travel reaches back only as far as the
retention; erasure (docs/privacy.md) becomes physical only once VACUUM has run past it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pyspark.sql import SparkSession

from jobs.config import Settings
from jobs.spark import get_spark
from jobs.tables import quoted_path

log = logging.getLogger("jobs")


class RetentionRefused(ValueError):
    """A retention below the configured minimum was asked for without --force."""


@dataclass(frozen=True)
class TableMaintenance:
    path: str
    files_removed_by_optimize: int
    files_deleted_by_vacuum: int


def delta_tables(warehouse: str) -> list[str]:
    """Every Delta table under the warehouse (a folder holding a _delta_log), staging excluded."""
    root = Path(warehouse)
    return sorted(
        str(log_dir.parent)
        for log_dir in root.rglob("_delta_log")
        if "staging" not in log_dir.parent.relative_to(root).parts
    )


def checked_retention(settings: Settings, retention_hours: int | None, *, force: bool = False) -> int:
    """The retention to use (None: the configured one), refused below the configured minimum unless forced."""
    retention = settings.maintenance.retention_hours if retention_hours is None else retention_hours
    minimum = settings.maintenance.min_retention_hours
    if retention < 0:
        raise RetentionRefused(f"retention must be 0 hours or more, got {retention}")
    if retention < minimum and not force:
        raise RetentionRefused(
            f"a retention of {retention} hours is below the minimum of {minimum} (maintenance.min_retention_hours): "
            "older versions would become unreadable to running readers and time travel; pass --force to do it anyway"
        )
    return retention


def maintain(
    settings: Settings,
    retention_hours: int | None = None,
    *,
    force: bool = False,
    progress: Callable[[str], None] = log.info,
) -> list[TableMaintenance]:
    retention = checked_retention(settings, retention_hours, force=force)
    spark = get_spark(settings)
    done = []
    # Delta refuses short retentions itself; the check above replaces it, so lift it for this call only.
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", str(retention >= 168).lower())
    # VACUUM records what it deleted in the table's history only when asked to.
    spark.conf.set("spark.databricks.delta.vacuum.logging.enabled", "true")
    try:
        for path in delta_tables(settings.warehouse):
            done.append(_maintain_table(spark, path, retention))
            progress(f"maintained {path}: optimize removed {done[-1].files_removed_by_optimize} file(s), "
                     f"vacuum deleted {done[-1].files_deleted_by_vacuum}")
    finally:
        spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "true")
    return done


def _maintain_table(spark: SparkSession, path: str, retention_hours: int) -> TableMaintenance:
    optimized = spark.sql(f"OPTIMIZE {quoted_path(path)}").collect()[0]["metrics"]
    spark.sql(f"VACUUM {quoted_path(path)} RETAIN {retention_hours} HOURS").collect()
    return TableMaintenance(path, int(optimized["numFilesRemoved"]), _vacuum_deleted(spark, path))


def _vacuum_deleted(spark: SparkSession, path: str) -> int:
    ends = spark.sql(f"DESCRIBE HISTORY {quoted_path(path)}").filter("operation = 'VACUUM END'")
    latest = ends.orderBy("version", ascending=False).first()
    return int(latest["operationMetrics"].get("numDeletedFiles", 0)) if latest else 0
