"""Sessions as the marts know them (shared by every session-based mart), and the silver table that keeps them.

A known session is the first SessionStarted of its stream. Deriving them is a shuffle and a sort of the
whole SessionStarted table (about 9 s of an hourly run at 10M events of history on two cores), so silver
keeps them in a table of their own, `silver/known_sessions`, brought up to date with silver's other
tables by each build (jobs/silver.py): the sessions that the landed SessionStarted events start are
appended, and the table is derived again from the whole of silver's SessionStarted when one of those
events names a session it already holds (its first event may change), after a full build, or when its
state is unknown. A build of the marts reads it in place of the derivation (`use_known_sessions_table`)
only when it holds what the derivation would give: it reflects the same bronze version and catalog as
SessionStarted, and the build reads every SessionStarted event (its as-of time is not before the
latest event; a replay to an earlier time derives them).
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.marts.shared import once, provide
from jobs.marts.streams import first_in_stream

KNOWN_SESSIONS = "known_sessions"  # its silver table's name (silver/known_sessions)
KEY = ["tenant_id", "session_id"]


def known_sessions(session_started: DataFrame) -> DataFrame:
    """One row per tenant and session whose SessionStarted is known: the first one of its stream.

    Its date is the UTC date of that event and its visitor that event's anonymous_id; events naming
    a session without one are left out of session-based counts (they find no row here). Derived
    once per build from the whole SessionStarted table, for every mart that reads it (shared.py), or
    read from silver/known_sessions when the build may (`use_known_sessions_table`).
    """
    return once("known_sessions", session_started, derive_known_sessions)


def derive_known_sessions(session_started: DataFrame) -> DataFrame:
    return (
        first_in_stream(session_started, *KEY)
        .select(
            *KEY,
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


def use_known_sessions_table(spark: SparkSession, warehouse: str, session_started: DataFrame, as_of: datetime) -> bool:
    """Within the build's `reused` scope, serve silver/known_sessions as the known sessions of
    `session_started` (silver's SessionStarted read whole, filtered to `as_of`) when it holds exactly
    them (see the module's docstring); returns whether it does."""
    from jobs.events.catalog import CATALOG
    from jobs.incremental import silver_states
    from jobs.silver import silver_path

    names = {CATALOG["SessionStarted"].table_name, KNOWN_SESSIONS}
    states = silver_states(spark, warehouse, {name: silver_path(warehouse, name) for name in names})
    started, known = states[CATALOG["SessionStarted"].table_name], states[KNOWN_SESSIONS]
    if started is None or known is None or started.event_watermark is None:
        return False
    if (started.bronze_version, started.catalog) != (known.bronze_version, known.catalog):
        return False
    if as_of < datetime.fromisoformat(started.event_watermark):
        return False
    table = spark.read.format("delta").load(silver_path(warehouse, KNOWN_SESSIONS))
    return provide("known_sessions", session_started, table)
