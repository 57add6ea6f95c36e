"""Scenario 2.2.1, after 2.2: a run killed after validation is published late, after a newer run
published. Its retry must be refused, not take gold back in time, and its staging must not stay
behind forever.

Run A stops with its marts staged and validated, never published (what a SIGKILL there leaves: scenario
2.2 kills a process at that point; here A builds and validates in the test's process and stops, so that
no second JVM warms up for a state 2.2 already reaches); run B lands a later delivery and publishes.
B's publication removes A's staging (A can never be published any more), and `publish --run-id A` (an
operator, or the Airflow task of A's DAG run cleared) is refused, naming the run, the mart and B's
publication; gold keeps B's version and rows. No earlier good run: B's is the first publication, which
spares a third run and changes nothing about the rule.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs import pipeline
from jobs.writer_lock import MARTS, holding
from tests.scenarios.deliveries import first_delivery, late_delivery, lines_delivered
from tests.scenarios.warehouse_state import account_landing, gold_state, publications


def test_a_run_killed_before_publication_is_refused_once_a_newer_run_published_and_its_staging_is_removed(
    spark, scenario_settings, tmp_path, scenario_report
):
    row = scenario_report
    row.scenario = "2.2.1 a stale run published late"
    row.injected = (
        "run A stopped after build and validate (as when killed there, 2.2); run B lands a later delivery and "
        "publishes; then A's publish retried"
    )
    settings = scenario_settings
    landing = tmp_path / "landing"
    first_delivery(landing)
    pipeline.land(settings, landing, "A")
    with holding(settings, MARTS):
        pipeline.build(settings, "A")
        pipeline.validate(settings, "A")
    staging_a = Path(settings.table_path("staging", "A"))
    assert set(json.loads((staging_a / "_validated.json").read_text())["validated"]) == set(settings.marts.enabled)
    staged_a = {
        mart: spark.read.format("delta").load(pipeline.staging_path(settings, "A", mart)).count()
        for mart in settings.marts.enabled
    }

    late_delivery(landing)
    row.events_in = lines_delivered(landing)
    pipeline.run(settings, landing, run_id="B")
    newer = gold_state(spark, settings)
    # B's publication made A stale and removed its staging, as it removes its own.
    assert not staging_a.exists() and not Path(settings.table_path("staging", "B")).exists()

    with holding(settings, MARTS), pytest.raises(pipeline.StaleRunRefused) as refused:
        pipeline.publish(settings, "A")

    first_line = str(refused.value).splitlines()[0]
    assert first_line.startswith("run A is older than what is published, nothing published: orders was"), first_line
    assert f"gold.orders holds run B's publication (table version {newer['orders'][0]}" in first_line, first_line
    seen = gold_state(spark, settings)
    row.marts_readable = True  # gold_state read every mart
    row.marts_at_last_good_version = seen == newer
    assert row.marts_at_last_good_version
    assert {run_id for _mart, run_id, _action, _version in publications(spark, settings)} == {"B"}
    # What the refusal kept from gold: B's late order o8, which A's staging lacked.
    assert len(seen["orders"][1]) == staged_a["orders"] + 1
    account_landing(spark, settings.warehouse, row)
    assert row.accounted == row.events_in == 26
    row.outcome = (
        f"B's publication removed A's staging; A's publish refused, gold kept B's version and rows (o8 in): "
        f"'{first_line.split('. ')[0]}'"
    )
