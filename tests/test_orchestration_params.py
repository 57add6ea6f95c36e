"""The DAGs' params, checked by jobs.orchestration before any job starts (no Spark here)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from jobs.config import load_settings
from jobs.orchestration import ParamError, backfill_request, checked_marts, maintenance_retention, replay_as_of


@pytest.fixture(scope="module")
def conf():
    return load_settings("ci", warehouse="/tmp/unused-warehouse")


def test_a_backfill_range_is_two_dates_with_the_enabled_marts_by_default(conf):
    request = backfill_request(conf, "2026-01-05", "2026-01-07", None)
    assert (request.start, request.end) == (date(2026, 1, 5), date(2026, 1, 7))
    assert set(request.marts) == set(conf.marts.enabled)


def test_a_backfill_of_one_day_is_allowed(conf):
    assert backfill_request(conf, "2026-01-05", "2026-01-05", ["orders"]).marts == ("orders",)


def test_a_backfill_whose_start_is_after_its_end_is_refused(conf):
    with pytest.raises(ParamError, match="start 2026-01-08 is after end 2026-01-07"):
        backfill_request(conf, "2026-01-08", "2026-01-07", None)


@pytest.mark.parametrize("bad", ["2026-13-01", "05/01/2026", "2026-01-05T00:00:00", "", None, "2026-W02-1"])
def test_a_backfill_start_that_is_not_a_date_is_refused_naming_the_param(conf, bad):
    with pytest.raises(ParamError, match="^start "):
        backfill_request(conf, bad, "2026-01-07", None)


def test_a_backfill_ending_in_the_future_is_refused(conf):
    tomorrow = (datetime.now(timezone.utc).date() + timedelta(days=1)).isoformat()
    with pytest.raises(ParamError, match=f"end {tomorrow} is in the future"):
        backfill_request(conf, "2026-01-05", tomorrow, None)


def test_a_backfill_of_an_unknown_mart_is_refused_listing_the_marts(conf):
    with pytest.raises(ParamError, match=r"unknown mart\(s\) \['ordres'\]; marts: orders"):
        backfill_request(conf, "2026-01-05", "2026-01-07", ["orders", "ordres"])


def test_a_backfill_of_a_mart_that_is_not_enabled_is_refused():
    conf = load_settings("ci", warehouse="/tmp/unused", overrides={"marts": {"enabled": ["orders"]}})
    with pytest.raises(ParamError, match=r"\['basket_daily'\] that are not enabled"):
        checked_marts(conf, ["basket_daily"])


def test_marts_come_back_in_build_order_whatever_order_they_are_named_in(conf):
    assert checked_marts(conf, ["basket_daily", "orders"]) == ("orders", "basket_daily")


def test_a_replay_time_with_an_offset_is_read_in_utc():
    assert replay_as_of("2026-01-20T01:00:00+01:00") == datetime(2026, 1, 20, tzinfo=timezone.utc)
    assert replay_as_of("2026-01-20T00:00:00Z") == datetime(2026, 1, 20, tzinfo=timezone.utc)


def test_a_replay_time_without_an_offset_is_refused():
    with pytest.raises(ParamError, match=r"as_of 2026-01-20T00:00:00 has no UTC offset"):
        replay_as_of("2026-01-20T00:00:00")


@pytest.mark.parametrize("bad", ["yesterday", "", None])
def test_a_replay_time_that_is_not_a_time_is_refused(bad):
    with pytest.raises(ParamError, match="as_of"):
        replay_as_of(bad)


def test_maintenance_uses_the_configured_retention_by_default(conf):
    assert maintenance_retention(conf, None, False) == conf.maintenance.retention_hours >= 168


def test_a_retention_below_the_floor_is_refused_unless_forced(conf):
    with pytest.raises(ParamError, match="retention_hours: a retention of 24 hours is below the minimum of 168"):
        maintenance_retention(conf, 24, False)
    assert maintenance_retention(conf, 24, True) == 24


@pytest.mark.parametrize("bad", [-1, 1.5, "168", True])
def test_a_retention_that_is_not_a_whole_number_of_hours_is_refused(conf, bad):
    with pytest.raises(ParamError, match="retention"):
        maintenance_retention(conf, bad, True)
