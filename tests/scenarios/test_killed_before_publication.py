"""Scenario 2.2: a run is killed (SIGKILL) after staging and before publication; readers see the last
good marts; a rerun publishes once.

The rerun publishes the killed run, as the marts DAG's publish task does for its run and an operator
with `publish --run-id`. A new `run` works too (this test passed with one at first) but builds and
validates everything again, minutes more on two shared cores."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from jobs import pipeline
from jobs.writer_lock import MARTS, holding
from tests.scenarios.child import kill_at
from tests.scenarios.warehouse_state import account_landing, gold_state, publications, published_then_late


def test_a_run_killed_between_validation_and_publication_leaves_the_last_good_marts_and_its_retry_publishes_once(
    spark, scenario_settings, tmp_path, scenario_report
):
    row = scenario_report
    row.scenario = "2.2 run killed before publication"
    row.injected = (
        "SIGKILL of the process (driver, JVM, workers) that built and validated a run, before publish; "
        "then publish retried, twice"
    )
    landing = tmp_path / "landing"
    good = published_then_late(spark, scenario_settings, landing, row)
    pipeline.land(scenario_settings, landing, "killed")

    status = kill_at(
        "validated", tmp_path / "killed", warehouse=scenario_settings.warehouse, marts=scenario_settings.marts.enabled,
        run_id="killed", steps=("build", "validate"),
    )

    assert status == -signal.SIGKILL
    # Killed with everything ready to publish: the run's marts staged, its validation passed.
    marker = Path(scenario_settings.table_path("staging", "killed")) / "_validated.json"
    assert set(json.loads(marker.read_text())["validated"]) == set(scenario_settings.marts.enabled)
    # Readers see the last good publication: same table versions, same rows, nothing new in the log.
    seen = gold_state(spark, scenario_settings)
    row.marts_readable = True  # gold_state read every mart
    row.marts_at_last_good_version = seen == good
    assert row.marts_at_last_good_version
    assert {run_id for _mart, run_id, _action, _version in publications(spark, scenario_settings)} == {"good"}

    # `publish --run-id killed`, twice (a retried Airflow task): the killed process's marts lease names
    # a dead process, so the first takes it without waiting.
    with holding(scenario_settings, MARTS):
        pipeline.publish(scenario_settings, "killed")
    with holding(scenario_settings, MARTS):
        assert pipeline.publish(scenario_settings, "killed") == []

    account_landing(spark, scenario_settings.warehouse, row)
    assert row.accounted == row.events_in == 26
    after = gold_state(spark, scenario_settings)
    new_entries = [entry for entry in publications(spark, scenario_settings) if entry[1] != "good"]
    assert sorted(new_entries) == sorted(
        (mart, "killed", "publish", good[mart][0] + 1) for mart in scenario_settings.marts.enabled
    )
    assert {mart: version for mart, (version, _rows) in after.items()} == {mart: v + 1 for mart, (v, _r) in good.items()}
    assert len(after["orders"][1]) == len(good["orders"][1]) + 1  # o8, the late order
    row.outcome = (
        "readers kept the last good version while the killed run's validated staging sat unpublished; "
        "the retried publish published each mart once (one new log entry per mart, table version +1, the late "
        "order in), and a second retry published nothing"
    )
