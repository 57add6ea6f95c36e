"""A segment added by configuration alone is published at the next run; segment sizes accumulate
across runs from the published table; experiment_results is validated and published like the rest."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs import pipeline
from jobs.config import DEFAULT_CONF_DIR, MartSettings, load_settings
from tests.histories import History
from tests.marts.histories_marketing import customer_history
from tests.marts.test_experiment_results import experiment_history

MARTS = ("orders", "customer_360", "customer_segments", "segment_sizes_daily", "experiment_results")
NEW_SEGMENT = """
  march_buyers:
    expression: last_valid_order_date >= DATE '2026-03-01'
    description: Bought in March or later.
    owner: growth-marketing
"""


def _history_of_other_tenants() -> History:
    """experiment_history under tenants x-t1 and x-t2, so its ids meet none of customer_history's."""
    history = experiment_history()
    for event in history.events:
        event["event_id"], event["tenant_id"] = f"x-{event['event_id']}", f"x-{event['tenant_id']}"
    return history


@pytest.fixture(scope="module")
def runs(spark, settings, tmp_path_factory):
    """Two runs with a segment added to a copy of conf/ (nothing else changed): the first as of
    2026-03-31T10:00Z (customer_history's last event, c5's erasure), the second as of 2026-04-02."""
    folder = tmp_path_factory.mktemp("segments-pipeline")
    conf_dir = folder / "conf"
    shutil.copytree(DEFAULT_CONF_DIR, conf_dir)
    with (conf_dir / "segments.yaml").open("a", encoding="utf-8") as segments:
        segments.write(NEW_SEGMENT)
    configured = load_settings("ci", conf_dir=conf_dir, warehouse=str(folder / "warehouse"))
    run_settings = dataclasses.replace(configured, marts=MartSettings(enabled=MARTS))

    customer_history().write(folder / "landing" / "day1", "customers.ndjson")
    _history_of_other_tenants().write(folder / "landing" / "day1", "experiments.ndjson")
    pipeline.run(run_settings, folder / "landing", run_id="first")
    # Collected now: a cached frame of the table would be refreshed by the next run's overwrite.
    first = _gold(spark, run_settings, "segment_sizes_daily").collect()

    later = History()
    later.add("SessionStarted", "session-s99", {"session_id": "s99", "anonymous_id": "a99", "customer_id": None,
              "source": "direct", "medium": "none", "campaign": None, "device": "mobile", "landing_page": "/"},
              "2026-04-02T09:00:00Z", event_id="later-1")
    later.write(folder / "landing" / "day2", "later.ndjson")
    pipeline.run(run_settings, folder / "landing", run_id="second")
    return run_settings, first


def _gold(spark, run_settings, mart):
    return spark.read.format("delta").load(pipeline.gold_path(run_settings, mart))


def test_a_segment_added_by_configuration_alone_is_published(spark, runs):
    run_settings, _first = runs
    members = {
        (r["tenant_id"], r["customer_id"])
        for r in _gold(spark, run_settings, "customer_segments").filter(F.col("segment") == "march_buyers").collect()
    }
    # Last valid order in March: t1's c1 (Mar 1) and c2 (Mar 31), t2's c1; c5 (Mar 30) is erased.
    assert members == {("t1", "c1"), ("t1", "c2"), ("t2", "c1")}


def test_every_segment_mart_and_experiment_results_was_validated_and_published_in_each_run(spark, runs):
    run_settings, _first = runs
    log = spark.read.format("delta").load(f"{run_settings.warehouse}/meta/publications").collect()
    published = {(row["mart"], row["run_id"]) for row in log if row["validation_result"].split(": ")[1].startswith("passed")}
    assert published == {(mart, run) for mart in MARTS for run in ("first", "second")}


def test_segment_sizes_accumulate_across_runs_keeping_the_first_runs_day(spark, runs):
    run_settings, first = runs
    sizes = _gold(spark, run_settings, "segment_sizes_daily")
    by_day = {(r["tenant_id"], r["as_of_date"], r["segment"]): r["customers"] for r in sizes.collect()}
    assert {day for _t, day, _s in by_day} == {dt.date(2026, 3, 31), dt.date(2026, 4, 2)}
    assert by_day["t1", dt.date(2026, 3, 31), "march_buyers"] == by_day["t1", dt.date(2026, 4, 2), "march_buyers"] == 2
    kept = sizes.filter(F.col("as_of_date") == dt.date(2026, 3, 31))
    assert sorted(kept.collect()) == sorted(first)


def test_experiment_results_are_published_with_their_counts(spark, runs):
    run_settings, _first = runs
    rows = {(r["tenant_id"], r["experiment_id"], r["variant"]): r for r in _gold(spark, run_settings, "experiment_results").collect()}
    assert (rows["x-t1", "exp", "treat"]["visitors"], rows["x-t1", "exp", "treat"]["converters"]) == (3, 2)
    assert rows["x-t1", "exp", "control"]["contaminated_visitors"] == 1


def test_customer_360_and_experiment_results_equal_an_independent_computation_from_the_specs(spark, runs):
    """Both marts as the specs define them, computed in plain Python from the files the two runs landed,
    in their order (tests/oracle, written from ../shared/spec alone): customer_history's consent changes,
    erasure and windows, experiment_history's exposures, contamination and conversions."""
    from jobs.marts import mart_module
    from tests.oracle import events, marts
    from tests.oracle.compare import differences

    run_settings, _first = runs
    landing = Path(run_settings.warehouse).parent / "landing"
    landed = events.land([*sorted((landing / "day1").glob("*.ndjson")), *sorted((landing / "day2").glob("*.ndjson"))])
    for mart in ("customer_360", "experiment_results"):
        rows = marts.computed(mart, landed, events.as_of(landed), run_settings.experiments.splits)
        assert rows, mart
        assert differences(_gold(spark, run_settings, mart), rows, mart_module(mart).CONTRACT.key) == [], mart
