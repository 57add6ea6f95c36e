"""What landed since a given bronze version, and the state that says which version a table reflects.

Bronze is append-only and keeps Delta's change data feed, so "the events landed after version N" is
read from the commits after N, without scanning the history. Each derived table records the bronze
version (and the event catalog) it reflects: silver tables in their commits' metadata, marts in
`meta/builds` per run. A table whose state is missing, from another catalog, or older than the
change feed can still serve, is rebuilt in full, so incremental is an optimisation, never a
condition for being right.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.events.catalog import EVENT_TYPES
from jobs.tables import BRONZE_EVENTS, ensure_table, latest_version, quoted_path

log = logging.getLogger("jobs")

# Bump when silver's derivation changes in a way the catalog does not show: every table is rebuilt.
SILVER_FORMAT = 1
CHANGE_FEED = "delta.enableChangeDataFeed"


@dataclass(frozen=True)
class TableState:
    """What a derived table reflects: bronze up to `bronze_version`, read with catalog `catalog`."""

    bronze_version: int
    catalog: str

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


def bronze_changes(spark: SparkSession, warehouse: str, after: int, upto: int) -> DataFrame | None:
    """Bronze rows inserted by the commits after version `after` up to `upto` (inclusive), with
    `_commit_version`; cached. None when the change feed cannot tell: it was not enabled yet at those
    versions (a warehouse from before it was), or maintenance removed their files (then rebuild)."""
    path = ensure_table(spark, BRONZE_EVENTS, warehouse)
    if not _change_feed_enabled(spark, path):
        spark.sql(f"ALTER TABLE {quoted_path(path)} SET TBLPROPERTIES ('{CHANGE_FEED}' = 'true')")
        log.info("bronze: change data feed enabled; this build reads bronze in full")
        return None
    if after >= upto:
        return spark.read.format("delta").load(path).limit(0).withColumn("_commit_version", F.lit(0).cast("bigint"))
    try:
        changes = (
            spark.read.format("delta")
            .option("readChangeFeed", "true")
            .option("startingVersion", after + 1)
            .option("endingVersion", upto)
            .load(path)
            .filter(F.col("_change_type") == "insert")
            .drop("_change_type", "_commit_timestamp")
            .cache()
        )
        changes.count()
    except Exception as error:  # noqa: BLE001 - any failure to read the feed means: rebuild in full
        log.info("bronze: changes after version %s cannot be read (%s); reading bronze in full", after, str(error).splitlines()[0])
        return None
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
