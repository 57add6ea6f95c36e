"""Which published tables exist, and under which SQL name: read from the publication log.

This is the one place that answers it, for the SQL endpoint and for extracts. A mart published as
`<warehouse>/gold/<name>` is exposed as `marts.<name>`: `orders` today, and `orders_v2` beside it once
a major version of the contract is published to `gold/orders_v2`, `orders` staying until the end of
its support (`publication.major_version_support_days`). Only tables under `gold/` that the log names
are exposed: staging, replays, bronze and silver never are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from pyspark.sql import SparkSession
from pyspark.sql import Window
from pyspark.sql import functions as F

from jobs.config import Settings
from jobs.tables import PUBLICATIONS


@dataclass(frozen=True)
class PublishedTable:
    sql_name: str  # the table's name in the endpoint's `marts` database and in extract file names
    mart: str
    contract_version: str
    table_path: str
    table_version: int  # the Delta version of the latest publication
    run_id: str
    event_watermark: datetime | None
    published_at: datetime


# The table's name is its folder under gold/; staging/<run>/<mart> and replays/<as_of>/<mart> never match.
GOLD_NAME_PATTERN = r"/gold/([^/]+)/?$"


def published_tables(spark: SparkSession, settings: Settings, now: datetime | None = None) -> list[PublishedTable]:
    """The latest publication of every table under `<warehouse>/gold/`, by SQL name; an older major
    version whose support ended before `now` (default: the current time) is left out.

    The location is this warehouse's `gold/<name>`, whatever path the log recorded, so a warehouse
    that moved (another disk, object storage) is still served from where it is now.
    """
    log = _gold_publications(spark, settings)
    if log is None:
        return []
    now = now or datetime.now(timezone.utc)
    ended = (
        _publication_log(spark, settings)
        .filter((F.col("action") == "end_of_support") & (F.col("supported_until") < F.lit(now)))
        .select(F.regexp_extract("table_path", GOLD_NAME_PATTERN, 1).alias("sql_name"))
    )
    latest = Window.partitionBy("sql_name").orderBy(F.col("published_at").desc(), F.col("table_version").desc())
    current = log.join(ended, on="sql_name", how="left_anti")
    rows = current.withColumn("_rank", F.row_number().over(latest)).filter(F.col("_rank") == 1).orderBy("sql_name").collect()
    return [
        PublishedTable(
            sql_name=row["sql_name"],
            mart=row["mart"],
            contract_version=row["contract_version"],
            table_path=settings.table_path("gold", row["sql_name"]),
            table_version=row["table_version"],
            run_id=row["run_id"],
            event_watermark=row["event_watermark"],
            published_at=row["published_at"],
        )
        for row in rows
    ]


def publication_versions(spark: SparkSession, settings: Settings, sql_name: str) -> list[int]:
    """Every Delta version of a gold table that the log records as published, oldest first."""
    log = _gold_publications(spark, settings)
    if log is None:
        return []
    versions = log.filter(F.col("sql_name") == sql_name).select("table_version").distinct().collect()
    return sorted(row["table_version"] for row in versions)


def _gold_publications(spark: SparkSession, settings: Settings):
    log = _publication_log(spark, settings)
    if log is None:
        return None
    # Publications and rollbacks put a version in front of readers; an end_of_support row does not.
    published = log.filter(F.col("action").isin("publish", "rollback")).drop("sql_name")
    named = published.withColumn("sql_name", F.regexp_extract("table_path", GOLD_NAME_PATTERN, 1))
    return named.filter(F.col("sql_name") != "")


def _publication_log(spark: SparkSession, settings: Settings):
    """The log as a DataFrame, None before the first publication (read by path, never created here)."""
    from delta.tables import DeltaTable

    path = PUBLICATIONS.path(settings.warehouse)
    if not DeltaTable.isDeltaTable(spark, path):
        return None
    return spark.read.format("delta").load(path)
