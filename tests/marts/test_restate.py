"""Restatement key sets: small ones are computed once and broadcast, so a semi join scans a whole
silver table instead of sorting it; a mart that would narrow by too many sessions tells it from its
new events (jobs/marts/restate.py)."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs.marts import restate
from jobs.marts.restate import (
    Changes, campaign_sessions_too_many, counts_too_many_sessions, keyed, keyed_union, materialized, narrowed, renamed, semi,
)


def _plan(frame) -> str:
    return frame._jdf.queryExecution().executedPlan().toString()


def _events(spark, count: int):
    """`count` events of two tenants, one session each per ten events."""
    return spark.range(count).select(
        F.when(F.col("id") % 2 == 0, "t1").otherwise("t2").alias("tenant_id"),
        F.concat(F.lit("s-"), (F.col("id") / 10).cast("long").cast("string")).alias("session_id"),
        F.col("id").alias("sequence"),
    )


def test_small_keys_are_computed_once_with_the_same_rows(spark):
    keys = _events(spark, 100).select("tenant_id", "session_id").distinct()

    local = materialized(keys)

    assert "Range" not in _plan(local)  # computed: no lineage back to the events
    # The broadcast hint is given at joins only: on the frame, Spark would warn at every other use.
    assert "ResolvedHint" not in local._jdf.queryExecution().analyzed().toString()
    assert_df_equality(local, keys, ignore_row_order=True)


def test_keys_beyond_the_limit_stay_distributed(spark):
    keys = _events(spark, 100).select("tenant_id", "session_id").distinct()

    kept = materialized(keys, limit=5)

    assert kept is keys  # Spark's own statistics then decide how to join them


def test_dates_come_back_unchanged_and_timestamps_are_not_brought_to_the_driver(spark):
    dated = spark.createDataFrame([("t1", dt.date(2026, 3, 29))], "tenant_id string, day date")
    stamped = dated.select("tenant_id", F.col("day").cast("timestamp").alias("at"))

    assert materialized(dated).collect() == dated.collect()
    assert materialized(stamped) is stamped


def test_a_semi_join_on_few_keys_is_broadcast_not_sorted(spark):
    events = _events(spark, 10_000)
    sessions = keyed(events.filter(F.col("sequence") < 25), "tenant_id", "session_id")

    narrowed = semi(events, sessions)
    by_other_name = semi(events.withColumnRenamed("session_id", "id"), renamed(sessions, "session_id", "id"))

    for frame in (narrowed, by_other_name):
        plan = _plan(frame)
        assert "BroadcastHashJoin" in plan and "SortMergeJoin" not in plan
        assert sorted(row.sequence for row in frame.collect()) == list(range(30))


def test_the_keys_of_several_selections_are_those_each_has_without_nulls_computed_at_once(spark):
    events = _events(spark, 100)
    first = events.filter(F.col("sequence") < 15).select("tenant_id", "session_id")
    second = events.filter(F.col("sequence").between(10, 34)).select("tenant_id", "session_id")
    with_nulls = spark.createDataFrame([("t1", None), (None, "s-9")], "tenant_id string, session_id string")

    keys = keyed_union([first, second, with_nulls])

    assert "Range" not in _plan(keys)  # computed now, as `keyed` does
    assert "BroadcastHashJoin" in _plan(semi(events, keys))
    # Sequences 0-34 are sessions s-0 to s-3, each with events of both tenants (even and odd ids).
    assert sorted(map(tuple, keys.collect())) == sorted((tenant, f"s-{n}") for tenant in ("t1", "t2") for n in range(4))


def test_narrowing_by_many_keys_keeps_the_whole_input_instead_of_sorting_it_against_them(spark):
    events = _events(spark, 10_000)
    few = keyed(events.filter(F.col("sequence") < 25), "tenant_id", "session_id")
    many = materialized(events.select("tenant_id", "session_id").distinct(), limit=5)

    assert sorted(row.sequence for row in narrowed(events, few).collect()) == list(range(30))
    assert narrowed(events, many) is events


def test_new_sessions_on_days_that_published_more_sessions_than_small_keys_need_whole_inputs(spark, monkeypatch):
    published = spark.createDataFrame(
        [("t1", dt.date(2026, 3, 2), 40), ("t1", dt.date(2026, 3, 3), 70), ("t2", dt.date(2026, 3, 2), 500)],
        "tenant_id string, session_date date, sessions bigint",
    )
    utc = dt.timezone.utc
    new = spark.createDataFrame(
        [("t1", dt.datetime(2026, 3, 2, 10, tzinfo=utc)), ("t1", dt.datetime(2026, 3, 3, 23, 59, tzinfo=utc))],
        "tenant_id string, occurred_at timestamp",
    )
    changes = Changes(events={"SessionStarted": new}, marts={}, sources={})
    needs_whole = counts_too_many_sessions("session_date")

    # t1's two days count 110 sessions; t2's 500 are on a day with no new session of t2.
    monkeypatch.setattr(restate, "SMALL_KEYS", 109)
    assert needs_whole(changes, published)
    monkeypatch.setattr(restate, "SMALL_KEYS", 110)
    assert not needs_whole(changes, published)
    assert not needs_whole(Changes(events={"SessionStarted": new.limit(0)}, marts={}, sources={}), published)


def test_new_sessions_whose_campaigns_have_more_session_starts_than_small_keys_need_whole_inputs(spark, monkeypatch):
    rows = (
        # t1's spring campaign: three sessions, one of them with two SessionStarted events.
        [("t1", "s1", "spring"), ("t1", "s1", "spring"), ("t1", "s2", "spring"), ("t1", "s3", "spring")]
        + [("t1", f"f{n}", "fall") for n in range(50)]
        + [("t2", f"t2-{n}", "spring") for n in range(40)]
        + [("t1", f"n{n}", None) for n in range(100)]
    )
    started = spark.createDataFrame(rows, "tenant_id string, session_id string, campaign string")
    new = started.filter("session_id in ('s3', 'n0')")
    changes = Changes(events={"SessionStarted": new}, marts={}, sources={"SessionStarted": started})

    # The new events name t1's spring campaign (three sessions, four SessionStarted events: counted
    # as events, an over-estimate that costs a build in full at most) and no campaign.
    monkeypatch.setattr(restate, "SMALL_KEYS", 3)
    assert campaign_sessions_too_many(changes, published=None)
    monkeypatch.setattr(restate, "SMALL_KEYS", 4)
    assert not campaign_sessions_too_many(changes, published=None)
    monkeypatch.setattr(restate, "SMALL_KEYS", 0)
    without_campaign = Changes(events={"SessionStarted": started.filter("session_id = 'n0'")}, marts={}, sources=changes.sources)
    assert not campaign_sessions_too_many(without_campaign, published=None)
