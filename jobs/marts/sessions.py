"""Sessions as the marts know them (shared by every session-based mart)."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def known_sessions(session_started: DataFrame) -> DataFrame:
    """One row per tenant and session whose SessionStarted is known: the first one of its stream.

    Its date is the UTC date of that event and its visitor that event's anonymous_id; events naming
    a session without one are left out of session-based counts (they find no row here).
    """
    first = Window.partitionBy("tenant_id", "session_id").orderBy("stream_version", "global_position")
    return (
        session_started.withColumn("_rank", F.row_number().over(first))
        .filter(F.col("_rank") == 1)
        .select(
            "tenant_id",
            "session_id",
            "anonymous_id",
            "customer_id",
            "source",
            "medium",
            "campaign",
            "device",
            F.col("occurred_at").alias("started_at"),
            F.to_date("occurred_at").alias("session_date"),
        )
    )
