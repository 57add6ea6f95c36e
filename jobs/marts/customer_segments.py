"""One row per tenant, segment and customer in it, as of the run (segments from conf/segments.yaml)."""

from __future__ import annotations

from datetime import datetime
from typing import Mapping, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.marts.contract import BuildContext, MartContract
from jobs.segments import CHANNELS, Segment

# Privacy: members are named by customer_id only; erased customers are in no segment.
CONTRACT = MartContract(
    name="customer_segments",
    version="1.0",
    grain="one row per tenant, segment and customer in the segment as of the run",
    key=("tenant_id", "segment", "customer_id"),
    columns=(
        ("tenant_id", "string"),
        ("segment", "string"),
        ("customer_id", "string"),
        # The activation channel the segment is meant for (its members consented to it), or null.
        ("channel", "string"),
        # The run's as-of time: membership is that of customer_360 and consents at this time.
        ("as_of", "timestamp"),
    ),
    nullable=("channel",),
)

INPUTS = ("customer_360", "MarketingConsentChanged", "CustomerErasureRequested")

_KEY = ["tenant_id", "customer_id"]


def build(sources: Mapping[str, DataFrame], context: BuildContext) -> DataFrame:
    customers = (
        sources["customer_360"]
        .transform(lambda frame: without_erased(frame, sources["CustomerErasureRequested"]))
        .join(latest_consents(sources["MarketingConsentChanged"]), on=_KEY, how="left")
    )
    return CONTRACT.conform(memberships(customers, context.segments, context.as_of))


def without_erased(customers: DataFrame, erasure_requested: DataFrame) -> DataFrame:
    """Erased customers leave every segment: those customer_360 marks erased (when it has the
    column) and, whatever customer_360 says, anyone with a CustomerErasureRequested event."""
    if "is_erased" in customers.columns:
        customers = customers.filter(~F.coalesce(F.col("is_erased"), F.lit(False)))
    return customers.join(erasure_requested.select(*_KEY).distinct(), on=_KEY, how="left_anti")


def latest_consents(consent_changed: DataFrame) -> DataFrame:
    """Per customer, `_consent_<channel>`: the granted flag of their latest consent change for that
    channel, latest in the customer stream (stream_version; producers' clocks are skewed). Null
    when they never changed it, which is no consent."""
    latest = Window.partitionBy(*_KEY, "channel").orderBy(F.col("stream_version").desc(), F.col("global_position").desc())
    current = (
        consent_changed.filter(F.col("channel").isin(*CHANNELS))
        .withColumn("_rank", F.row_number().over(latest))
        .filter(F.col("_rank") == 1)
    )
    return current.groupBy(*_KEY).agg(
        *(F.max(F.when(F.col("channel") == channel, F.col("granted"))).alias(f"_consent_{channel}") for channel in CHANNELS)
    )


def memberships(customers: DataFrame, segments: Sequence[Segment], as_of: datetime) -> DataFrame:
    """One pass over the customers: the names of the segments each is in, exploded into rows.

    A customer is in a segment when its expression is true (null is not) and, for a segment with a
    channel, their latest consent for that channel granted it.
    """
    if not segments:
        return customers.sparkSession.createDataFrame([], ", ".join(f"{n} {t}" for n, t in CONTRACT.columns))
    matched = F.array(*(F.when(_is_member(segment), _entry(segment)) for segment in segments))
    return (
        customers.select(*_KEY, F.explode(F.filter(matched, lambda entry: entry.isNotNull())).alias("_in"))
        .select(*_KEY, "_in.segment", "_in.channel")
        .withColumn("as_of", F.lit(as_of).cast("timestamp"))
    )


def _entry(segment: Segment) -> Column:
    return F.struct(F.lit(segment.name).alias("segment"), F.lit(segment.channel).cast("string").alias("channel"))


def _is_member(segment: Segment) -> Column:
    # spark_sql is the parse tree jobs.segments checked, written back: never the raw text.
    is_member = F.coalesce(F.expr(segment.spark_sql), F.lit(False))
    if segment.channel is not None:
        is_member = is_member & F.coalesce(F.col(f"_consent_{segment.channel}"), F.lit(False))
    return is_member
