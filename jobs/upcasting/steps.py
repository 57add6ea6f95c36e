"""One-step payload upcasters, each `Column -> Column` from the struct of version v to that of v + 1.

Raw events are never migrated: these run on read, when silver is built from bronze. Each step is pure
and tested alone; `jobs.upcasting.chain` composes them.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F


def to_cents(amount: Column) -> Column:
    """Major units (an exact decimal) to the nearest cent; halves round away from zero."""
    return F.round(amount * F.lit(100), 0).cast("bigint")


def referrer_source(referrer: Column) -> Column:
    """The referrer's host without a leading `www.`; `direct` without a referrer.

    Host names are case-insensitive, so they are lower-cased. A referrer whose host cannot be
    read (not a URL) gives `unknown` rather than a guess.
    """
    host = F.lower(F.try_parse_url(referrer, F.lit("HOST")))
    return (
        F.when(~_has_referrer(referrer), F.lit("direct"))
        .when(host.isNull() | (host == ""), F.lit("unknown"))
        .otherwise(F.regexp_replace(host, r"^www\.", ""))
    )


def _has_referrer(referrer: Column) -> Column:
    # An empty string carries no referrer, like null.
    return F.coalesce(F.trim(referrer) != F.lit(""), F.lit(False))


def customer_registered_v1_to_v2(payload: Column) -> Column:
    return F.struct(
        payload["customer_id"].alias("customer_id"),
        payload["email"].alias("email"),
        payload["country"].alias("country"),
        F.struct(
            referrer_source(payload["referrer"]).alias("source"),
            F.when(_has_referrer(payload["referrer"]), F.lit("referral")).otherwise(F.lit("none")).alias("medium"),
            F.lit(None).cast("string").alias("campaign"),
        ).alias("acquisition"),
    )


def cart_item_added_v1_to_v2(payload: Column) -> Column:
    return F.struct(
        payload["cart_id"].alias("cart_id"),
        payload["session_id"].alias("session_id"),
        payload["customer_id"].alias("customer_id"),
        payload["product_id"].alias("product_id"),
        payload["category"].alias("category"),
        payload["quantity"].alias("quantity"),
        to_cents(payload["unit_price"]).alias("unit_price_cents"),
        F.lit("EUR").alias("currency"),
    )


def order_created_v1_to_v2(payload: Column) -> Column:
    items = F.transform(
        payload["items"],
        lambda item: F.struct(
            item["product_id"].alias("product_id"),
            item["category"].alias("category"),
            item["quantity"].alias("quantity"),
            to_cents(item["unit_price"]).alias("unit_price_cents"),
        ),
    )
    return F.struct(
        payload["order_id"].alias("order_id"),
        payload["cart_id"].alias("cart_id"),
        payload["customer_id"].alias("customer_id"),
        payload["session_id"].alias("session_id"),
        items.alias("items"),
        to_cents(payload["total"]).alias("total_cents"),
        F.lit("EUR").alias("currency"),
    )


def order_created_v2_to_v3(payload: Column) -> Column:
    return F.struct(
        *(payload[name].alias(name) for name in ("order_id", "cart_id", "customer_id", "session_id", "items")),
        payload["total_cents"].alias("total_cents"),
        payload["currency"].alias("currency"),
        F.lit("unknown").alias("order_source"),
    )
