"""One row per tenant, order date, channel source, order source and currency: the average basket."""

from __future__ import annotations

from typing import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.marts.contract import BuildContext, MartContract

CONTRACT = MartContract(
    name="basket_daily",
    version="1.0",
    grain="one row per tenant, order date, channel source and order source (and currency, which a tenant "
    "that changed currency has two of)",
    key=("tenant_id", "order_date", "channel_source", "order_source", "currency"),
    columns=(
        ("tenant_id", "string"),
        ("order_date", "date"),
        ("channel_source", "string"),
        ("order_source", "string"),
        ("currency", "string"),
        ("valid_orders", "bigint"),
        ("revenue_cents", "bigint"),
        ("net_cents", "bigint"),
        ("discount_cents", "bigint"),
        # Exact means, not rounded: rounding half-up belongs to whoever stores them as integers.
        ("avg_basket_cents", "double"),
        ("avg_units_per_order", "double"),
    ),
    nullable=("channel_source",),
)

INPUTS = ("orders",)


def build(sources: Mapping[str, DataFrame], context: BuildContext) -> DataFrame:
    """Valid orders only; a group without a valid order has no row."""
    daily = (
        sources["orders"]
        .filter(F.col("is_valid"))
        .groupBy("tenant_id", "order_date", "channel_source", "order_source", "currency")
        .agg(
            F.count(F.lit(1)).alias("valid_orders"),
            F.sum("revenue_cents").alias("revenue_cents"),
            F.sum("net_cents").alias("net_cents"),
            F.sum("discount_cents").alias("discount_cents"),
            # Refunds do not lower the average basket: it is the mean net amount.
            F.avg("net_cents").alias("avg_basket_cents"),
            F.avg("units").alias("avg_units_per_order"),
        )
    )
    return CONTRACT.conform(daily)
