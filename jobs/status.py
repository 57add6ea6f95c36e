"""What `status` and the demo print: publications, the landing ledger, and a glance at the marts."""

from __future__ import annotations

from pyspark.sql import functions as F

from jobs.config import Settings
from jobs.spark import get_spark
from jobs.tables import LANDING_LEDGER, PUBLICATIONS, read_table


def print_status(settings: Settings) -> None:
    spark = get_spark(settings)
    print(f"warehouse: {settings.warehouse}\n")
    print("Latest publication per mart:")
    publications = read_table(spark, PUBLICATIONS, settings.warehouse)
    latest = publications.groupBy("mart").agg(F.max("published_at").alias("published_at"))
    publications.join(latest, on=["mart", "published_at"], how="inner").select(
        "mart", "contract_version", "table_version", "row_count", "event_watermark", "run_id", "action", "published_at"
    ).orderBy("mart").show(truncate=False)
    print("Landing ledger per run (lines read = landed + duplicates + quarantined):")
    read_table(spark, LANDING_LEDGER, settings.warehouse).groupBy("landing_run_id").agg(
        F.count(F.lit(1)).alias("files"),
        F.min("landed_at").alias("landed_at"),
        *(F.sum(name).alias(name) for name in ("lines_read", "landed", "duplicates", "quarantined", "conflicting_duplicates", "unknown_event_types")),
    ).orderBy("landed_at").show(truncate=False)


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
