"""One row per tenant, UTC date and product: its views, cart adds and removals, and valid-order sales."""

from __future__ import annotations

from typing import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.marts.contract import BuildContext, MartContract
from jobs.marts.orders import changed_orders
from jobs.marts.restate import Changes, Restatement, Sources, event_dates, keyed, narrowed, on_dates, renamed, semi, union_all
from jobs.marts.currency import count_if, other_currency, precedence, with_row_currency
from jobs.marts.streams import first_in_stream

CONTRACT = MartContract(
    name="product_sales_daily",
    version="1.0",
    grain="one row per tenant, UTC date and product, where something was viewed, added, removed or sold",
    key=("tenant_id", "activity_date", "product_id"),
    columns=(
        ("tenant_id", "string"),
        # Views, adds and removals count on their own UTC date; sales on the order date.
        ("activity_date", "date"),
        ("product_id", "string"),
        ("views", "bigint"),
        ("adds_to_cart", "bigint"),
        ("removes", "bigint"),
        # adds_to_cart / views, null without views; not capped, so it may exceed 1.
        ("view_to_cart_rate", "double"),
        ("units_sold", "bigint"),
        ("revenue_cents", "bigint"),
        # The currency of revenue_cents (jobs/marts/currency.py): the latest sold order's; null on a
        # row without sales.
        ("currency", "string"),
        # Sold item lines recorded in another currency than `currency` (still added, as recorded):
        # non-zero only for a tenant that switched currency (v1, always EUR) within the day.
        ("amounts_in_other_currencies", "bigint"),
    ),
    nullable=("view_to_cart_rate", "currency"),
)

INPUTS = ("ProductViewed", "CartItemAdded", "CartItemRemoved", "OrderCreated", "orders")

_KEY = ["tenant_id", "activity_date", "product_id"]
# The columns of `orders` that `build` reads besides its key (see _touched; items come from OrderCreated).
ORDER_COLUMNS = ("order_date", "is_valid", "created_at", "currency")


def build(sources: Mapping[str, DataFrame], context: BuildContext) -> DataFrame:
    activity = (
        daily_event_counts(sources["ProductViewed"], "views")
        .join(daily_event_counts(sources["CartItemAdded"], "adds_to_cart"), on=_KEY, how="full")
        .join(daily_event_counts(sources["CartItemRemoved"], "removes"), on=_KEY, how="full")
        .join(daily_sales(sources["orders"], sources["OrderCreated"]), on=_KEY, how="full")
    )
    counts = ("views", "adds_to_cart", "removes", "units_sold", "revenue_cents", "amounts_in_other_currencies")
    zero_if_none = {name: 0 for name in counts}
    products = activity.fillna(zero_if_none).withColumn(
        "view_to_cart_rate", F.when(F.col("views") > 0, F.col("adds_to_cart") / F.col("views"))
    )
    return CONTRACT.conform(products)


def daily_event_counts(events: DataFrame, name: str) -> DataFrame:
    """Events per tenant, product and the UTC date each occurred on (not quantities: events)."""
    return (
        events.withColumn("activity_date", F.to_date("occurred_at"))
        .groupBy(*_KEY)
        .agg(F.count(F.lit(1)).alias(name))
    )


def daily_sales(orders: DataFrame, order_created: DataFrame) -> DataFrame:
    """Items of valid orders on the order date, at each item's unit price. Order-level discounts and
    refunds are not spread over products, so revenue here is the items' gross amount."""
    items = (
        orders.filter(F.col("is_valid"))
        .select(
            "tenant_id", "order_id", F.col("order_date").alias("activity_date"), "currency",
            precedence(0, F.col("created_at"), F.col("order_id")),
        )
        .join(order_items(order_created), on=["tenant_id", "order_id"], how="inner")
    )
    return with_row_currency(items, _KEY).groupBy(*_KEY).agg(
        F.sum("quantity").alias("units_sold"),
        F.sum(F.col("quantity") * F.col("unit_price_cents")).alias("revenue_cents"),
        F.first("row_currency").alias("currency"),
        count_if(other_currency()).alias("amounts_in_other_currencies"),
    )


def order_items(order_created: DataFrame) -> DataFrame:
    """The items of each order's first OrderCreated (by stream_version), one row per item line.

    A line without a product_id cannot be put on a product's row and is left out.
    """
    return (
        first_in_stream(order_created, "tenant_id", "order_id")
        .select("tenant_id", "order_id", F.explode("items").alias("item"))
        .select("tenant_id", "order_id", "item.product_id", "item.quantity", "item.unit_price_cents")
        .filter(F.col("product_id").isNotNull())
    )


def _touched(changes: Changes, published: DataFrame) -> DataFrame:
    """The dates of new views, adds and removals; the order dates of restated orders whose columns read
    here changed (before and after), and of orders with a new OrderCreated (its items may be the first)."""
    counted = [event_dates(changes.events[name], "activity_date") for name in _COUNTED]
    created = semi(changes.sources["orders"], keyed(changes.events["OrderCreated"], "tenant_id", "order_id"))
    sold = [
        frame.select("tenant_id", F.col("order_date").alias("activity_date"))
        for frame in (changed_orders(changes, ORDER_COLUMNS), created)
    ]
    return union_all([*counted, *sold])


def _narrow(sources: Sources, days: DataFrame) -> Sources:
    kept = {name: on_dates(sources[name], days, "activity_date") for name in _COUNTED}
    orders = narrowed(sources["orders"], renamed(days, "activity_date", "order_date"))
    return {**kept, "orders": orders, "OrderCreated": narrowed(sources["OrderCreated"], keyed(orders, "tenant_id", "order_id"))}


_COUNTED = ("ProductViewed", "CartItemAdded", "CartItemRemoved")
RESTATE = Restatement(unit=("tenant_id", "activity_date"), touched=_touched, narrow=_narrow)
