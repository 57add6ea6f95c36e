"""Scenario 2.10: a write fails because the disk is full (a small filesystem made by the test): the run
fails clearly, the table stays at its previous version, and a rerun after space is freed succeeds.

Clearly: the error's first line names the step, the mart, the root cause and the version readers keep
(jobs/failures.py), not Spark's Py4J trace, which stays chained below it."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from jobs import pipeline
from jobs.failures import StepFailed
from tests.scenarios.warehouse_state import account_landing, gold_state, publications, published_then_late

# Room for the first publication of the scenario's marts (a few kB each) and little more.
GOLD_SIZE = "8m"


@pytest.fixture
def gold_on_a_small_filesystem(scenario_settings):
    """`<warehouse>/gold` on a tmpfs of its own, unmounted at the end: only the published tables can
    run out of space, so the failure is publication's, after everything before it succeeded."""
    gold = Path(scenario_settings.warehouse) / "gold"
    gold.mkdir(parents=True)
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={GOLD_SIZE}", "scenario-gold", str(gold)], capture_output=True, text=True
        )
    except FileNotFoundError:
        pytest.skip("no mount command: the disk-full scenario needs a small tmpfs of its own")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    yield gold
    # Lazily if Spark still holds a file open there: the mount then goes as soon as it is closed.
    if subprocess.run(["umount", str(gold)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "--lazy", str(gold)], check=True)


def fill(folder: Path) -> Path:
    """Write zeros into `folder` until its filesystem has no byte left; return the file to delete."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as file:
        for chunk in (b"\0" * (1 << 20), b"\0" * 4096, b"\0"):
            try:
                while True:
                    file.write(chunk)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
    assert os.statvfs(folder).f_bavail == 0
    return filler


def test_a_publication_that_runs_out_of_disk_fails_saying_so_keeps_the_last_good_version_and_a_retry_publishes(
    spark, scenario_settings, gold_on_a_small_filesystem, tmp_path, scenario_report
):
    row = scenario_report
    row.scenario = "2.10 disk full"
    row.injected = f"gold on a {GOLD_SIZE} tmpfs filled to the last byte before a run; space freed, then publish retried"
    landing = tmp_path / "landing"
    good = published_then_late(spark, scenario_settings, landing, row)
    filler = fill(gold_on_a_small_filesystem)

    with pytest.raises(StepFailed) as failure:
        pipeline.run(scenario_settings, landing, run_id="disk-full")

    first_line = str(failure.value).splitlines()[0]
    (mart,) = scenario_settings.marts.enabled
    assert first_line.startswith(f"publish of mart {mart} failed: "), first_line
    assert "No space left on device" in first_line, first_line
    assert first_line.endswith(f"gold.{mart} keeps version {good[mart][0]}"), first_line
    # Spark's own error stays chained, for the whole trace.
    trace = str(failure.value.__cause__).splitlines()
    said = [number for number, line in enumerate(trace, 1) if "No space left on device" in line]
    assert said, "\n".join(trace[:40])
    seen = gold_state(spark, scenario_settings)
    row.marts_readable = True  # gold_state read every mart
    row.marts_at_last_good_version = seen == good
    assert row.marts_at_last_good_version
    assert {run_id for _mart, run_id, _action, _version in publications(spark, scenario_settings)} == {"good"}

    # It failed in publish: the run's marts were staged and their validation had passed.
    assert (Path(scenario_settings.table_path("staging", "disk-full")) / "_validated.json").exists()

    filler.unlink()
    pipeline.publish(scenario_settings, "disk-full")

    account_landing(spark, scenario_settings.warehouse, row)
    assert row.accounted == row.events_in == 26
    new_entries = [entry for entry in publications(spark, scenario_settings) if entry[1] != "good"]
    assert sorted(new_entries) == sorted(
        (mart, "disk-full", "publish", good[mart][0] + 1) for mart in scenario_settings.marts.enabled
    )
    assert len(gold_state(spark, scenario_settings)["orders"][1]) == len(good["orders"][1]) + 1
    row.outcome = (
        f"the run failed in publish, after land, build and validate passed, with {type(failure.value).__name__} "
        f"'{first_line.replace(scenario_settings.warehouse, '<warehouse>')}' (Spark's trace chained below, "
        f"saying it on line {said[0]} of {len(trace)}); gold unchanged, "
        "nothing logged; the retried publish published each mart once"
    )
