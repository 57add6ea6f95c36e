"""Sessions as the marts know them (shared by every session-based mart)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.marts.shared import once
from jobs.marts.streams import first_in_stream


def known_sessions(session_started: DataFrame) -> DataFrame:
    """One row per tenant and session whose SessionStarted is known: the first one of its stream.

    Its date is the UTC date of that event and its visitor that event's anonymous_id; events naming
    a session without one are left out of session-based counts (they find no row here). Derived
    once per build from the whole SessionStarted table, for every mart that reads it (shared.py).
    """
    return once("known_sessions", session_started, _known_sessions)


def _known_sessions(session_started: DataFrame) -> DataFrame:
    return (
        first_in_stream(session_started, "tenant_id", "session_id")
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
