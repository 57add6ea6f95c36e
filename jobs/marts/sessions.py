"""Sessions as the marts know them (shared by every session-based mart)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.marts.shared import once
from jobs.marts.streams import first_in_stream


# The SessionStarted columns `known_sessions` reads: a frame with only these (a narrowed input kept in
# memory, restate.Counted) gives the same sessions.
SESSION_STARTED_COLUMNS = (
    "tenant_id", "session_id", "stream_version", "global_position", "anonymous_id", "source", "medium", "campaign",
    "occurred_at",
)


def known_sessions(session_started: DataFrame) -> DataFrame:
    """One row per tenant and session whose SessionStarted is known: the first one of its stream.

    Its date is the UTC date of that event and its visitor that event's anonymous_id; events naming
    a session without one are left out of session-based counts (they find no row here). Derived
    once per build from the whole SessionStarted table, for every mart that reads it (shared.py),
    with only the columns those marts read: the first mart to need it pays for caching every column
    kept (at 3M events of history, 560,702 sessions: 4.6 s with these seven, 5.2 s with the event's
    customer_id, device and started_at too, medians of eight alternated runs).
    """
    return once("known_sessions", session_started, _known_sessions)


def _known_sessions(session_started: DataFrame) -> DataFrame:
    return (
        first_in_stream(session_started, "tenant_id", "session_id")
        .select(
            "tenant_id",
            "session_id",
            "anonymous_id",
            "source",
            "medium",
            "campaign",
            F.to_date("occurred_at").alias("session_date"),
        )
    )
