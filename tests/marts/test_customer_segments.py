"""customer_segments and segment_sizes_daily against memberships worked out by hand from
histories_marketing.customer_history (customer_360's rows are in test_customer_360.EXPECTED).

Of t1's customers: c1 has 2 valid orders, recency 3, email consent withdrawn by its latest change
(whose clock says earlier), sms consent granted; c2 has 2 valid orders, recency 5, email consent
granted; c3 has 2 valid orders, recency 2, no consent event; c4 no valid order (null scores); c5 one
valid order, recency 4, erased. t2's c1: 1 valid order, recency 5, no consent event.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs.marts import MART_NAMES, customer_360, customer_segments, segment_sizes_daily
from jobs.segments import contract_columns, parse_definitions
from tests.histories import as_of
from tests.marts.histories_marketing import customer_history, landed_sources

AS_OF = as_of("2026-03-31T12:00:00+00:00")
SEGMENTS = parse_definitions(
    {
        "segments": {
            "buyers": {"expression": "valid_orders > 0", "description": "d", "owner": "o"},
            "buyers_email": {"expression": "valid_orders > 0", "description": "d", "owner": "o", "channel": "email"},
            "reachable_by_sms": {"expression": "valid_orders >= 0", "description": "d", "owner": "o", "channel": "sms"},
            "recent": {"expression": "recency_score >= 4", "description": "d", "owner": "o"},
            "nobody": {"expression": "valid_orders > 100", "description": "d", "owner": "o"},
        }
    },
    contract_columns(),
)
CONTEXT = dataclasses.replace(AS_OF, segments=SEGMENTS)
MEMBERS = {
    ("t1", "buyers"): {"c1", "c2", "c3"},  # c5 bought but is erased
    ("t2", "buyers"): {"c1"},
    ("t1", "buyers_email"): {"c2"},  # c1 withdrew, c3 never consented
    ("t1", "reachable_by_sms"): {"c1"},
    ("t1", "recent"): {"c2"},  # c5 (4) is erased; c4's null score is not >= 4
    ("t2", "recent"): {"c1"},
}


@pytest.fixture(scope="module")
def sources(spark, tmp_path_factory):
    inputs = dict.fromkeys(name for name in (*customer_360.INPUTS, *customer_segments.INPUTS) if name not in MART_NAMES)
    landed = landed_sources(spark, tmp_path_factory.mktemp("segments"), customer_history(), tuple(inputs), AS_OF)
    landed["customer_360"] = customer_360.build(landed, AS_OF).cache()
    return landed


@pytest.fixture(scope="module")
def memberships(sources):
    frame = customer_segments.build(sources, CONTEXT).cache()
    yield frame
    frame.unpersist()


def _members(frame) -> dict[tuple[str, str], set[str]]:
    found: dict[tuple[str, str], set[str]] = {}
    for row in frame.collect():
        found.setdefault((row["tenant_id"], row["segment"]), set()).add(row["customer_id"])
    return found


def test_memberships_match_those_worked_out_by_hand(memberships):
    assert _members(memberships) == MEMBERS


def test_each_row_carries_the_segments_channel_and_the_runs_as_of_time(memberships):
    rows = {(r["tenant_id"], r["segment"], r["customer_id"]): r for r in memberships.collect()}
    assert rows["t1", "buyers_email", "c2"]["channel"] == "email"
    assert rows["t1", "buyers", "c1"]["channel"] is None
    assert {r["as_of"] for r in rows.values()} == {dt.datetime(2026, 3, 31, 12, 0)}


def test_an_email_segment_holds_only_customers_whose_latest_email_consent_granted_it(memberships):
    # c1 granted, then withdrew by a later stream version whose clock says earlier; c3 never said.
    email_members = _members(memberships)[("t1", "buyers_email")]
    assert email_members == {"c2"} and _members(memberships)[("t1", "buyers")] >= {"c1", "c3"}


def test_an_erased_customer_is_in_no_segment_even_without_the_is_erased_column(sources):
    without_column = {**sources, "customer_360": sources["customer_360"].drop("is_erased")}
    assert _members(customer_segments.build(without_column, CONTEXT)) == MEMBERS


def test_a_customer_marked_erased_in_customer_360_is_in_no_segment_without_an_erasure_event(sources):
    marked = sources["customer_360"].withColumn(
        "is_erased", F.col("is_erased") | ((F.col("tenant_id") == "t1") & (F.col("customer_id") == "c2"))
    )
    found = _members(customer_segments.build({**sources, "customer_360": marked}, CONTEXT))
    assert all("c2" not in members for (tenant, _segment), members in found.items() if tenant == "t1")
    assert found[("t1", "buyers")] == {"c1", "c3"}


def test_without_segments_the_mart_is_empty_with_its_contract(sources):
    frame = customer_segments.build(sources, AS_OF)
    assert frame.count() == 0 and frame.columns == list(customer_segments.CONTRACT.column_names)


# --- segment_sizes_daily ---------------------------------------------------------------------------

def _sizes(frame) -> dict[tuple[str, dt.date, str], int]:
    return {(r["tenant_id"], r["as_of_date"], r["segment"]): r["customers"] for r in frame.collect()}


def _context(timestamp: str, published=None, segments=SEGMENTS):
    return dataclasses.replace(as_of(timestamp), segments=segments, read_published=lambda mart: published)


def _build_sizes(sources, memberships, context):
    inputs = {**sources, "customer_segments": memberships}
    return segment_sizes_daily.build(inputs, context).cache()


def test_sizes_count_every_defined_segment_in_every_tenant_with_zero_for_an_empty_one(sources, memberships):
    sizes = _sizes(_build_sizes(sources, memberships, CONTEXT))
    day = dt.date(2026, 3, 31)
    expected = {(t, day, s.name): len(MEMBERS.get((t, s.name), set())) for t in ("t1", "t2") for s in SEGMENTS}
    assert sizes == expected and sizes[("t1", day, "nobody")] == 0


def test_sizes_accumulate_across_days_and_a_rerun_on_the_same_day_replaces_only_that_day(spark, sources, memberships):
    first = _build_sizes(sources, memberships, _context("2026-03-31T12:00:00+00:00"))
    second = _build_sizes(sources, memberships, _context("2026-04-01T08:00:00+00:00", published=first))
    later_same_day = _build_sizes(sources, memberships, _context("2026-04-01T09:30:00+00:00", published=second))

    days = sorted({r["as_of_date"] for r in later_same_day.collect()})
    assert days == [dt.date(2026, 3, 31), dt.date(2026, 4, 1)]
    assert later_same_day.count() == 2 * first.count()
    kept = later_same_day.filter(F.col("as_of_date") == dt.date(2026, 3, 31))
    assert_df_equality(kept, first, ignore_row_order=True)
    assert {r["as_of"] for r in later_same_day.filter(F.col("as_of_date") == dt.date(2026, 4, 1)).collect()} == {
        dt.datetime(2026, 4, 1, 9, 30)
    }


def test_a_rerun_with_the_same_as_of_rewrites_the_same_rows(sources, memberships):
    once = _build_sizes(sources, memberships, _context("2026-04-01T08:00:00+00:00"))
    again = _build_sizes(sources, memberships, _context("2026-04-01T08:00:00+00:00", published=once))
    assert_df_equality(again, once, ignore_row_order=True)


def test_a_replay_as_of_an_earlier_day_shows_only_the_days_up_to_it(sources, memberships):
    first = _build_sizes(sources, memberships, _context("2026-03-31T12:00:00+00:00"))
    second = _build_sizes(sources, memberships, _context("2026-04-01T08:00:00+00:00", published=first))
    replayed = _build_sizes(sources, memberships, _context("2026-03-31T18:00:00+00:00", published=second))
    assert {r["as_of_date"] for r in replayed.collect()} == {dt.date(2026, 3, 31)}
    assert {r["as_of"] for r in replayed.collect()} == {dt.datetime(2026, 3, 31, 18, 0)}


def test_a_segment_removed_from_configuration_keeps_its_past_days(sources, memberships):
    first = _build_sizes(sources, memberships, _context("2026-03-31T12:00:00+00:00"))
    fewer = tuple(s for s in SEGMENTS if s.name != "nobody")
    second = _build_sizes(sources, memberships, _context("2026-04-01T08:00:00+00:00", published=first, segments=fewer))
    nobody_days = {r["as_of_date"] for r in second.filter(F.col("segment") == "nobody").collect()}
    assert nobody_days == {dt.date(2026, 3, 31)}
