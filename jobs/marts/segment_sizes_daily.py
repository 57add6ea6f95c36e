"""One row per tenant, UTC day and segment: the segment's size as of the last run whose as-of fell on that day.

A day is that of the run's as-of time (the events' watermark, or a replay's time), not the wall
clock, so the history accumulates across runs and is idempotent per day: a rerun on the same events
writes the same row again, a later run on the same day replaces that day's row, and the days before
are kept from the published table as they were. A replay as of T shows the published days before
T's day plus T's own row. A segment removed from configuration keeps its past days.
"""

from __future__ import annotations

from typing import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.marts.contract import BuildContext, MartContract
from jobs.marts.customer_360 import utc

CONTRACT = MartContract(
    name="segment_sizes_daily",
    version="1.0",
    grain="one row per tenant, UTC date of a run's as-of time and segment defined at that run",
    key=("tenant_id", "as_of_date", "segment"),
    columns=(
        ("tenant_id", "string"),
        ("as_of_date", "date"),
        ("segment", "string"),
        # Members as of `as_of`; 0 for a defined segment nobody is in.
        ("customers", "bigint"),
        # The definition the size was counted with: a changed expression explains a jump in the trend.
        ("expression", "string"),
        ("channel", "string"),
        # The as-of time of the run that counted this day (the day's last run).
        ("as_of", "timestamp"),
    ),
    nullable=("channel",),
)

INPUTS = ("customer_segments", "customer_360")


def build(sources: Mapping[str, DataFrame], context: BuildContext) -> DataFrame:
    run_day = utc(context.as_of).date()
    today = CONTRACT.conform(sizes_as_of(sources["customer_segments"], sources["customer_360"], context))
    published = context.read_published(CONTRACT.name)
    if published is None:
        return today
    # The published days before this run's day stay as they were; this run's day is counted again.
    earlier = published.filter(F.col("as_of_date") < F.lit(run_day))
    return CONTRACT.conform(earlier).unionByName(today)


def sizes_as_of(memberships: DataFrame, customers: DataFrame, context: BuildContext) -> DataFrame:
    """Every defined segment in every tenant that has customers, with its member count (0 if none)."""
    as_of = utc(context.as_of)
    definitions = customers.sparkSession.createDataFrame(
        [(s.name, s.expression, s.channel) for s in context.segments], "segment string, expression string, channel string"
    )
    counts = memberships.groupBy("tenant_id", "segment").agg(F.count(F.lit(1)).alias("customers"))
    return (
        customers.select("tenant_id")
        .distinct()
        .crossJoin(definitions)
        .join(counts, on=["tenant_id", "segment"], how="left")
        .fillna(0, subset=["customers"])
        .withColumn("as_of", F.lit(as_of).cast("timestamp"))
        .withColumn("as_of_date", F.lit(as_of.date()))
    )
