"""Scenario 2.1: the landing process is killed (SIGKILL) mid-write; a rerun finishes it, the ledger adds
up and nothing is doubled."""

from __future__ import annotations

import signal

from pyspark.sql import functions as F

from jobs import pipeline
from jobs.tables import BRONZE_EVENTS, LANDING_LEDGER, QUARANTINE, read_table
from jobs.writer_lock import BRONZE, holding
from tests.scenarios.child import kill_at
from tests.scenarios.deliveries import first_delivery, late_delivery, lines_delivered
from tests.scenarios.warehouse_state import account_landing


def test_landing_killed_between_its_bronze_and_ledger_commits_is_finished_by_a_rerun_counting_every_line_once(
    spark, scenario_settings, tmp_path, scenario_report
):
    row = scenario_report
    row.scenario = "2.1 landing killed mid-write"
    row.injected = (
        "SIGKILL of a landing process (driver, JVM, workers) after its bronze commit, before the ledger commit; "
        "then a rerun"
    )
    warehouse = scenario_settings.warehouse
    landing = tmp_path / "landing"
    first_delivery(landing)
    late_delivery(landing)
    row.events_in = lines_delivered(landing)

    status = kill_at(
        "bronze-committed", tmp_path / "killed", warehouse=warehouse, marts=scenario_settings.marts.enabled,
        run_id="killed", steps=("land",), landing=landing,
    )

    assert status == -signal.SIGKILL
    # Killed mid-write: bronze holds the events, the quarantine the broken line, no file is marked landed.
    bronze = read_table(spark, BRONZE_EVENTS, warehouse)
    assert bronze.filter(F.col("landing_run_id") == "killed").count() == bronze.count() > 0
    assert read_table(spark, QUARANTINE, warehouse).count() == 1
    assert read_table(spark, LANDING_LEDGER, warehouse).count() == 0

    # The killed command's lease names a dead process: the rerun takes it without waiting.
    with holding(scenario_settings, BRONZE):
        rerun = pipeline.land(scenario_settings, landing, "rerun")

    account_landing(spark, warehouse, row)
    ledger = read_table(spark, LANDING_LEDGER, warehouse).collect()
    assert len(ledger) == 2 and all(r["lines_read"] == r["landed"] + r["duplicates"] + r["quarantined"] for r in ledger)
    assert row.accounted == row.events_in == rerun.total("lines_read") == 26
    assert (row.landed, row.duplicates, row.quarantined) == (23, 2, 1)
    bronze = read_table(spark, BRONZE_EVENTS, warehouse)
    assert bronze.count() == bronze.select("event_id").distinct().count() == 23
    assert read_table(spark, QUARANTINE, warehouse).count() == 1
    row.outcome = (
        "the rerun landed both files: each line counted once (those the killed run had put in bronze as landed, "
        "not as duplicates), no event twice in bronze, the broken line quarantined once"
    )
