"""Scenario 2.4: a scheduled run and a backfill write the same mart at the same time. One waits for the
other (or, told not to wait, fails naming the writer), and the result equals running them one after
the other.

Both are the real command line with a configuration folder of the test's (conf/ with two marts enabled),
as an operator with their own conf/ would run them: the run is `python -m jobs run` in a process of its
own, the backfill the same command's entry point (`jobs.__main__.main`) in the test's process, whose
Spark session has run pipelines before. Another process would be a third JVM warming up on the two
shared cores, two minutes of the test's four; the writer lock tells the two writers apart by process,
whichever started them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from jobs import pipeline
from jobs.__main__ import main
from jobs.config import PROJECT_ROOT
from jobs.writer_lock import locks_for
from tests.scenarios.deliveries import first_delivery, late_delivery, lines_delivered
from tests.scenarios.warehouse_state import account_landing, gold_state, publications

MARTS = ("orders", "basket_daily")
BACKFILLED_DAY = "2026-01-07"  # the late delivery's day


def _conf_dir(folder: Path, wait_minutes: int) -> Path:
    """conf/ as shipped, with the ci overlay enabling MARTS and waiting `wait_minutes` for a writer."""
    conf = folder / f"conf-wait-{wait_minutes}"
    shutil.copytree(PROJECT_ROOT / "conf", conf)
    overlay = yaml.safe_load((conf / "ci.yaml").read_text())
    overlay["marts"] = {"enabled": list(MARTS)}
    overlay["writer_lock"] = {"wait_minutes": wait_minutes}
    # Two JVMs besides the test session's share the machine.
    overlay["spark"]["driver_memory"] = "1g"
    (conf / "ci.yaml").write_text(yaml.safe_dump(overlay))
    return conf


def _jobs(conf: Path, log: Path, *arguments: str) -> subprocess.Popen:
    environ = {**os.environ, "LAKEHOUSE_CONF_DIR": str(conf), "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "jobs", *arguments, "--env", "ci"],
            cwd=PROJECT_ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )


def _wait_for_marts_lease(settings, process: subprocess.Popen, log: Path, timeout_seconds: float = 300):
    """The scheduled run's lease on the marts, as soon as its process has taken it."""
    locks = locks_for(settings)
    deadline = time.monotonic() + timeout_seconds
    while (holder := locks.holder("marts")) is None:
        assert process.poll() is None, f"the run ended ({process.returncode}) before taking its lease:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"the run took no lease in {timeout_seconds:.0f} s:\n{log.read_text()}"
        time.sleep(0.1)
    return holder


def test_a_backfill_started_during_a_scheduled_run_waits_for_it_and_the_result_equals_running_them_in_turn(
    spark, scenario_settings, tmp_path, scenario_report, monkeypatch, caplog, capsys
):
    row = scenario_report
    row.scenario = "2.4 a scheduled run and a backfill at once"
    row.injected = (
        f"`backfill --marts basket_daily` of {BACKFILLED_DAY} started while a `run` holds the marts; "
        "and one more backfill told not to wait (writer_lock.wait_minutes: 0)"
    )
    settings = dataclasses.replace(scenario_settings, marts=dataclasses.replace(scenario_settings.marts, enabled=MARTS))
    warehouse = settings.warehouse
    landing = tmp_path / "landing"
    first_delivery(landing)
    late_delivery(landing)
    row.events_in = lines_delivered(landing)
    waiting_conf, impatient_conf = _conf_dir(tmp_path, 10), _conf_dir(tmp_path, 0)

    scheduled_log = tmp_path / "run.log"
    scheduled = _jobs(waiting_conf, scheduled_log, "run", "--warehouse", warehouse, "--landing", str(landing), "--run-id", "scheduled")
    holder = _wait_for_marts_lease(settings, scheduled, scheduled_log)
    assert holder.pid == scheduled.pid

    # Told not to wait: refused at once, naming the writer, before anything of its own is written.
    impatient_log = tmp_path / "impatient.log"
    impatient = _jobs(
        impatient_conf, impatient_log, "backfill", "--warehouse", warehouse, "--start", BACKFILLED_DAY,
        "--end", BACKFILLED_DAY, "--marts", "basket_daily", "--run-id", "impatient",
    )
    assert impatient.wait(timeout=120) == 1
    refusal = impatient_log.read_text()
    assert "WarehouseBusy: the marts tables are being written by" in refusal and str(scheduled.pid) in refusal
    assert scheduled.poll() is None, "the scheduled run must still hold the marts while the refusal is checked"

    monkeypatch.setenv("LAKEHOUSE_CONF_DIR", str(waiting_conf))
    with caplog.at_level(logging.INFO, logger="jobs"):
        backfilled = main([
            "backfill", "--env", "ci", "--warehouse", warehouse, "--start", BACKFILLED_DAY, "--end", BACKFILLED_DAY,
            "--marts", "basket_daily", "--run-id", "backfill",
        ])
    assert backfilled == 0, capsys.readouterr().err[-4000:]
    assert re.search(rf"lock marts: waiting for .*pid {scheduled.pid},", caplog.text), caplog.text[-4000:]
    assert scheduled.wait(timeout=900) == 0, scheduled_log.read_text()

    # One after the other: every publication of the run, then every one of the backfill; nothing of
    # the refused backfill.
    log = publications(spark, settings)
    runs = [run for _, run, _, _ in log]
    turn = runs.index("backfill")
    assert set(runs[:turn]) == {"scheduled"} and set(runs[turn:]) == {"backfill"}, runs
    assert {mart for mart, run, _, _ in log if run == "scheduled"} == set(MARTS)
    assert ("basket_daily", "backfill") in {(mart, run) for mart, run, _, _ in log}
    assert not (Path(warehouse) / "staging" / "impatient").exists()

    # The result equals the two in turn: each published mart equals a full rebuild from every event,
    # which is what the run followed by the backfill publishes.
    published = gold_state(spark, settings)
    pipeline.build(settings, "rebuild", full=True)
    for mart in MARTS:
        rebuilt = sorted(map(tuple, spark.read.format("delta").load(pipeline.staging_path(settings, "rebuild", mart)).collect()))
        assert published[mart][1] == rebuilt, mart
    account_landing(spark, warehouse, row)
    assert row.accounted == row.events_in
    row.marts_readable = True
    row.marts_at_last_good_version = None
    row.outcome = (
        "the backfill waited for the run's marts lease, then published; the one told not to wait was refused "
        "naming the run's process; publications in turn, and the marts equal a full rebuild"
    )
