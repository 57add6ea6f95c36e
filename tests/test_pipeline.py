"""Land -> build -> validate -> publish: only validated marts reach gold, and every publication is logged."""

from __future__ import annotations

import dataclasses

import pytest

from jobs import pipeline
from jobs.marts import basket_daily
from jobs.validation import ValidationFailed
from tests.histories import History, shop_history

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


def _latest_version(spark, run_settings, mart):
    from jobs.tables import latest_version

    return latest_version(spark, pipeline.gold_path(run_settings, mart))


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


def test_a_failed_validation_publishes_nothing_and_names_mart_and_expectation(spark, settings, tmp_path, monkeypatch):
    run_settings, landing = _publish_shop(settings, tmp_path)
    versions_before = {m: _latest_version(spark, run_settings, m) for m in run_settings.marts.enabled}
    history = History()
    history.add("OrderCreated", "order-o8", {"order_id": "o8", "cart_id": None, "customer_id": "c8", "session_id": None,
                "items": [], "total_cents": 100, "currency": "EUR", "order_source": "web"}, "2026-01-07T10:00:00Z",
                schema_version=3)
    history.write(landing / "day2", "late.ndjson")
    correct = basket_daily.build
    # A projection bug: every row twice, so the mart's key is no longer unique.
    monkeypatch.setattr(basket_daily, "build", lambda sources, context: correct(sources, context).unionAll(correct(sources, context)))

    with pytest.raises(ValidationFailed) as failure:
        # In full, so the bug reaches every row (a restatement rebuilds only the days o8 touches).
        pipeline.run(run_settings, landing, run_id="second", full=True)

    message = str(failure.value)
    assert "basket_daily" in message and "Unique" in message
    assert {m: _latest_version(spark, run_settings, m) for m in run_settings.marts.enabled} == versions_before
    runs = {row["run_id"] for row in spark.read.format("delta").load(f"{run_settings.warehouse}/meta/publications").collect()}
    assert runs == {"first"}


def test_publishing_a_run_that_was_not_validated_is_refused(settings, tmp_path):
    run_settings = _settings(settings, tmp_path)
    shop_history().write(tmp_path / "landing")
    pipeline.land(run_settings, tmp_path / "landing", "unvalidated")
    pipeline.build(run_settings, "unvalidated")
    with pytest.raises(pipeline.PublicationRefused, match="no passed validation"):
        pipeline.publish(run_settings, "unvalidated")
