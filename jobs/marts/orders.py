"""One row per order: its state rebuilt from the order stream, its channel and its customer."""

from __future__ import annotations

from typing import Mapping

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.marts.contract import BuildContext, MartContract
from jobs.marts.restate import Changes, Restatement, Sources, changed, keyed, keyed_union, narrowed, semi
from jobs.marts.sessions import known_sessions
from jobs.marts.streams import first_in_stream

CONTRACT = MartContract(
    name="orders",
    version="1.0",
    grain="one row per tenant and order",
    key=("tenant_id", "order_id"),
    columns=(
        ("tenant_id", "string"),
        ("order_id", "string"),
        ("customer_id", "string"),
        ("cart_id", "string"),
        ("session_id", "string"),
        ("created_at", "timestamp"),
        ("order_date", "date"),
        ("order_source", "string"),
        ("status", "string"),
        ("is_valid", "boolean"),
        ("is_first_valid_order", "boolean"),
        ("currency", "string"),
        ("gross_cents", "bigint"),
        ("discount_cents", "bigint"),
        ("net_cents", "bigint"),
        ("refunded_cents", "bigint"),
        ("revenue_cents", "bigint"),
        ("items_count", "int"),
        ("units", "bigint"),
        ("channel_source", "string"),
        ("channel_medium", "string"),
        ("channel_campaign", "string"),
    ),
    nullable=("customer_id", "cart_id", "session_id", "channel_source", "channel_medium", "channel_campaign"),
)

INPUTS = (
    "OrderCreated",
    "PromotionApplied",
    "OrderConfirmed",
    "PaymentCaptured",
    "OrderShipped",
    "OrderDelivered",
    "OrderCancelled",
    "OrderRefunded",
    "SessionStarted",
)

# The order lifecycle, furthest last; cancelled and refunded override it (see with_status).
_PROGRESS = ("created", "confirmed", "paid", "shipped", "delivered")
_STEP_EVENTS = {"confirmed": "OrderConfirmed", "paid": "PaymentCaptured", "shipped": "OrderShipped", "delivered": "OrderDelivered"}


def build(sources: Mapping[str, DataFrame], context: BuildContext) -> DataFrame:
    created = first_order_created(sources["OrderCreated"])
    facts = order_facts(sources)
    orders = (
        created.join(facts, on=["tenant_id", "order_id"], how="left")
        .transform(with_amounts)
        .transform(with_status)
        .transform(with_validity)
        .join(session_channels(sources["SessionStarted"]), on=["tenant_id", "session_id"], how="left")
        .transform(with_channel)
        .transform(with_first_valid_order)
    )
    return CONTRACT.conform(orders)


def first_order_created(order_created: DataFrame) -> DataFrame:
    """The OrderCreated that opens each order stream (the lowest stream_version)."""
    return (
        first_in_stream(order_created, "tenant_id", "order_id")
        .select(
            "tenant_id",
            "order_id",
            "customer_id",
            "cart_id",
            "session_id",
            F.col("occurred_at").alias("created_at"),
            F.to_date("occurred_at").alias("order_date"),
            F.coalesce("order_source", F.lit("unknown")).alias("order_source"),
            "currency",
            F.col("total_cents").alias("gross_cents"),
            F.size("items").alias("items_count"),
            F.aggregate("items", F.lit(0).cast("bigint"), lambda units, item: units + item["quantity"]).alias("units"),
        )
    )


def order_facts(sources: Mapping[str, DataFrame]) -> DataFrame:
    """Per order: summed discounts and refunds, and which lifecycle events happened."""
    keys = ["tenant_id", "order_id"]
    discounts = sources["PromotionApplied"].groupBy(*keys).agg(F.sum("discount_cents").alias("discount_cents"))
    refunds = sources["OrderRefunded"].groupBy(*keys).agg(
        F.sum("amount_cents").alias("refunded_cents"), F.lit(True).alias("has_refund")
    )
    flags = [
        sources[event_name].select(*keys).distinct().withColumn(f"has_{step}", F.lit(True))
        for step, event_name in {**_STEP_EVENTS, "cancelled": "OrderCancelled"}.items()
    ]
    facts = discounts.join(refunds, on=keys, how="full")
    for flag in flags:
        facts = facts.join(flag, on=keys, how="full")
    return facts


def with_amounts(orders: DataFrame) -> DataFrame:
    return (
        orders.withColumn("discount_cents", F.coalesce("discount_cents", F.lit(0)))
        .withColumn("refunded_cents", F.coalesce("refunded_cents", F.lit(0)))
        .withColumn("net_cents", F.col("gross_cents") - F.col("discount_cents"))
    )


def with_status(orders: DataFrame) -> DataFrame:
    """Furthest lifecycle step, overridden by cancelled, and by refunded (at least one refund that
    reaches the net amount). A fully refunded order reads `refunded` even if it was also cancelled:
    the money went back, which is the last word on it."""
    furthest: Column = F.lit("created")
    for step in _PROGRESS[1:]:
        furthest = F.when(_flag(f"has_{step}"), F.lit(step)).otherwise(furthest)
    status = (
        F.when(_flag("has_refund") & (F.col("refunded_cents") >= F.col("net_cents")), F.lit("refunded"))
        .when(_flag("has_cancelled"), F.lit("cancelled"))
        .otherwise(furthest)
    )
    return orders.withColumn("status", status)


def with_validity(orders: DataFrame) -> DataFrame:
    """Valid: confirmed and never cancelled. Only valid orders carry revenue (net - refunded)."""
    is_valid = _flag("has_confirmed") & ~_flag("has_cancelled")
    return orders.withColumn("is_valid", is_valid).withColumn(
        "revenue_cents", F.when(is_valid, F.col("net_cents") - F.col("refunded_cents")).otherwise(F.lit(0))
    )


def session_channels(session_started: DataFrame) -> DataFrame:
    return known_sessions(session_started).select(
        "tenant_id", "session_id", F.lit(True).alias("_session_known"), "source", "medium", "campaign"
    )


def with_channel(orders: DataFrame) -> DataFrame:
    """Last touch: the channel of the order's session; `unknown` without a known session."""
    known = _flag("_session_known")
    return (
        orders.withColumn("channel_source", F.when(known, F.col("source")).otherwise(F.lit("unknown")))
        .withColumn("channel_medium", F.when(known, F.col("medium")).otherwise(F.lit("unknown")))
        .withColumn("channel_campaign", F.when(known, F.col("campaign")))
    )


def with_first_valid_order(orders: DataFrame) -> DataFrame:
    """The customer's earliest valid order by creation time (ties: order id)."""
    earliest = Window.partitionBy("tenant_id", "customer_id").orderBy(
        F.col("is_valid").desc(), "created_at", "order_id"
    )
    is_first = F.col("is_valid") & F.col("customer_id").isNotNull() & (F.row_number().over(earliest) == 1)
    return orders.withColumn("is_first_valid_order", is_first)


def _flag(name: str) -> Column:
    return F.coalesce(F.col(name), F.lit(False))


def _touched(changes: Changes, published: DataFrame) -> DataFrame:
    """Orders with a new event; orders whose session got a SessionStarted (their channel); and, since
    is_first_valid_order compares a customer's orders, every order of those orders' customers."""
    created = changes.sources["OrderCreated"]
    new_sessions = keyed(changes.events["SessionStarted"], "tenant_id", "session_id")
    direct = keyed_union(
        [changes.events[name].select("tenant_id", "order_id") for name in _ORDER_EVENTS]
        + [semi(created, new_sessions).select("tenant_id", "order_id")]
    )
    customers = keyed(semi(created, direct), "tenant_id", "customer_id")
    return keyed_union([direct, semi(created, customers).select("tenant_id", "order_id")])


def _narrow(sources: Sources, orders: DataFrame) -> Sources:
    kept = {name: narrowed(sources[name], orders) for name in _ORDER_EVENTS}
    sessions = keyed(kept["OrderCreated"], "tenant_id", "session_id")
    return {**kept, "SessionStarted": narrowed(sources["SessionStarted"], sessions)}


def changed_orders(changes: Changes, columns: tuple[str, ...]) -> DataFrame:
    """The restated orders whose `columns` changed, before and after (key and `columns`): what touches
    a mart that reads only those columns of `orders` (restate.changed)."""
    return changed(changes.marts["orders"], CONTRACT.key, columns)


_ORDER_EVENTS = tuple(name for name in INPUTS if name != "SessionStarted")
RESTATE = Restatement(unit=("tenant_id", "order_id"), touched=_touched, narrow=_narrow)
