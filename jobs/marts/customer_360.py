"""One row per tenant and customer: registration, acquisition, email consent, valid orders and RFM scores."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Mapping

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.marts.contract import BuildContext, MartContract
from jobs.marts.currency import count_if, other_currency, precedence, sum_if, with_row_currency
from jobs.marts.streams import first_in_stream

# Privacy: customers are linked by customer_id only. No email or other direct identifier is read
# into this mart; an erased customer keeps a row (is_erased) with its aggregates.
CONTRACT = MartContract(
    name="customer_360",
    version="1.0",
    grain="one row per tenant and customer (registered, or named by an order)",
    key=("tenant_id", "customer_id"),
    columns=(
        ("tenant_id", "string"),
        ("customer_id", "string"),
        ("registered_at", "timestamp"),
        ("acquisition_source", "string"),
        ("acquisition_medium", "string"),
        ("acquisition_campaign", "string"),
        ("country", "string"),
        ("email_consent", "boolean"),
        ("is_erased", "boolean"),
        # The currency of the amounts below (jobs/marts/currency.py): the latest valid order's.
        ("currency", "string"),
        ("valid_orders", "bigint"),
        ("revenue_cents", "bigint"),
        # Exact mean net amount of valid orders; refunds do not lower it.
        ("avg_basket_cents", "double"),
        ("first_valid_order_date", "date"),
        ("last_valid_order_date", "date"),
        ("valid_orders_30d", "bigint"),
        ("valid_orders_90d", "bigint"),
        ("valid_orders_365d", "bigint"),
        ("revenue_90d_cents", "bigint"),
        ("days_since_last_order", "int"),
        ("recency_score", "int"),
        ("frequency_score", "int"),
        ("monetary_score", "int"),
        # Valid orders recorded in another currency than `currency` (still added to the amounts, as
        # recorded): non-zero only for a customer of a tenant that switched currency.
        ("amounts_in_other_currencies", "bigint"),
    ),
    nullable=(
        "registered_at",
        "acquisition_source",
        "acquisition_medium",
        "acquisition_campaign",
        "country",
        "currency",
        "avg_basket_cents",
        "first_valid_order_date",
        "last_valid_order_date",
        "days_since_last_order",
        "recency_score",
        "frequency_score",
        "monetary_score",
    ),
)

INPUTS = ("orders", "CustomerRegistered", "MarketingConsentChanged", "CustomerErasureRequested")

_KEY = ["tenant_id", "customer_id"]
WINDOW_DAYS = (30, 90, 365)


def build(sources: Mapping[str, DataFrame], context: BuildContext) -> DataFrame:
    as_of = utc(context.as_of)
    orders = sources["orders"]
    registrations = first_registrations(sources["CustomerRegistered"])
    customers = (
        known_customers(registrations, orders)
        .join(registrations, on=_KEY, how="left")
        .join(email_consents(sources["MarketingConsentChanged"]), on=_KEY, how="left")
        .join(erasures(sources["CustomerErasureRequested"]), on=_KEY, how="left")
        .join(valid_order_history(orders, as_of), on=_KEY, how="left")
        .transform(with_defaults)
        .transform(with_rfm_scores)
    )
    return CONTRACT.conform(customers)


def utc(as_of: datetime) -> datetime:
    """The as-of time in UTC; a naive one is taken to be UTC already (the pipeline's is aware)."""
    return as_of.replace(tzinfo=timezone.utc) if as_of.tzinfo is None else as_of.astimezone(timezone.utc)


def first_registrations(customer_registered: DataFrame) -> DataFrame:
    """The first CustomerRegistered of each customer stream (by stream_version); a repeated
    registration changes nothing. Silver is upcast: a v1 referrer is already an acquisition."""
    return (
        first_in_stream(customer_registered, *_KEY)
        .select(
            *_KEY,
            F.col("occurred_at").alias("registered_at"),
            F.col("acquisition.source").alias("acquisition_source"),
            F.col("acquisition.medium").alias("acquisition_medium"),
            F.col("acquisition.campaign").alias("acquisition_campaign"),
            "country",
        )
    )


def known_customers(registrations: DataFrame, orders: DataFrame) -> DataFrame:
    """Every customer registered or named by an order, valid or not."""
    ordering = orders.filter(F.col("customer_id").isNotNull()).select(*_KEY)
    return registrations.select(*_KEY).unionByName(ordering).distinct()


def email_consents(consent_changed: DataFrame) -> DataFrame:
    """The granted flag of the customer's latest email consent change, latest by the customer
    stream's stream_version: producers' clocks are skewed, so occurred_at cannot order them."""
    latest = Window.partitionBy(*_KEY).orderBy(F.col("stream_version").desc(), F.col("global_position").desc())
    return (
        consent_changed.filter(F.col("channel") == "email")
        .withColumn("_rank", F.row_number().over(latest))
        .filter(F.col("_rank") == 1)
        .select(*_KEY, F.col("granted").alias("email_consent"))
    )


def erasures(erasure_requested: DataFrame) -> DataFrame:
    return erasure_requested.select(*_KEY).distinct().withColumn("is_erased", F.lit(True))


def valid_order_history(orders: DataFrame, as_of: datetime) -> DataFrame:
    """Per customer with a valid order: counts, amounts, dates, windows, and days since the last one.

    "Last N days" are orders created in (as_of - N days, as_of]; the pipeline never passes events
    after as_of, so only the lower bound is applied. Amounts are added as recorded
    (jobs/marts/currency.py).
    """
    valid = orders.filter(F.col("is_valid") & F.col("customer_id").isNotNull()).select(
        *_KEY, "created_at", "order_date", "revenue_cents", "net_cents", "currency",
        precedence(0, F.col("created_at"), F.col("order_id")),
    )
    windows = [count_if(_in_last(days, as_of)).alias(f"valid_orders_{days}d") for days in WINDOW_DAYS]
    return (
        with_row_currency(valid, _KEY)
        .groupBy(*_KEY)
        .agg(
            F.first("row_currency").alias("currency"),
            F.count(F.lit(1)).alias("valid_orders"),
            F.sum("revenue_cents").alias("revenue_cents"),
            F.avg("net_cents").alias("avg_basket_cents"),
            F.min("order_date").alias("first_valid_order_date"),
            F.max("order_date").alias("last_valid_order_date"),
            *windows,
            sum_if(_in_last(90, as_of), "revenue_cents").alias("revenue_90d_cents"),
            count_if(other_currency()).alias("amounts_in_other_currencies"),
        )
        # Both are UTC dates: the as-of date and the last valid order's order_date.
        .withColumn("days_since_last_order", F.datediff(F.lit(as_of.date()), F.col("last_valid_order_date")))
    )


def with_defaults(customers: DataFrame) -> DataFrame:
    """A customer without valid orders counts zero; without an email consent change, no consent."""
    zero = ["valid_orders", "revenue_cents", "revenue_90d_cents", "amounts_in_other_currencies"]
    zero += [f"valid_orders_{days}d" for days in WINDOW_DAYS]
    return customers.fillna(0, subset=zero).fillna(False, subset=["email_consent", "is_erased"])


def with_rfm_scores(customers: DataFrame) -> DataFrame:
    """RFM scores, 1 to 5 by quintile among the tenant's customers with at least one valid order.

    score = ceil(5 * cume_dist()) over the metric ordered from worst to best, so 5 is best and
    customers tied on a metric share its score. Recency is days_since_last_order (fewer is
    better, so most days come first), frequency valid_orders, monetary revenue_cents. Customers
    without a valid order are ranked apart and get null scores.
    """
    scored = F.col("valid_orders") > 0
    return (
        customers.withColumn("recency_score", _quintile_score(F.col("days_since_last_order").desc(), scored))
        .withColumn("frequency_score", _quintile_score(F.col("valid_orders").asc(), scored))
        .withColumn("monetary_score", _quintile_score(F.col("revenue_cents").asc(), scored))
    )


def _quintile_score(worst_to_best: Column, scored: Column) -> Column:
    ranking = Window.partitionBy(F.col("tenant_id"), scored).orderBy(worst_to_best)
    return F.when(scored, F.ceil(F.lit(5) * F.cume_dist().over(ranking)).cast("int"))


def _in_last(days: int, as_of: datetime) -> Column:
    """Created in (as_of - days, as_of]: an order exactly `days` days before as_of is out."""
    return F.col("created_at") > F.lit(as_of - timedelta(days=days))
