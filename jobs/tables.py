"""The project's own Delta tables (bronze, quarantine, ledger, publication log) and the few I/O helpers
every job uses. Writes go through SQL (`MERGE INTO delta.`path``) so they also work over Spark Connect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from jobs import storage


@dataclass(frozen=True)
class TableSpec:
    layer: str
    name: str
    ddl: str  # column list, Spark DDL
    # Delta properties: writer/reader features stay within what delta-rs and BI connectors read.
    properties: tuple[tuple[str, str], ...] = ()

    def path(self, warehouse: str) -> str:
        return f"{warehouse.rstrip('/')}/{self.layer}/{self.name}"


BRONZE_EVENTS = TableSpec(
    "bronze",
    "events",
    "event_id STRING NOT NULL, tenant_id STRING NOT NULL, stream_id STRING NOT NULL, stream_type STRING NOT NULL, "
    "stream_version BIGINT NOT NULL, global_position BIGINT NOT NULL, event_type STRING NOT NULL, "
    "schema_version INT NOT NULL, occurred_at TIMESTAMP NOT NULL, recorded_at TIMESTAMP NOT NULL, "
    "data STRING NOT NULL, metadata STRING NOT NULL, content_sha256 STRING NOT NULL, "
    "source_file STRING NOT NULL, source_line BIGINT NOT NULL, landing_run_id STRING NOT NULL, "
    "landed_at TIMESTAMP NOT NULL",
    # The change data feed lets builds read only what landed since they last ran (jobs/incremental.py).
    (("delta.appendOnly", "false"), ("delta.enableChangeDataFeed", "true")),
)

QUARANTINE = TableSpec(
    "bronze",
    "quarantine",
    "source_file STRING NOT NULL, line_number BIGINT NOT NULL, reason STRING NOT NULL, raw_text STRING, "
    "event_id STRING, landing_run_id STRING NOT NULL, quarantined_at TIMESTAMP NOT NULL",
)

LANDING_LEDGER = TableSpec(
    "meta",
    "landing_ledger",
    "landing_run_id STRING NOT NULL, source STRING NOT NULL, source_file STRING NOT NULL, lines_read BIGINT NOT NULL, "
    "landed BIGINT NOT NULL, duplicates BIGINT NOT NULL, quarantined BIGINT NOT NULL, "
    "conflicting_duplicates BIGINT NOT NULL, unknown_event_types BIGINT NOT NULL, file_error STRING, "
    "landed_at TIMESTAMP NOT NULL",
)

PUBLICATIONS = TableSpec(
    "meta",
    "publications",
    "mart STRING NOT NULL, contract_version STRING NOT NULL, table_path STRING NOT NULL, "
    "table_version BIGINT NOT NULL, run_id STRING NOT NULL, event_watermark TIMESTAMP, "
    "row_count BIGINT NOT NULL, validation_result STRING NOT NULL, action STRING NOT NULL, "
    "published_at TIMESTAMP NOT NULL, "
    # Added with major versions and rollback (jobs/publications.py adds them to an older log):
    # the SQL name of the published table, the end of support of a superseded major, and the
    # table version a rollback restored.
    "sql_name STRING, supported_until TIMESTAMP, restored_version BIGINT",
)

# What each run built: the bronze version and catalog each mart reflects, so the next build restates
# only what landed after the published one (jobs/pipeline.py).
BUILDS = TableSpec(
    "meta",
    "builds",
    "run_id STRING NOT NULL, mart STRING NOT NULL, bronze_version BIGINT NOT NULL, catalog STRING NOT NULL, "
    "contract_version STRING NOT NULL, mode STRING NOT NULL, restated_units BIGINT, row_count BIGINT NOT NULL, "
    "event_watermark TIMESTAMP, built_at TIMESTAMP NOT NULL",
)


# How far each silver table has read bronze, recorded after the build's writes committed, so that a
# table with nothing new moves on too (jobs/incremental.py). `writing_to`: the bronze version a build
# was writing the table up to when it recorded this row, until it finished; `bronze_rows`: bronze's
# row count at `bronze_version`, to tell that nothing landed across versions maintenance cleaned up;
# `event_watermark`: the largest occurred_at in bronze at `bronze_version` (ISO 8601, UTC), which the
# next build moves on from the events landed since, instead of reading all of bronze.
SILVER_FRONTIERS = TableSpec(
    "meta",
    "silver_frontiers",
    "silver_table STRING NOT NULL, bronze_version BIGINT NOT NULL, catalog STRING NOT NULL, bronze_rows BIGINT, "
    "event_watermark STRING, writing_to BIGINT, recorded_at TIMESTAMP NOT NULL",
)


def quoted_path(path: str) -> str:
    return "delta.`" + path.replace("`", "``") + "`"


def ensure_table(spark: SparkSession, spec: TableSpec, warehouse: str) -> str:
    """Create the table if it does not exist yet; return its path."""
    path = spec.path(warehouse)
    properties = ""
    if spec.properties:
        properties = " TBLPROPERTIES (" + ", ".join(f"'{k}' = '{v}'" for k, v in spec.properties) + ")"
    spark.sql(f"CREATE TABLE IF NOT EXISTS {quoted_path(path)} ({spec.ddl}) USING DELTA{properties}")
    return path


def read_table(spark: SparkSession, spec: TableSpec, warehouse: str) -> DataFrame:
    return spark.read.format("delta").load(ensure_table(spark, spec, warehouse))


def insert_new(spark: SparkSession, rows: DataFrame, path: str, keys: tuple[str, ...]) -> None:
    """Insert the rows whose key is not in the table yet, in one commit (idempotent on rerun)."""
    view = f"_insert_new_{abs(hash((path, keys)))}"
    rows.createOrReplaceTempView(view)
    condition = " AND ".join(f"t.`{key}` <=> s.`{key}`" for key in keys)
    spark.sql(f"MERGE INTO {quoted_path(path)} t USING {view} s ON {condition} WHEN NOT MATCHED THEN INSERT *")
    spark.catalog.dropTempView(view)


def upsert(spark: SparkSession, rows: DataFrame, path: str, keys: tuple[str, ...]) -> None:
    """Insert the rows, replacing those with the same key, in one commit."""
    view = f"_upsert_{abs(hash((path, keys)))}"
    rows.createOrReplaceTempView(view)
    condition = " AND ".join(f"t.`{key}` <=> s.`{key}`" for key in keys)
    spark.sql(
        f"MERGE INTO {quoted_path(path)} t USING {view} s ON {condition} "
        "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
    spark.catalog.dropTempView(view)


def latest_version(spark: SparkSession, path: str) -> int:
    """The Delta table's latest version, from its transaction log on the JVM: a few milliseconds, where
    `DESCRIBE HISTORY` is a query of about 0.3 s (a hundred of them in an hourly run). Over Spark
    Connect, where the JVM is not reachable, it is that query."""
    jvm = getattr(spark, "_jvm", None)
    if jvm is None:
        return _last_commit(spark, path)["version"]
    log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
    # update(stalenessAcceptable, checkIfUpdatedSinceTs, catalogTableOpt): the newest commit on storage.
    version = log.update(False, jvm.scala.Option.empty(), jvm.scala.Option.empty()).version()
    if version < 0:
        raise FileNotFoundError(f"no Delta table at {path}")
    return version


def _last_commit(spark: SparkSession, path: str):
    return spark.sql(f"DESCRIBE HISTORY {quoted_path(path)} LIMIT 1").collect()[0]


def commit_metrics(spark: SparkSession, path: str, version: int) -> dict[str, str]:
    """The operation metrics Delta recorded in the table's commit `version` (its commitInfo)."""
    if getattr(spark, "_jvm", None) is None:
        history = spark.sql(f"DESCRIBE HISTORY {quoted_path(path)}").filter(f"version = {version}").collect()
        return dict(history[0]["operationMetrics"] or {})
    text = storage.read_text(spark, f"{path.rstrip('/')}/_delta_log/{version:020d}.json")
    for line in text.splitlines():
        action = json.loads(line) if line.strip() else {}
        if "commitInfo" in action:
            return dict(action["commitInfo"].get("operationMetrics") or {})
    return {}


def overwrite(spark: SparkSession, frame: DataFrame, path: str, metadata: str | None = None) -> int:
    """Replace the table's content in one commit; return the rows written (from the commit's metrics).
    `metadata` is recorded as the commit's userMetadata."""
    return write(spark, frame, path, "overwrite", metadata)


def write(spark: SparkSession, frame: DataFrame, path: str, mode: str, metadata: str | None = None) -> int:
    """Overwrite or append in one commit, recording `metadata` as the commit's userMetadata; return
    the rows written (from the commit's metrics; 0 when Delta made no commit)."""
    return commit(spark, frame, path, mode, metadata).rows


@dataclass(frozen=True)
class Commit:
    version: int | None  # None when Delta made no commit (an append of nothing)
    rows: int  # the rows written, from the commit's metrics


def commit(spark: SparkSession, frame: DataFrame, path: str, mode: str, metadata: str | None = None) -> Commit:
    """`write`, returning the table version it committed too (read with its metrics, in one query)."""
    from delta.tables import DeltaTable

    # An overwrite always commits; only an append of nothing may not (then the latest commit is older).
    before = latest_version(spark, path) if mode != "overwrite" and DeltaTable.isDeltaTable(spark, path) else None
    writer = frame.write.format("delta").mode(mode)
    if mode == "overwrite":
        writer = writer.option("overwriteSchema", "true")
    if metadata is not None:
        writer = writer.option("userMetadata", metadata)
    writer.save(path)
    version = latest_version(spark, path)
    if before is not None and version == before:
        return Commit(None, 0)
    return Commit(version, int(commit_metrics(spark, path, version).get("numOutputRows", 0)))
