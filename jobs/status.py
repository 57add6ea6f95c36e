"""What `status` and the demo print: publications, the landing ledger, and a glance at the marts."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.config import Settings
from jobs.silver import silver_path
from jobs.spark import get_spark
from jobs.tables import BRONZE_EVENTS, LANDING_LEDGER, read_table

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
    print_publications(spark, settings.warehouse)
    print("Landing per source and run (lines read = landed + duplicates + quarantined; conflicting duplicates")
    print("are part of quarantined; unknown types and held back are landed but not projected into the marts):")
    landing_summary(spark, settings.warehouse).show(100, truncate=False)
    from jobs.privacy.cli import print_erasures

    print_erasures(spark, settings.warehouse)


def print_publications(spark: SparkSession, warehouse: str) -> None:
    """Per published table, its latest log row (publish, rollback or end_of_support); every rollback."""
    from jobs.publications import ROLLBACK, read_log

    log = read_log(spark, warehouse)
    latest = log.groupBy("table_path").agg(F.max_by(F.struct(*log.columns), "published_at").alias("row")).select("row.*")
    print("Published tables (the latest log entry of each; supported_until: end of support of a superseded major):")
    latest.select(
        "mart", "sql_name", "contract_version", "table_version", "action", "row_count", "event_watermark", "run_id",
        "published_at", "supported_until",
    ).orderBy("mart", "sql_name").show(100, truncate=False)
    print("Rollbacks (restored_version: the publication restored, as table_version; run_id: the run it came from):")
    log.filter(F.col("action") == ROLLBACK).select(
        "mart", "sql_name", "restored_version", "table_version", "run_id", "row_count", "published_at"
    ).orderBy("published_at").show(100, truncate=False)


def _orders_headline(orders: DataFrame) -> str:
    row = orders.agg(F.count(F.lit(1)).alias("orders"), F.sum(F.col("is_valid").cast("int")).alias("valid")).first()
    return f"{row['valid']} of {row['orders']} orders valid"


def _carts_headline(carts: DataFrame) -> str:
    row = carts.agg(*(F.sum(name).alias(name) for name in ("carts", "converted", "abandoned", "open"))).first()
    return f"{row['carts']} carts: {row['converted']} converted, {row['abandoned']} abandoned, {row['open']} open"


def _products_headline(products: DataFrame) -> str:
    row = products.agg(F.sum("views").alias("views"), F.sum("adds_to_cart").alias("adds"), F.sum("units_sold").alias("units")).first()
    return f"{row['views']} views, {row['adds']} adds to cart, {row['units']} units sold"


def _funnel_headline(funnel: DataFrame) -> str:
    steps = ("sessions", "sessions_with_view", "with_add_to_cart", "with_order", "with_valid_order")
    row = funnel.agg(*(F.sum(name).alias(name) for name in steps)).first()
    return " > ".join(f"{row[name]} {name.replace('sessions_', '').replace('_', ' ')}" for name in steps)


def _basket_headline(basket: DataFrame) -> str:
    return f"{basket.select('tenant_id', 'order_date').distinct().count()} tenant-days with valid orders"


def _customers_headline(customers: DataFrame) -> str:
    row = customers.agg(
        F.count(F.lit(1)).alias("customers"),
        F.sum((F.col("valid_orders") > 0).cast("int")).alias("buyers"),
        F.sum((F.col("valid_orders_90d") > 5).cast("int")).alias("frequent"),
    ).first()
    return f"{row['customers']} customers, {row['buyers']} with a valid order, {row['frequent']} with more than 5 in 90 days"


def _campaigns_headline(campaigns: DataFrame) -> str:
    row = campaigns.agg(
        F.count(F.lit(1)).alias("campaigns"), F.sum("attributed_orders").alias("orders"), F.sum("cost_cents").alias("cost")
    ).first()
    return f"{row['campaigns']} campaigns, {row['orders']} attributed valid orders, {row['cost'] / 100:.2f} spent"


def _kpis_headline(kpis: DataFrame) -> str:
    row = kpis.agg(
        F.sum("sessions").alias("sessions"), F.sum("valid_orders").alias("orders"), F.sum("new_customers").alias("new")
    ).first()
    rate = row["orders"] / row["sessions"] if row["sessions"] else 0.0
    return f"{row['sessions']} sessions, {row['orders']} valid orders ({rate:.1%}), {row['new']} new customers"


def _segments_headline(members: DataFrame) -> str:
    sizes = members.groupBy("segment").count().orderBy("segment").collect()
    return ", ".join(f"{row['segment']}: {row['count']}" for row in sizes) or "no members"


def _experiments_headline(results: DataFrame) -> str:
    significant = results.filter(~F.col("is_control") & (F.col("p_value") < 0.05)).count()
    experiments = results.select("tenant_id", "experiment_id").distinct().count()
    return f"{experiments} experiments, {significant} variants with p < 0.05 against control"


_HEADLINES = {
    "customer_segments": _segments_headline,
    "experiment_results": _experiments_headline,
    "customer_360": _customers_headline,
    "campaign_performance": _campaigns_headline,
    "marketing_kpis_daily": _kpis_headline,
    "orders": _orders_headline,
    "basket_daily": _basket_headline,
    "cart_abandonment_daily": _carts_headline,
    "product_sales_daily": _products_headline,
    "funnel_daily": _funnel_headline,
}


def print_demo_summary(settings: Settings) -> None:
    spark = get_spark(settings)
    from jobs.publications import current_table, read_log

    publications = read_log(spark, settings.warehouse)
    print("\nPublished marts (Delta tables):")
    for row in publications.groupBy("mart").agg(F.max_by("row_count", "published_at").alias("rows")).orderBy("mart").collect():
        path = current_table(settings, row["mart"]).path
        mart = spark.read.format("delta").load(path)
        headline = _HEADLINES.get(row["mart"])
        detail = f" ({headline(mart)})" if headline else ""
        print(f"  {path}: {row['rows']} rows{detail}")
        if "amounts_in_other_currencies" in mart.columns:
            mixed = mart.filter(F.col("amounts_in_other_currencies") > 0).count()
            if mixed:
                print(f"    {mixed} rows add amounts recorded in two currencies (see amounts_in_other_currencies)")
    basket = spark.read.format("delta").load(current_table(settings, "basket_daily").path)
    print("\nAverage basket per acquisition channel (valid orders, net of discounts):")
    basket.groupBy("tenant_id", "channel_source", "currency").agg(
        F.sum("valid_orders").alias("valid_orders"),
        F.round(F.sum("net_cents") / F.sum("valid_orders") / 100, 2).alias("avg_basket"),
    ).orderBy("tenant_id", F.desc("valid_orders")).show(50, truncate=False)
    print(f"Look at a mart: .venv/bin/python -m jobs status --warehouse {settings.warehouse}")
