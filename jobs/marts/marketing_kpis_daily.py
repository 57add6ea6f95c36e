"""One row per tenant and UTC date with a known session, a valid order, a new customer or a spend."""

from __future__ import annotations

from functools import reduce
from typing import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.marts.contract import BuildContext, MartContract
from jobs.marts.currency import count_if, other_currency, precedence, sum_if, with_row_currency
from jobs.marts.orders import changed_orders
from jobs.marts.restate import (
    Changes,
    Restatement,
    Sources,
    counts_too_many_sessions,
    event_dates,
    keyed,
    narrowed,
    renamed,
    semi,
    streams_touching,
    union_all,
)
from jobs.marts.sessions import known_sessions
from jobs.marts.streams import first_in_stream

CONTRACT = MartContract(
    name="marketing_kpis_daily",
    version="1.0",
    grain="one row per tenant and UTC date with a known session, a valid order, a first registration or a spend",
    key=("tenant_id", "activity_date"),
    columns=(
        ("tenant_id", "string"),
        # The UTC date of each thing counted: a session's start, an order's creation, a
        # registration, and a spend's own spend_date (not when the spend was recorded).
        ("activity_date", "date"),
        # The currency of the amounts below (jobs/marts/currency.py): the latest spend's, else the
        # latest valid order's; null on a day with neither.
        ("currency", "string"),
        ("sessions", "bigint"),
        ("visitors", "bigint"),
        ("valid_orders", "bigint"),
        ("revenue_cents", "bigint"),
        # Exact mean net amount of the day's valid orders; refunds do not lower it.
        ("avg_basket_cents", "double"),
        # Valid orders of the day / sessions of the day. Not bounded by 1: orders without a session
        # (phone, marketplace) count, and an order may come a day after its session started.
        ("conversion_rate", "double"),
        ("new_customers", "bigint"),
        ("spend_cents", "bigint"),
        ("cac_cents", "double"),
        # Valid orders and spend records recorded in another currency than `currency` (still added
        # to the amounts, as recorded): non-zero only for a tenant that switched currency.
        ("amounts_in_other_currencies", "bigint"),
    ),
    nullable=("currency", "avg_basket_cents", "conversion_rate", "cac_cents"),
)

INPUTS = ("orders", "SessionStarted", "CustomerRegistered", "CampaignSpendRecorded")

_KEY = ["tenant_id", "activity_date"]
# The columns of `orders` that `build` reads besides its key (see _touched).
ORDER_COLUMNS = ("order_date", "is_valid", "created_at", "currency", "revenue_cents", "net_cents")


def build(sources: Mapping[str, DataFrame], context: BuildContext) -> DataFrame:
    sessions = daily_sessions(sources["SessionStarted"])
    amounts = daily_amounts(sources["orders"], sources["CampaignSpendRecorded"])
    registrations = daily_new_customers(sources["CustomerRegistered"])
    # Every tenant and date that any of the daily frames has a row for (one row each per key): full
    # outer joins evaluate each frame once, where a union of their keys joined back evaluated it twice.
    days = (
        reduce(lambda left, right: left.join(right, on=_KEY, how="full"), [sessions, amounts, registrations])
        .transform(with_defaults)
        .transform(with_ratios)
    )
    return CONTRACT.conform(days)


def daily_sessions(session_started: DataFrame) -> DataFrame:
    """Known sessions on the date of their first SessionStarted; visitors are their anonymous_ids."""
    return (
        known_sessions(session_started)
        .groupBy("tenant_id", F.col("session_date").alias("activity_date"))
        .agg(F.count(F.lit(1)).alias("sessions"), F.countDistinct("anonymous_id").alias("visitors"))
    )


def daily_new_customers(customer_registered: DataFrame) -> DataFrame:
    """Each customer's first CustomerRegistered (by stream_version) on its UTC date; a repeated
    registration is not a new customer, and a day with only such a repeat has no row."""
    return (
        first_in_stream(customer_registered, "tenant_id", "customer_id")
        .groupBy("tenant_id", F.to_date("occurred_at").alias("activity_date"))
        .agg(F.count(F.lit(1)).alias("new_customers"))
    )


def daily_amounts(orders: DataFrame, spend_recorded: DataFrame) -> DataFrame:
    """Valid orders by order date and spend by spend date, added as recorded (jobs/marts/currency.py)."""
    valid = orders.filter(F.col("is_valid")).select(
        "tenant_id",
        F.col("order_date").alias("activity_date"),
        F.lit(False).alias("is_spend"),
        F.col("revenue_cents").alias("amount_cents"),
        "net_cents",
        "currency",
        # Spend outranks orders; among orders the latest created names the currency.
        precedence(0, F.col("created_at"), F.col("order_id")),
    )
    spend = spend_recorded.select(
        "tenant_id",
        F.col("spend_date").alias("activity_date"),
        F.lit(True).alias("is_spend"),
        F.col("cost_cents").alias("amount_cents"),
        F.lit(None).cast("bigint").alias("net_cents"),
        "currency",
        precedence(1, F.col("recorded_at"), F.col("event_id")),
    )
    amounts = with_row_currency(valid.unionByName(spend), _KEY)
    is_order = ~F.col("is_spend")
    return amounts.groupBy(*_KEY).agg(
        F.first("row_currency").alias("currency"),
        count_if(is_order).alias("valid_orders"),
        sum_if(is_order, "amount_cents").alias("revenue_cents"),
        # Refunds do not lower the average basket: it is the mean net amount.
        F.avg(F.when(is_order, F.col("net_cents"))).alias("avg_basket_cents"),
        sum_if(F.col("is_spend"), "amount_cents").alias("spend_cents"),
        count_if(other_currency()).alias("amounts_in_other_currencies"),
    )


def with_defaults(days: DataFrame) -> DataFrame:
    zero = ["sessions", "visitors", "valid_orders", "revenue_cents", "new_customers", "spend_cents"]
    return days.fillna(0, subset=zero + ["amounts_in_other_currencies"])


def with_ratios(days: DataFrame) -> DataFrame:
    """conversion_rate null without sessions; cac_cents (spend per new customer) null without one."""
    sessions, new_customers = F.col("sessions"), F.col("new_customers")
    return days.withColumn("conversion_rate", F.when(sessions > 0, F.col("valid_orders") / sessions)).withColumn(
        "cac_cents", F.when(new_customers > 0, F.col("spend_cents") / new_customers)
    )


def _touched(changes: Changes, published: DataFrame) -> DataFrame:
    """The dates of every SessionStarted of a session with a new one, of every CustomerRegistered
    of a customer with a new one (a late event may become the first), of restated orders whose
    columns read here changed (before and after) and of new spend (its spend_date)."""
    sessions = semi(changes.sources["SessionStarted"], keyed(changes.events["SessionStarted"], "tenant_id", "session_id"))
    customers = keyed(changes.events["CustomerRegistered"], "tenant_id", "customer_id")
    return union_all(
        [
            event_dates(sessions, "activity_date"),
            event_dates(semi(changes.sources["CustomerRegistered"], customers), "activity_date"),
            changed_orders(changes, ORDER_COLUMNS).select("tenant_id", F.col("order_date").alias("activity_date")),
            changes.events["CampaignSpendRecorded"].select("tenant_id", F.col("spend_date").alias("activity_date")),
        ]
    )


def _narrow(sources: Sources, days: DataFrame) -> Sources:
    return {
        "SessionStarted": streams_touching(sources["SessionStarted"], ["tenant_id", "session_id"], days, "activity_date"),
        "CustomerRegistered": streams_touching(sources["CustomerRegistered"], ["tenant_id", "customer_id"], days, "activity_date"),
        "orders": narrowed(sources["orders"], renamed(days, "activity_date", "order_date")),
        "CampaignSpendRecorded": narrowed(sources["CampaignSpendRecorded"], renamed(days, "activity_date", "spend_date")),
    }


RESTATE = Restatement(
    unit=tuple(_KEY), touched=_touched, narrow=_narrow, needs_whole=counts_too_many_sessions("activity_date")
)
