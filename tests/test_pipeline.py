"""Land -> build -> validate -> publish: only validated marts reach gold, and every publication is logged.

A failed validation (a projection bug the expectations catch) is scenario 2.9: tests/scenarios/test_projection_bug.py."""

from __future__ import annotations

import dataclasses

import pytest

from jobs import pipeline
from tests.histories import shop_history

# The stages are what is tested here, not the marts: two marts (one read from the other) keep each
# run short; tests/test_incremental.py and tests/privacy/test_auditor.py run every mart.
MARTS = ("orders", "basket_daily")


def _settings(settings, folder):
    return dataclasses.replace(
        settings, warehouse=str(folder / "warehouse"), marts=dataclasses.replace(settings.marts, enabled=MARTS)
    )


def _publish_shop(settings, folder):
    run_settings = _settings(settings, folder)
    shop_history().write(folder / "landing" / "day1")
    pipeline.run(run_settings, folder / "landing", run_id="first")
    return run_settings, folder / "landing"


@pytest.fixture(scope="module")
def published(settings, tmp_path_factory):
    """The shop history run through the whole pipeline once, into a warehouse of its own (read only)."""
    return _publish_shop(settings, tmp_path_factory.mktemp("published"))


def _gold(spark, run_settings, mart):
    return spark.read.format("delta").load(pipeline.gold_path(run_settings, mart))


def test_a_run_publishes_every_enabled_mart_as_a_delta_table_under_gold(spark, published):
    run_settings, _landing = published
    assert _gold(spark, run_settings, "orders").count() == 7
    assert _gold(spark, run_settings, "basket_daily").count() == 4


def test_each_publication_is_logged_with_version_run_watermark_rows_and_result(spark, published):
    run_settings, _landing = published
    log = {row["mart"]: row for row in spark.read.format("delta").load(f"{run_settings.warehouse}/meta/publications").collect()}
    assert set(log) == set(run_settings.marts.enabled)
    orders = log["orders"]
    assert (orders["contract_version"], orders["run_id"], orders["row_count"], orders["action"]) == ("1.0", "first", 7, "publish")
    assert orders["event_watermark"].isoformat().startswith("2026-01-06T12:00")
    assert orders["validation_result"].startswith("orders: passed")


def test_publishing_a_published_run_again_publishes_nothing_twice(spark, published):
    run_settings, _landing = published
    assert pipeline.publish(run_settings, "first") == []
    log = spark.read.format("delta").load(f"{run_settings.warehouse}/meta/publications")
    assert log.count() == len(run_settings.marts.enabled) and _gold(spark, run_settings, "orders").count() == 7


def test_a_replay_as_of_a_time_counts_only_events_up_to_it_and_leaves_gold_alone(spark, published):
    from datetime import datetime

    run_settings, _landing = published
    paths = pipeline.replay(run_settings, datetime.fromisoformat("2026-01-05T23:59:59+00:00"))

    replayed = spark.read.format("delta").load(paths["orders"])
    # o5 was created on Jan 6; o1 at 01:30 +02:00 on Jan 6 is 23:30 UTC on Jan 5, so it counts.
    assert sorted(r["order_id"] for r in replayed.collect()) == ["o1", "o2", "o3", "o4", "o6", "o7"]
    assert "/replays/as_of=2026-01-05T235959Z/" in paths["orders"]
    assert _gold(spark, run_settings, "orders").count() == 7


def test_a_replay_time_without_an_offset_is_refused(published):
    from datetime import datetime

    run_settings, _landing = published
    with pytest.raises(ValueError, match="needs a UTC offset"):
        pipeline.replay(run_settings, datetime(2026, 1, 5))


def test_publishing_a_run_that_was_not_validated_is_refused(spark, published):
    run_settings, _landing = published
    pipeline.build(run_settings, "unvalidated")  # staged beside the published run's marts, never validated
    with pytest.raises(pipeline.PublicationRefused, match="no passed validation"):
        pipeline.publish(run_settings, "unvalidated")
    log = spark.read.format("delta").load(f"{run_settings.warehouse}/meta/publications")
    assert {row["run_id"] for row in log.collect()} == {"first"}
