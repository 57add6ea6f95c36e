"""What landed since a given bronze version, and the state that says which version a table reflects.

Bronze is append-only and keeps Delta's change data feed, so "the events landed after version N" is
read from the commits after N, without scanning the history. Each derived table records the bronze
version (and the event catalog) it reflects: silver tables in `meta/silver_frontiers` (and in their
commits' metadata, for a build stopped mid-way), marts in `meta/builds` per run. A table whose state
is missing, from another catalog, or older than the change feed can still serve, is rebuilt in full,
so incremental is an optimisation, never a condition for being right.
"""

from __future__ import annotations

import hashlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.events.catalog import EVENT_TYPES
from jobs.tables import BRONZE_EVENTS, SILVER_FRONTIERS, ensure_table, latest_version, quoted_path, write

log = logging.getLogger("jobs")

# Bump when silver's derivation changes in a way the catalog does not show: every table is rebuilt.
SILVER_FORMAT = 1
CHANGE_FEED = "delta.enableChangeDataFeed"


@dataclass(frozen=True)
class TableState:
    """What a derived table reflects: bronze up to `bronze_version`, read with catalog `catalog`."""

    bronze_version: int
    catalog: str
    # Where recorded (meta/silver_frontiers): bronze's row count and largest occurred_at at `bronze_version`.
    bronze_rows: int | None = None
    event_watermark: str | None = None

    def to_json(self) -> str:
        return json.dumps({"bronze_version": self.bronze_version, "catalog": self.catalog}, sort_keys=True)


def catalog_fingerprint() -> str:
    """Changes when an event type, a schema version, a required field or silver's format changes,
    e.g. when an upcaster for held-back events arrives: derived tables are then rebuilt in full."""
    described = [
        (t.name, sorted(t.schemas.items()), t.required, t.personal_fields, t.newest_version) for t in EVENT_TYPES
    ]
    return hashlib.sha256(repr((SILVER_FORMAT, described)).encode()).hexdigest()[:16]


def bronze_version(spark: SparkSession, warehouse: str) -> int:
    """The bronze table's current version (creating it, with its change feed, when new)."""
    return latest_version(spark, ensure_table(spark, BRONZE_EVENTS, warehouse))


def bronze_changes(
    spark: SparkSession, warehouse: str, after: int, upto: int, rows_after: int | None = None
) -> DataFrame | None:
    """Bronze rows inserted by the commits after version `after` up to `upto` (inclusive), with
    `_commit_version`; cached. None when the change feed cannot tell: it was not enabled yet at those
    versions (a warehouse from before it was), or maintenance removed their files (then rebuild).

    `rows_after`, bronze's row count at `after` when known: `maintain` with a retention shorter than
    the time since `after` deletes the log entries after it too (its own OPTIMIZE and VACUUM commits).
    The feed is then read from the oldest version left if bronze held as many rows there: bronze only
    ever gains rows, so nothing landed in between.
    """
    path = ensure_table(spark, BRONZE_EVENTS, warehouse)
    if not _change_feed_enabled(spark, path):
        spark.sql(f"ALTER TABLE {quoted_path(path)} SET TBLPROPERTIES ('{CHANGE_FEED}' = 'true')")
        log.info("bronze: change data feed enabled; this build reads bronze in full")
        return None
    try:
        return _changes(spark, path, after, upto)
    except Exception as error:  # noqa: BLE001 - any failure to read the feed means: rebuild in full
        reason = str(error).splitlines()[0]
    if rows_after is not None:
        oldest = spark.sql(f"DESCRIBE HISTORY {quoted_path(path)}").agg(F.min("version")).first()[0]
        if after < oldest <= upto and bronze_rows(spark, warehouse, oldest) == rows_after:
            log.info("bronze: versions %s to %s were cleaned up, nothing landed in them", after + 1, oldest)
            try:
                return _changes(spark, path, oldest, upto)
            except Exception as error:  # noqa: BLE001
                reason = str(error).splitlines()[0]
    log.info("bronze: changes after version %s cannot be read (%s); reading bronze in full", after, reason)
    return None


def bronze_rows(spark: SparkSession, warehouse: str, version: int) -> int:
    """Bronze's row count at `version` (from Delta's file statistics, without reading the data)."""
    return spark.read.format("delta").option("versionAsOf", version).load(BRONZE_EVENTS.path(warehouse)).count()


def _changes(spark: SparkSession, path: str, after: int, upto: int) -> DataFrame:
    if after >= upto:
        return spark.read.format("delta").load(path).limit(0).withColumn("_commit_version", F.lit(0).cast("bigint"))
    changes = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", after + 1)
        .option("endingVersion", upto)
        .load(path)
        .filter(F.col("_change_type") == "insert")
        .drop("_change_type", "_commit_timestamp")
        # As silver's full read: bronze-sized after a large landing, so on disk rather than in the heap.
        .persist(StorageLevel.DISK_ONLY)
    )
    changes.count()
    return changes


def _change_feed_enabled(spark: SparkSession, path: str) -> bool:
    properties = spark.sql(f"DESCRIBE DETAIL {quoted_path(path)}").first()["properties"]
    return properties.get(CHANGE_FEED, "false").lower() == "true"


def commit_state(spark: SparkSession, path: str) -> TableState | None:
    """The state recorded by the table's latest commit that recorded one (maintenance commits do not),
    or None for a table that does not exist or never recorded one."""
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        return None
    for limit in (5, None):
        history = spark.sql(f"DESCRIBE HISTORY {quoted_path(path)}" + (f" LIMIT {limit}" if limit else ""))
        row = history.filter(F.col("userMetadata").isNotNull()).orderBy(F.desc("version")).select("userMetadata").first()
        if row is not None:
            try:
                recorded = json.loads(row["userMetadata"])
                return TableState(int(recorded["bronze_version"]), str(recorded["catalog"]))
            except (ValueError, KeyError, TypeError):
                return None
    return None


def silver_states(spark: SparkSession, warehouse: str, paths: dict[str, str]) -> dict[str, TableState | None]:
    """Each silver table's state (`paths`: table name -> path), None when unknown (it is then rebuilt).

    A table with nothing new gets no commit, so its own commits cannot say how far it has read:
    `meta/silver_frontiers` does, once the build that recorded it finished. A build stopped mid-way
    left `writing_to` set; the table's latest commit then tells whether that build's write committed
    (its metadata names `writing_to`) or not (the recorded version still holds). A table without a
    row (a warehouse from before the frontiers) is read from its commits alone, as before.
    """
    from delta.tables import DeltaTable

    frontiers = {row["silver_table"]: row for row in _frontier_rows(spark, warehouse).collect()}

    def state(name: str) -> TableState | None:
        row, path = frontiers.get(name), paths[name]
        if row is None:
            return commit_state(spark, path)
        if not DeltaTable.isDeltaTable(spark, path):
            return None  # removed since: rebuilt
        recorded = TableState(row["bronze_version"], row["catalog"], row["bronze_rows"], row["event_watermark"])
        if row["writing_to"] is None:
            return recorded
        committed = commit_state(spark, path)
        if committed is None:
            return None  # its commits were cleaned up: whether the write committed is unknown
        return committed if committed.bronze_version == row["writing_to"] else recorded

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(paths, pool.map(state, paths)))


def record_silver_writing(
    spark: SparkSession, warehouse: str, states: dict[str, TableState | None], upto: int
) -> None:
    """Before a build writes silver tables: each one's known state, with `writing_to` = `upto`, in one
    commit. A table of unknown state loses its row (its commits say, as before the frontiers)."""
    now = datetime.now(timezone.utc)
    rows = [
        (name, s.bronze_version, s.catalog, s.bronze_rows, s.event_watermark, upto, now)
        for name, s in states.items()
        if s is not None
    ]
    _replace_frontiers(spark, warehouse, list(states), rows)


def record_silver_frontiers(
    spark: SparkSession, warehouse: str, tables: list[str], upto: int, catalog: str, event_watermark: str | None
) -> None:
    """After every write of a build committed: these tables reflect bronze up to `upto`, in one commit."""
    now, rows = datetime.now(timezone.utc), bronze_rows(spark, warehouse, upto)
    recorded = [(name, upto, catalog, rows, event_watermark, None, now) for name in tables]
    _replace_frontiers(spark, warehouse, tables, recorded)


def _frontier_rows(spark: SparkSession, warehouse: str) -> DataFrame:
    from delta.tables import DeltaTable

    path = SILVER_FRONTIERS.path(warehouse)
    if not DeltaTable.isDeltaTable(spark, path):
        return spark.createDataFrame([], SILVER_FRONTIERS.ddl)
    return spark.read.format("delta").load(path)


def _replace_frontiers(spark: SparkSession, warehouse: str, tables: list[str], rows: list[tuple]) -> None:
    """The rows of `tables` replaced by `rows`, other tables' rows kept (builds of a few tables)."""
    kept = [tuple(row) for row in _frontier_rows(spark, warehouse).collect() if row["silver_table"] not in tables]
    frame = spark.createDataFrame(kept + rows, SILVER_FRONTIERS.ddl).coalesce(1)
    write(spark, frame, SILVER_FRONTIERS.path(warehouse), "overwrite")
