"""Table maintenance: compact small files (OPTIMIZE), delete files older versions no longer need
(VACUUM), and clean the transaction log (a checkpoint, then the log entries before it that are older
than the retention), on every Delta table of the warehouse. Time travel reaches back only as far as
the retention; erasure (docs/privacy.md) becomes physical only once this has run past it, which the
erasure log then records.

Why the log cleanup is done here and not left to Delta: Delta (4.4) deletes expired log entries only
when it writes a checkpoint (every `delta.checkpointInterval` commits, 10 by default), only those older
than `delta.logRetentionDuration` (30 days by default, and never below `deletedFileRetentionDuration`),
and it truncates that cutoff to the start of the day, so even with every retention at 0 hours nothing
written today is deleted (probed). It offers no command to force it. So `maintain` writes a checkpoint
itself and deletes the log files below the newest checkpoint whose every earlier commit is older
than the retention: what Delta's own cleanup does, without the day boundary.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from pyspark.sql import SparkSession

from jobs import storage
from jobs.config import Settings
from jobs.silver import SPLIT as SILVER_SPLIT
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
    log_files_deleted: int = 0
    earliest_version: int = 0  # the oldest version still readable after the log cleanup


def delta_tables(spark: SparkSession, warehouse: str) -> list[str]:
    """Every Delta table under the warehouse (a folder holding a _delta_log), staging excluded, found
    on the warehouse's file system (jobs/storage.py). A table's folder holds its data files and
    partitions, never another table, so the search does not descend into it: on an object store each
    folder listed is a request."""
    tables: list[str] = []

    def search(folder: str) -> None:
        children = storage.list_dir(spark, folder)
        if any(child.name == "_delta_log" and child.is_dir for child in children):
            tables.append(folder)
            return
        for child in children:
            if child.is_dir and child.name != "staging":
                search(child.path)

    search(warehouse.rstrip("/"))
    return sorted(tables)


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
    # Files removed before this are deleted by this run's VACUUMs (each computes its own, later, cutoff).
    cutoff = datetime.now(timezone.utc) - timedelta(hours=retention)
    # Delta refuses short retentions itself; the check above replaces it, so lift it for this call only.
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", str(retention >= 168).lower())
    # VACUUM records what it deleted in the table's history only when asked to.
    spark.conf.set("spark.databricks.delta.vacuum.logging.enabled", "true")

    def maintained(path: str) -> TableMaintenance:
        table = _maintain_table(spark, path, retention)
        progress(f"maintained {path}: optimize removed {table.files_removed_by_optimize} file(s), "
                 f"vacuum deleted {table.files_deleted_by_vacuum}, log cleanup deleted "
                 f"{table.log_files_deleted} (versions from {table.earliest_version} remain)")
        return table

    # Maintenance holds every writer lease: no full rebuild is using its copy of bronze now, and one
    # left there was left by a build killed before its cleanup.
    if storage.delete(spark, f"{settings.warehouse.rstrip('/')}/{SILVER_SPLIT}"):
        progress(f"removed {SILVER_SPLIT}, left by a full rebuild that was stopped")
    try:
        # Tables are independent and each is a few small jobs: side by side, Delta's per-commit
        # latency overlaps (as silver's writes do).
        with ThreadPoolExecutor(max_workers=4) as pool:
            done = list(pool.map(maintained, delta_tables(spark, settings.warehouse)))
    finally:
        spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "true")
    _record_physical_erasures(spark, settings.warehouse, done, cutoff, progress)
    return done


def _record_physical_erasures(
    spark: SparkSession, warehouse: str, done: list[TableMaintenance], cutoff: datetime, progress: Callable[[str], None]
) -> None:
    from jobs.privacy.erasure import mark_physical
    from jobs.privacy.keys import DATA_KEYS

    keys = next((table for table in done if table.path == DATA_KEYS.path(warehouse)), None)
    if keys is None:
        return
    physical = mark_physical(spark, warehouse, cutoff, keys.earliest_version)
    if physical:
        progress(f"{physical} erasure(s) are now physical: no file or log entry of the warehouse holds their keys")


def _maintain_table(spark: SparkSession, path: str, retention_hours: int) -> TableMaintenance:
    optimized = spark.sql(f"OPTIMIZE {quoted_path(path)}").collect()[0]["metrics"]
    spark.sql(f"VACUUM {quoted_path(path)} RETAIN {retention_hours} HOURS").collect()
    vacuumed = _vacuum_deleted(spark, path)
    _checkpoint(spark, path)
    # Log entries older than the retention as of now (this run's own commits included at 0 hours).
    log_cutoff = datetime.now(timezone.utc) - timedelta(hours=retention_hours)
    deleted, earliest = clean_log(spark, f"{path}/_delta_log", log_cutoff)
    return TableMaintenance(path, int(optimized["numFilesRemoved"]), vacuumed, deleted, earliest)


def _checkpoint(spark: SparkSession, path: str) -> None:
    """A checkpoint of the table's current version (Delta has no SQL for it; its JVM API does)."""
    jvm = getattr(spark, "_jvm", None)
    if jvm is None:
        raise RuntimeError("transaction-log cleanup needs a classic Spark session: Delta's checkpoint is not reachable over Spark Connect")
    jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path).checkpoint()


# <version>.json, .crc, .checkpoint[.<part>.<parts>|.<uuid>].parquet|json, <v>.<v2>.compacted.json, and
# their hidden Hadoop checksums (.<name>.crc); staged commits are <version>.<uuid>.json.
_LOG_FILE = re.compile(r"^\.?(\d{20})\.(?:json|crc|checkpoint\b.*|\d{20}\.compacted\.json)(?:\.crc)?$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\b.*\.(?:parquet|json)$")
_COMMIT = re.compile(r"^(\d{20})\.json$")


def clean_log(spark: SparkSession, log_dir: str, cutoff: datetime) -> tuple[int, int]:
    """Delete the log files below the newest checkpoint whose earlier commits are all older than the
    cutoff, as Delta's own cleanup would; return (files deleted, oldest version still readable).

    Through the warehouse's file system (jobs/storage.py); commit ages are the files' modification
    times, as Delta's own cleanup reads them (on S3, when the object was written). Hadoop's local file
    system hides its checksum files (.<name>.crc) from listings and deletes each with its file, so
    they are not counted."""
    entries = storage.list_dir(spark, log_dir)
    commits = {int(m.group(1)): e for e in entries if (m := _COMMIT.match(e.name))}
    checkpoints = sorted({int(m.group(1)) for e in entries if (m := _CHECKPOINT.match(e.name))})
    boundary = 0
    for version in checkpoints:
        # Every commit below this checkpoint expired: versions before it may go.
        if all(commits[v].modified_at <= cutoff for v in commits if v < version):
            boundary = version
    if boundary == 0:
        return 0, min(commits, default=0)
    deleted = 0
    staged = [e for e in entries if e.name == "_staged_commits" and e.is_dir]
    for entry in entries + [child for folder in staged for child in storage.list_dir(spark, folder.path)]:
        match = _LOG_FILE.match(entry.name) or re.match(r"^\.?(\d{20})\.[0-9a-f-]+\.json(?:\.crc)?$", entry.name)
        if match and int(match.group(1)) < boundary and not entry.is_dir:
            storage.delete(spark, entry.path)
            deleted += 1
    return deleted, boundary


def _vacuum_deleted(spark: SparkSession, path: str) -> int:
    ends = spark.sql(f"DESCRIBE HISTORY {quoted_path(path)}").filter("operation = 'VACUUM END'")
    latest = ends.orderBy("version", ascending=False).first()
    return int(latest["operationMetrics"].get("numDeletedFiles", 0)) if latest else 0
