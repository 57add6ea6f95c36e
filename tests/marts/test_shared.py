"""Known sessions are derived once per build from the whole SessionStarted table, and only from it
(jobs/marts/shared.py)."""

from __future__ import annotations

from chispa import assert_df_equality
from pyspark import StorageLevel
from pyspark.sql import functions as F

from jobs.marts.sessions import known_sessions
from jobs.marts.shared import reused


def _session_started(spark):
    rows = [
        ("t1", "s1", 1, 10, "2026-03-02 10:00:00", "a1"),
        ("t1", "s1", 2, 11, "2026-03-01 09:00:00", "a2"),  # later in its stream: not the first
        ("t1", "s2", 1, 12, "2026-03-02 11:00:00", "a3"),
    ]
    frame = spark.createDataFrame(rows, "tenant_id string, session_id string, stream_version long, global_position long, ts string, anonymous_id string")
    return frame.select(
        "*", F.to_timestamp("ts").alias("occurred_at"), *(F.lit(None).cast("string").alias(c) for c in ("customer_id", "source", "medium", "campaign", "device"))
    ).drop("ts")


def test_within_a_build_the_whole_inputs_known_sessions_are_computed_once_and_dropped_after(spark):
    whole = _session_started(spark)
    expected = known_sessions(whole)  # outside a build: derived, not cached
    assert expected.storageLevel == StorageLevel.NONE

    with reused({"SessionStarted": whole}):
        first, second = known_sessions(whole), known_sessions(whole)
        assert first is second and first.storageLevel != StorageLevel.NONE
        assert_df_equality(first, expected, ignore_row_order=True)
        assert {(r.session_id, r.anonymous_id) for r in first.collect()} == {("s1", "a1"), ("s2", "a3")}

    assert first.storageLevel == StorageLevel.NONE


def test_a_narrowed_input_is_not_shared(spark):
    whole = _session_started(spark)
    narrowed = whole.filter(F.col("session_id") == "s2")

    with reused({"SessionStarted": whole}):
        one, other = known_sessions(narrowed), known_sessions(narrowed)

    assert one is not other and one.storageLevel == StorageLevel.NONE
    assert [r.session_id for r in one.collect()] == ["s2"]
