"""One row per tenant and UTC date of the cart's first CartItemAdded: what became of carts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Mapping

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.marts.contract import BuildContext, MartContract
from jobs.marts.restate import (
    Changes, Restatement, Sources, event_dates, keyed, keyed_union, narrowed, on_dates, semi, union_all,
)
from jobs.marts.currency import count_if, other_currency, precedence, sum_if, with_row_currency
from jobs.marts.streams import first_in_stream

CONTRACT = MartContract(
    name="cart_abandonment_daily",
    version="1.0",
    grain="one row per tenant and UTC date of the cart's first CartItemAdded",
    key=("tenant_id", "cart_date"),
    columns=(
        ("tenant_id", "string"),
        ("cart_date", "date"),
        # The currency of abandoned_value_cents (jobs/marts/currency.py): that of the latest cart's
        # first add.
        ("currency", "string"),
        ("carts", "bigint"),
        ("converted", "bigint"),
        ("abandoned", "bigint"),
        ("open", "bigint"),
        # abandoned / (abandoned + converted); null when both are 0 (open carts only).
        ("abandonment_rate", "double"),
        # The unit prices of the abandoned carts' adds, added as recorded.
        ("abandoned_value_cents", "bigint"),
        # Abandoned carts priced in another currency than `currency` (still added, as recorded):
        # non-zero only for a tenant that switched currency.
        ("amounts_in_other_currencies", "bigint"),
    ),
    nullable=("abandonment_rate",),
)

INPUTS = ("CartItemAdded", "CartItemRemoved", "OrderCreated")

# A cart untouched for strictly longer than this before the as-of time, and not converted, is abandoned.
ABANDONED_AFTER = timedelta(hours=24)

_CART = ["tenant_id", "cart_id"]  # cart ids repeat across tenants: a cart is per tenant
_DAY = ["tenant_id", "cart_date"]


def build(sources: Mapping[str, DataFrame], context: BuildContext) -> DataFrame:
    carts = cart_outcomes(sources, context).withColumn(
        "_precedence", precedence(0, F.col("first_added_at"), F.col("cart_id"))
    )
    abandoned = F.col("outcome") == "abandoned"
    daily = (
        with_row_currency(carts, _DAY)
        .groupBy(*_DAY)
        .agg(
            F.first("row_currency").alias("currency"),
            F.count(F.lit(1)).alias("carts"),
            count_if(F.col("outcome") == "converted").alias("converted"),
            count_if(F.col("outcome") == "abandoned").alias("abandoned"),
            count_if(F.col("outcome") == "open").alias("open"),
            sum_if(abandoned, "value_cents").alias("abandoned_value_cents"),
            count_if(abandoned & other_currency()).alias("amounts_in_other_currencies"),
        )
        .withColumn("abandonment_rate", abandonment_rate(F.col("abandoned"), F.col("converted")))
    )
    return CONTRACT.conform(daily)


def cart_outcomes(sources: Mapping[str, DataFrame], context: BuildContext) -> DataFrame:
    """One row per tenant and cart: its date, currency, last event time, outcome and value left in it.

    Only carts with a CartItemAdded exist here: the date of a cart is that of its first add, so a
    cart whose adds are all unknown (only removals seen) has no date and is not counted.
    """
    adds = sources["CartItemAdded"]
    removes = sources["CartItemRemoved"]
    return (
        first_adds(adds)
        .join(last_cart_events(adds, removes), on=_CART, how="inner")
        .join(converted_carts(sources["OrderCreated"]), on=_CART, how="left")
        .join(cart_values(adds, removes), on=_CART, how="left")
        .transform(lambda carts: with_outcome(carts, context))
        .select(*_CART, "cart_date", "first_added_at", "currency", "last_event_at", "outcome", "value_cents")
    )


def first_adds(adds: DataFrame) -> DataFrame:
    """The cart's first CartItemAdded by stream_version (never by occurred_at): its date and currency.

    A cart whose adds mix currencies (only across a tenant's switch from v1, always EUR, to v2 in its
    own currency) is counted under the currency of its first add.
    """
    return first_in_stream(adds, *_CART).select(
        *_CART, F.to_date("occurred_at").alias("cart_date"), F.col("occurred_at").alias("first_added_at"), "currency"
    )


def last_cart_events(adds: DataFrame, removes: DataFrame) -> DataFrame:
    """When the cart's last event (add or removal, last by stream_version) occurred."""
    events = _cart_events(adds).unionByName(_cart_events(removes))
    last = Window.partitionBy(*_CART).orderBy(F.col("stream_version").desc(), F.col("global_position").desc())
    return (
        events.withColumn("_rank", F.row_number().over(last))
        .filter(F.col("_rank") == 1)
        .select(*_CART, F.col("occurred_at").alias("last_event_at"))
    )


def converted_carts(order_created: DataFrame) -> DataFrame:
    """Carts named by any OrderCreated of the same tenant: whenever it was created (also more than
    24 hours after the cart's last event) and whether or not the order turned out valid."""
    return (
        order_created.filter(F.col("cart_id").isNotNull())
        .select(*_CART)
        .distinct()
        .withColumn("is_converted", F.lit(True))
    )


def cart_values(adds: DataFrame, removes: DataFrame) -> DataFrame:
    """Value left in each cart: per product, quantity added minus removed (never below zero) at the
    unit price of the product's latest add (by stream_version), summed over its products.

    A product removed but never added has no price and nothing left: it adds nothing. Prices are summed
    as recorded; a cart mixing currencies (see first_adds) is not converted into one.
    """
    product = [*_CART, "product_id"]
    added = adds.groupBy(*product).agg(
        F.sum("quantity").alias("added"),
        F.max_by("unit_price_cents", F.struct("stream_version", "global_position")).alias("unit_price_cents"),
    )
    removed = removes.groupBy(*product).agg(F.sum("quantity").alias("removed"))
    left = F.greatest(F.col("added") - F.coalesce(F.col("removed"), F.lit(0)), F.lit(0))
    return (
        added.join(removed, on=product, how="left")
        .groupBy(*_CART)
        .agg(F.sum(left * F.col("unit_price_cents")).alias("value_cents"))
    )


def with_outcome(carts: DataFrame, context: BuildContext) -> DataFrame:
    """converted, else abandoned when the last event is strictly more than 24 h before as-of, else open.

    Exactly 24 hours is still open. A cart emptied by removals is still a cart: abandoned, with
    nothing left, once untouched for 24 hours. Events after the as-of time never reach a mart (the
    pipeline filters them), so they are not filtered again here.
    """
    abandoned_before = F.lit(_utc(context) - ABANDONED_AFTER)
    outcome = (
        F.when(F.coalesce(F.col("is_converted"), F.lit(False)), F.lit("converted"))
        .when(F.col("last_event_at") < abandoned_before, F.lit("abandoned"))
        .otherwise(F.lit("open"))
    )
    return carts.withColumn("outcome", outcome).withColumn("value_cents", F.coalesce("value_cents", F.lit(0)))


def abandonment_rate(abandoned: Column, converted: Column) -> Column:
    """abandoned / (abandoned + converted); null when neither (open carts do not enter the rate)."""
    decided = abandoned + converted
    return F.when(decided > 0, abandoned / decided)


def _cart_events(events: DataFrame) -> DataFrame:
    return events.select(*_CART, "stream_version", "global_position", "occurred_at")



def _utc(context: BuildContext) -> datetime:
    """The as-of time as an aware UTC datetime; a naive one is read as UTC (BuildContext says so)."""
    as_of = context.as_of
    return as_of.replace(tzinfo=timezone.utc) if as_of.tzinfo is None else as_of.astimezone(timezone.utc)


def _touched(changes: Changes, published: DataFrame) -> DataFrame:
    """The dates of any add of a cart with a new event (a late add may become its first), and every
    date with an open cart: as the as-of time moves on, open carts become abandoned."""
    carts = keyed_union([changes.events[name].select(*_CART) for name in INPUTS])
    adds = semi(changes.sources["CartItemAdded"], carts)
    still_open = published.filter(F.col("open") > 0).select(*_DAY)
    return union_all([event_dates(adds, "cart_date"), still_open])


def _narrow(sources: Sources, days: DataFrame) -> Sources:
    """Whole carts: those with an add on one of the days (their first add may be on it)."""
    carts = keyed(on_dates(sources["CartItemAdded"], days, "cart_date"), *_CART)
    return {name: narrowed(sources[name], carts) for name in INPUTS}


RESTATE = Restatement(unit=tuple(_DAY), touched=_touched, narrow=_narrow)
