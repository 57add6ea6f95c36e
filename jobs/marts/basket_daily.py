"""One row per tenant, order date, channel source and order source: the average basket."""

from __future__ import annotations

from typing import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.marts.contract import BuildContext, MartContract
from jobs.marts.orders import changed_orders
from jobs.marts.restate import Changes, Restatement, keyed, narrowed
from jobs.marts.currency import count_if, other_currency, precedence, with_row_currency

CONTRACT = MartContract(
    name="basket_daily",
    version="1.0",
    grain="one row per tenant, order date, channel source and order source",
    key=("tenant_id", "order_date", "channel_source", "order_source"),
    columns=(
        ("tenant_id", "string"),
        ("order_date", "date"),
        ("channel_source", "string"),
        ("order_source", "string"),
        # The currency of the amounts below (jobs/marts/currency.py): the latest valid order's.
        ("currency", "string"),
        ("valid_orders", "bigint"),
        ("revenue_cents", "bigint"),
        ("net_cents", "bigint"),
        ("discount_cents", "bigint"),
        # Exact means, not rounded: rounding half-up belongs to whoever stores them as integers.
        ("avg_basket_cents", "double"),
        ("avg_units_per_order", "double"),
        # Valid orders recorded in another currency than `currency` (still added, as recorded):
        # non-zero only for a tenant that switched currency.
        ("amounts_in_other_currencies", "bigint"),
    ),
    nullable=("channel_source",),
)

INPUTS = ("orders",)

_KEY = list(CONTRACT.key)
# The columns of `orders` that `build` reads besides its key (the mart's key among them): an order
# restated with the same values in all of them leaves its day as it was.
ORDER_COLUMNS = (
    "order_date", "channel_source", "order_source", "is_valid", "created_at", "currency", "revenue_cents", "net_cents",
    "discount_cents", "units",
)


def build(sources: Mapping[str, DataFrame], context: BuildContext) -> DataFrame:
    """Valid orders only; a group without a valid order has no row."""
    valid = sources["orders"].filter(F.col("is_valid")).withColumn(
        "_precedence", precedence(0, F.col("created_at"), F.col("order_id"))
    )
    daily = (
        with_row_currency(valid, _KEY)
        .groupBy(*_KEY)
        .agg(
            F.first("row_currency").alias("currency"),
            F.count(F.lit(1)).alias("valid_orders"),
            F.sum("revenue_cents").alias("revenue_cents"),
            F.sum("net_cents").alias("net_cents"),
            F.sum("discount_cents").alias("discount_cents"),
            # Refunds do not lower the average basket: it is the mean net amount.
            F.avg("net_cents").alias("avg_basket_cents"),
            F.avg("units").alias("avg_units_per_order"),
            count_if(other_currency()).alias("amounts_in_other_currencies"),
        )
    )
    return CONTRACT.conform(daily)


def _touched(changes: Changes, published: DataFrame) -> DataFrame:
    """The dates of every restated order whose columns read here changed, where it was and where it is now."""
    return keyed(changed_orders(changes, ORDER_COLUMNS), "tenant_id", "order_date")


RESTATE = Restatement(
    unit=("tenant_id", "order_date"), touched=_touched, narrow=lambda sources, days: {"orders": narrowed(sources["orders"], days)}
)
