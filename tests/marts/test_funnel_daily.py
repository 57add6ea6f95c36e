"""funnel_daily against rows worked out by hand from histories_behaviour.funnel_history."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs.marts import funnel_daily as mart
from jobs.marts import restate
from jobs.validation import validate_mart
from tests.histories import as_of
from tests.marts.histories_behaviour import funnel_history, landed_sources

AS_OF = as_of("2026-01-07T00:00:00+00:00")
JAN_5, JAN_6 = dt.date(2026, 1, 5), dt.date(2026, 1, 6)

# (tenant, session date, sessions, with view, with add to cart, with order, with valid order)
EXPECTED = [
    # s1 (view, add, valid o1), s2 (a view on Jan 6, cancelled o2), s4 (nothing).
    ("t1", JAN_5, 3, 2, 1, 2, 1),
    # s3: an add and a valid order, no view.
    ("t1", JAN_6, 1, 0, 1, 1, 1),
    ("t2", JAN_5, 1, 1, 0, 0, 0),
]


@pytest.fixture(scope="module")
def sources(spark, tmp_path_factory):
    return landed_sources(spark, tmp_path_factory.mktemp("funnel"), funnel_history(), mart.INPUTS, AS_OF)


@pytest.fixture(scope="module")
def built(sources):
    return mart.build(sources, AS_OF).cache()


@pytest.fixture(scope="module")
def rows(built):
    return {(row["tenant_id"], row["session_date"]): row for row in built.collect()}


def test_funnel_daily_matches_the_rows_worked_out_by_hand(spark, built):
    expected = spark.createDataFrame(EXPECTED, built.schema)
    assert_df_equality(built, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_session_counts_on_its_own_date_whatever_the_date_of_its_events(rows):
    # s2's only view occurred on Jan 6; s2 started on Jan 5.
    assert (rows["t1", JAN_5]["sessions_with_view"], rows["t1", JAN_6]["sessions_with_view"]) == (2, 0)


def test_the_session_date_is_the_utc_date_of_its_start(rows):
    # s4 started at 00:30 +02:00 on Jan 6, which is Jan 5 in UTC.
    assert rows["t1", JAN_5]["sessions"] == 3


def test_events_naming_an_unknown_session_are_left_out(rows):
    # s-unknown has a view, an add and a valid order; no known t1 session has more than these.
    t1 = [rows["t1", JAN_5], rows["t1", JAN_6]]
    counts = [sum(row[step] for row in t1) for step in ("sessions_with_view", "with_add_to_cart", "with_valid_order")]
    assert counts == [2, 2, 2]


def test_a_cancelled_order_counts_as_an_order_but_not_a_valid_one(rows):
    assert (rows["t1", JAN_5]["with_order"], rows["t1", JAN_5]["with_valid_order"]) == (2, 1)


def test_a_session_can_reach_cart_and_order_without_a_view(rows):
    row = rows["t1", JAN_6]
    assert (row["sessions_with_view"], row["with_add_to_cart"], row["with_valid_order"]) == (0, 1, 1)


def test_a_session_started_twice_over_is_one_session(rows):
    assert rows["t1", JAN_6]["sessions"] == 1


def test_a_tenants_sessions_count_only_its_own_events(rows):
    # t2's s1 shares its id with t1's s1 (add, order); t2's order names s2, which only t1 started.
    row = rows["t2", JAN_5]
    assert (row["sessions_with_view"], row["with_add_to_cart"], row["with_order"]) == (1, 0, 0)


def test_the_built_mart_passes_its_expectations(built):
    result = validate_mart(built, mart.CONTRACT, run_id="test")
    assert result.success, result.summary()


def test_more_valid_orders_than_orders_fails_its_expectations(built):
    broken = built.withColumn("with_valid_order", F.col("with_order") + 1)

    result = validate_mart(broken, mart.CONTRACT, run_id="test")

    assert [failure.expectation for failure in result.failed] == [
        "ExpectRowsToSatisfy(with_valid_order <= with_order AND with_order <= sessions)"
    ]


@pytest.mark.parametrize("small_keys", [100_000, 0], ids=["few sessions: narrowed", "many sessions: whole inputs"])
def test_a_restated_day_is_rebuilt_from_its_sessions_or_from_whole_inputs_when_they_are_many(
    spark, sources, built, monkeypatch, small_keys
):
    # Narrowing by more sessions than restatements broadcast would sort every input against them: at
    # 10M events that ran a 2 GB driver out of memory, so the day is rebuilt from whole inputs instead.
    monkeypatch.setattr(restate, "SMALL_KEYS", small_keys)
    day = spark.createDataFrame([("t1", JAN_6)], "tenant_id string, session_date date")

    narrowed = mart.RESTATE.narrow(sources, restate.materialized(day))
    rebuilt = mart.build(narrowed, AS_OF).join(day, on=["tenant_id", "session_date"], how="left_semi")

    if small_keys:
        assert narrowed["SessionStarted"].count() < sources["SessionStarted"].count()  # only s3's events
    else:
        assert all(narrowed[name] is sources[name] for name in mart.INPUTS)
    assert_df_equality(rebuilt, built.filter((F.col("tenant_id") == "t1") & (F.col("session_date") == JAN_6)), ignore_row_order=True)
