"""What `status` and the demo print: publications, the landing ledger, and a glance at the marts."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.config import Settings
from jobs.silver import silver_path
from jobs.spark import get_spark
from jobs.tables import BRONZE_EVENTS, LANDING_LEDGER, PUBLICATIONS, read_table

LEDGER_COUNTS = ("lines_read", "landed", "duplicates", "quarantined", "conflicting_duplicates", "unknown_event_types")


def landing_summary(spark: SparkSession, warehouse: str) -> DataFrame:
    """Per source and landing run: the ledger's counts, plus landed events held back from the marts
    (schema versions newer than known, as of the last build)."""
    ledger = read_table(spark, LANDING_LEDGER, warehouse)
    per_run = ledger.groupBy("source", "landing_run_id").agg(
        F.count(F.lit(1)).alias("files"),
        F.min("landed_at").alias("landed_at"),
        *(F.sum(name).alias(name) for name in LEDGER_COUNTS),
    )
    held_back = _held_back_per_run(spark, warehouse, ledger)
    return (
        per_run.join(held_back, on=["source", "landing_run_id"], how="left")
        .withColumn("held_back", F.coalesce("held_back", F.lit(0)))
        .orderBy("landed_at", "source")
    )


def _held_back_per_run(spark: SparkSession, warehouse: str, ledger: DataFrame) -> DataFrame:
    from delta.tables import DeltaTable

    path = silver_path(warehouse, "held_back")
    if not DeltaTable.isDeltaTable(spark, path):  # no build has run yet
        return spark.createDataFrame([], "source string, landing_run_id string, held_back long")
    bronze = read_table(spark, BRONZE_EVENTS, warehouse).select("event_id", "source_file", "landing_run_id")
    files = ledger.select("source_file", "source")
    return (
        spark.read.format("delta").load(path).select("event_id")
        .join(bronze, on="event_id", how="inner")
        .join(files, on="source_file", how="inner")
        .groupBy("source", "landing_run_id")
        .agg(F.count(F.lit(1)).alias("held_back"))
    )


def print_status(settings: Settings) -> None:
    spark = get_spark(settings)
    print(f"warehouse: {settings.warehouse}\n")
    print("Latest publication per mart:")
    publications = read_table(spark, PUBLICATIONS, settings.warehouse)
    latest = publications.groupBy("mart").agg(F.max("published_at").alias("published_at"))
    publications.join(latest, on=["mart", "published_at"], how="inner").select(
        "mart", "contract_version", "table_version", "row_count", "event_watermark", "run_id", "action", "published_at"
    ).orderBy("mart").show(truncate=False)
    print("Landing per source and run (lines read = landed + duplicates + quarantined; conflicting duplicates")
    print("are part of quarantined; unknown types and held back are landed but not projected into the marts):")
    landing_summary(spark, settings.warehouse).show(100, truncate=False)


def print_demo_summary(settings: Settings) -> None:
    spark = get_spark(settings)
    publications = read_table(spark, PUBLICATIONS, settings.warehouse)
    print("\nPublished marts (Delta tables):")
    for row in publications.groupBy("mart").agg(F.max_by("row_count", "published_at").alias("rows")).orderBy("mart").collect():
        print(f"  {settings.table_path('gold', row['mart'])}: {row['rows']} rows")
    basket = spark.read.format("delta").load(settings.table_path("gold", "basket_daily"))
    print("\nAverage basket per acquisition channel (valid orders, net of discounts):")
    basket.groupBy("tenant_id", "channel_source", "currency").agg(
        F.sum("valid_orders").alias("valid_orders"),
        F.round(F.sum("net_cents") / F.sum("valid_orders") / 100, 2).alias("avg_basket"),
    ).orderBy("tenant_id", F.desc("valid_orders")).show(50, truncate=False)
    print(f"Look at a mart: .venv/bin/python -m jobs status --warehouse {settings.warehouse}")
