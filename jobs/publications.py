"""Where published marts live, the publication log, and rollback.

Naming rule (one function, `published_table`, maps a mart and its contract's major version to both
the folder and the SQL name; the SQL endpoint registers tables by it):

    major 1   ->  <warehouse>/gold/<mart>        SQL name gold.<mart>
    major N   ->  <warehouse>/gold/<mart>_v<N>   SQL name gold.<mart>_v<N>

A breaking contract change (a new major version) is published into a new table beside the old one;
the old table is never written again, stays readable, and gets an end of support date in the log
(`publication.major_version_support_days` after the first publication of the new major).

The log, `meta/publications`, has one row per event on a published table: `publish` (a validated
run copied in), `rollback` (an earlier publication restored) and `end_of_support` (an older major
superseded; `supported_until` is its end date).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping, Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.config import Settings
from jobs.spark import get_spark
from jobs.tables import PUBLICATIONS, ensure_table, insert_new, latest_version, quoted_path

log = logging.getLogger("jobs")
Progress = Callable[[str], None]

PUBLISH, ROLLBACK, END_OF_SUPPORT = "publish", "rollback", "end_of_support"
# A log row is one event of one run on one version of one table: rerunning a step never logs it
# twice. The run is part of the key because publishing unchanged (e.g. empty) data makes no new
# Delta version, and that publication must be logged all the same.
_LOG_KEY = ("table_path", "table_version", "action", "run_id")


class RollbackRefused(RuntimeError):
    """The version asked for is not one the log says was published into that table."""


class MajorVersionRefused(RuntimeError):
    """The contract's major version is older than one already published for the mart."""


@dataclass(frozen=True)
class PublishedTable:
    mart: str
    major_version: int
    path: str
    sql_name: str  # schema-qualified, as the SQL endpoint exposes it


def published_table(settings: Settings, mart: str, major_version: int) -> PublishedTable:
    """The one naming rule for published marts (see the module docstring)."""
    if major_version < 1:
        raise ValueError(f"{mart}: contract major version must be at least 1, got {major_version}")
    name = mart if major_version == 1 else f"{mart}_v{major_version}"
    return PublishedTable(mart, major_version, settings.table_path("gold", name), f"gold.{name}")


def current_table(settings: Settings, mart: str) -> PublishedTable:
    """Where the mart's current contract publishes."""
    from jobs.marts import mart_module

    return published_table(settings, mart, mart_module(mart).CONTRACT.major_version)


@dataclass(frozen=True)
class LogEntry:
    mart: str
    contract_version: str
    table: PublishedTable
    table_version: int
    run_id: str
    event_watermark: datetime | None
    row_count: int
    validation_result: str
    action: str
    supported_until: datetime | None = None
    restored_version: int | None = None


def ensure_log(spark: SparkSession, warehouse: str) -> str:
    """Create the log, or add the columns a log written by an earlier release lacks."""
    path = ensure_table(spark, PUBLICATIONS, warehouse)
    present = set(spark.read.format("delta").load(path).columns)
    missing = [column for column in _ddl_columns(PUBLICATIONS.ddl) if column[0] not in present]
    if missing:
        columns = ", ".join(f"`{name}` {sql_type}" for name, sql_type in missing)
        spark.sql(f"ALTER TABLE {quoted_path(path)} ADD COLUMNS ({columns})")
    return path


def read_log(spark: SparkSession, warehouse: str) -> DataFrame:
    return spark.read.format("delta").load(ensure_log(spark, warehouse))


def append(spark: SparkSession, warehouse: str, entry: LogEntry) -> None:
    """One row, in one commit; a row already logged (same table, version and action) is kept as is."""
    append_all(spark, warehouse, [entry])


def append_all(spark: SparkSession, warehouse: str, entries: Sequence[LogEntry]) -> None:
    """The rows in one commit (a run's publications: one MERGE instead of one per mart); a row already
    logged (same table, version, action and run) is kept as is."""
    now = datetime.now(timezone.utc)
    rows = spark.createDataFrame(
        [
            (
                entry.mart,
                entry.contract_version,
                entry.table.path,
                entry.table_version,
                entry.run_id,
                entry.event_watermark,
                entry.row_count,
                entry.validation_result,
                entry.action,
                now,
                entry.table.sql_name,
                entry.supported_until,
                entry.restored_version,
            )
            for entry in entries
        ],
        PUBLICATIONS.ddl,
    )
    insert_new(spark, rows, ensure_log(spark, warehouse), _LOG_KEY)


def check_major_versions(spark: SparkSession, settings: Settings, majors: dict[str, int]) -> None:
    """Refuse to publish a major older than one published already (`majors`: mart -> the major about to
    be published; one read of the log for all): its table is out of support."""
    newest = {
        row["mart"]: row["major"]
        for row in read_log(spark, settings.warehouse)
        .filter(F.col("mart").isin(list(majors)) & (F.col("action") == PUBLISH))
        .groupBy("mart")
        .agg(F.max(F.split("contract_version", r"\.")[0].cast("int")).alias("major"))
        .collect()
    }
    for mart, major_version in majors.items():
        if newest.get(mart) is not None and major_version < newest[mart]:
            raise MajorVersionRefused(
                f"{mart}: contract major version {major_version} is older than the published major {newest[mart]} "
                f"({published_table(settings, mart, newest[mart]).sql_name}); nothing published"
            )


def end_older_majors(
    spark: SparkSession, settings: Settings, current: Mapping[str, PublishedTable], progress: Progress
) -> list[LogEntry]:
    """Give every older major table of the marts (`current`: mart -> the table just published) still in
    support an end date (logged once). One read of the log for all marts."""
    if not current:
        return []
    log = read_log(spark, settings.warehouse)
    older = log.filter(
        F.col("mart").isin(list(current))
        & ~F.col("table_path").isin([table.path for table in current.values()])
    )
    latest = (
        older.groupBy("mart", "table_path")
        .agg(F.max_by(F.struct(*log.columns), "published_at").alias("row"))
        .orderBy("mart", "table_path")
        .collect()
    )
    until = datetime.now(timezone.utc) + timedelta(days=settings.publication.major_version_support_days)
    ended = []
    for each in latest:
        row, mart = each["row"], each["mart"]
        if row["action"] == END_OF_SUPPORT:
            continue
        old = published_table(settings, mart, int(row["contract_version"].split(".")[0]))
        entry = LogEntry(
            mart=mart,
            contract_version=row["contract_version"],
            table=old,
            table_version=latest_version(spark, old.path),
            run_id=row["run_id"],
            event_watermark=row["event_watermark"],
            row_count=row["row_count"],
            validation_result=f"superseded by {current[mart].sql_name}",
            action=END_OF_SUPPORT,
            supported_until=until,
        )
        append(spark, settings.warehouse, entry)
        ended.append(entry)
        progress(
            f"{old.sql_name} stays readable, supported until {until:%Y-%m-%d %H:%M} UTC "
            f"({current[mart].sql_name} replaces it)"
        )
    return ended


def rollback(
    settings: Settings, mart: str, to_version: int, major_version: int | None = None, progress: Progress = log.info
) -> LogEntry | None:
    """Restore a published mart table to an earlier publication, as a new Delta commit, and log it.

    Delta RESTORE rather than a copy of the old version: it commits the old version's file list
    again (no data rewritten), in one commit whose history names the version restored, and it fails
    outright if VACUUM has removed those files. Only a version the log records as published (or
    restored) into that table is accepted. Returns None when the table is at that version already.
    """
    spark = get_spark(settings)
    table = current_table(settings, mart) if major_version is None else published_table(settings, mart, major_version)
    table_rows = read_log(spark, settings.warehouse).filter(
        (F.col("table_path") == table.path) & F.col("action").isin(PUBLISH, ROLLBACK)
    )
    chosen = table_rows.filter(F.col("table_version") == to_version).orderBy(F.desc("published_at")).first()
    if chosen is None:
        logged = sorted({row["table_version"] for row in table_rows.select("table_version").collect()})
        raise RollbackRefused(
            f"{table.sql_name} ({table.path}) version {to_version} is not a logged publication; "
            f"logged versions: {', '.join(map(str, logged)) or 'none'}"
        )
    if latest_version(spark, table.path) == to_version:
        progress(f"{table.sql_name} is at version {to_version} already: nothing to roll back")
        return None
    spark.sql(f"RESTORE TABLE {quoted_path(table.path)} TO VERSION AS OF {int(to_version)}")
    entry = LogEntry(
        mart=mart,
        contract_version=chosen["contract_version"],
        table=table,
        table_version=latest_version(spark, table.path),
        run_id=chosen["run_id"],
        event_watermark=chosen["event_watermark"],
        row_count=spark.read.format("delta").load(table.path).count(),
        validation_result=chosen["validation_result"],
        action=ROLLBACK,
        restored_version=int(to_version),
    )
    append(spark, settings.warehouse, entry)
    progress(
        f"rolled back {table.sql_name} to the publication of version {to_version} (run {entry.run_id}) "
        f"as version {entry.table_version}: {entry.row_count} rows"
    )
    return entry


def _ddl_columns(ddl: str) -> list[tuple[str, str]]:
    """(name, type) of a simple column list; NOT NULL dropped (a column added later cannot have it)."""
    columns = []
    for part in ddl.split(","):
        name, sql_type = part.strip().split(" ", 1)
        columns.append((name, sql_type.replace("NOT NULL", "").strip()))
    return columns
