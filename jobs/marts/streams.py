"""Reading event streams the way the marts must: in stream order, never by producers' clocks."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def first_in_stream(events: DataFrame, *key: str) -> DataFrame:
    """Per key, the event that comes first in its stream: lowest stream_version, then global_position
    (occurred_at may be skewed)."""
    first = Window.partitionBy(*key).orderBy("stream_version", "global_position")
    return events.withColumn("_rank", F.row_number().over(first)).filter(F.col("_rank") == 1).drop("_rank")
