"""Scenario 2.11: bad configuration (a missing key, a wrong type, a bad segment expression, a backfill
range with start after end) is refused before anything is written.

Each case runs the real command line (`python -m jobs run` or `backfill`) in a process of its own, on
a copy of conf/ chosen as an operator would (LAKEHOUSE_CONF_DIR, LAKEHOUSE_ENV), with a delivery
waiting in the landing folder and a warehouse path that does not exist yet: any folder or file a
command makes before refusing would show. The refusals need no Spark, so each case costs a second.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobs.config import DEFAULT_CONF_DIR, PROJECT_ROOT
from tests.scenarios.deliveries import first_delivery, lines_delivered


@dataclass(frozen=True)
class BadConfiguration:
    name: str
    file: str  # the file of the configuration copy that is edited
    replace: tuple[str, str]  # the text of that file, and what it becomes
    command: tuple[str, ...]  # after `python -m jobs`; {landing} and {warehouse} filled in
    message: str  # what the error must say: the key, the expression or the arguments


RUN = ("run", "--landing", "{landing}", "--warehouse", "{warehouse}", "--run-id", "refused")
CASES = (
    BadConfiguration(
        "a missing key", "base.yaml", ("  app_name: lakehouse\n", ""), RUN,
        "configuration error: missing key spark.app_name",
    ),
    BadConfiguration(
        "a wrong type", "ci.yaml", ("  shuffle_partitions: 1\n", "  shuffle_partitions: four\n"), RUN,
        "configuration error: spark.shuffle_partitions must be an integer, got 'four'",
    ),
    BadConfiguration(
        "a bad segment expression", "segments.yaml",
        ("expression: valid_orders_90d > 5\n", "expression: valid_orders_90d > 5 AND lifetime_value_cents > 100\n"), RUN,
        "configuration error: segment 'frequent_buyers_90d': unknown column 'lifetime_value_cents'",
    ),
    BadConfiguration(
        "a backfill range with start after end", "", ("", ""),
        ("backfill", "--start", "2026-01-07", "--end", "2026-01-05", "--warehouse", "{warehouse}", "--run-id", "refused"),
        "refused: start 2026-01-07 is after end 2026-01-05",
    ),
)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name.replace(" ", "-"))
def test_bad_configuration_is_refused_naming_it_before_anything_is_written(case, tmp_path, scenario_report):
    row = scenario_report
    row.scenario = f"2.11 bad configuration: {case.name}"
    row.injected = f"`python -m jobs {case.command[0]}` with {case.name}" + (f" in {case.file}" if case.file else "")
    conf = tmp_path / "conf"
    shutil.copytree(DEFAULT_CONF_DIR, conf)
    if case.file:
        original, bad = case.replace
        text = (conf / case.file).read_text()
        assert original in text, f"{case.file} no longer holds {original!r}: the case needs a new edit"
        (conf / case.file).write_text(text.replace(original, bad, 1))
    landing, warehouse, workdir = tmp_path / "landing", tmp_path / "warehouse", tmp_path / "workdir"
    first_delivery(landing)
    workdir.mkdir()
    waiting = lines_delivered(landing)  # not events in: none may land
    landing_before = _snapshot(landing)

    command = [part.format(landing=landing, warehouse=warehouse) for part in case.command]
    done = subprocess.run(
        [sys.executable, "-m", "jobs", *command], cwd=workdir, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "LAKEHOUSE_ENV": "ci", "LAKEHOUSE_CONF_DIR": str(conf)},
    )

    error = done.stderr.strip()
    assert done.returncode == 2, f"exit status {done.returncode}:\n{done.stdout}\n{error}"
    assert case.message in error
    assert "Traceback" not in error
    # Nothing written: no warehouse folder, the delivery as it was, nothing in the working folder.
    assert not warehouse.exists()
    assert _snapshot(landing) == landing_before
    assert list(workdir.iterdir()) == []
    row.outcome = (
        f"refused with exit status 2, no warehouse made, the {waiting} lines waiting in landing untouched: "
        f"{error.splitlines()[-1][:160]}"
    )


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}
