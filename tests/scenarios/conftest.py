"""The failure scenarios' fixtures: the report row each scenario fills, and a warehouse for one scenario.

Rows go to the file named by LAKEHOUSE_SCENARIO_REPORT (what `make scenarios` sets), else to
`scenarios.jsonl` in pytest's base temporary folder.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from tests.scenarios import report

REPORT_ENV = "LAKEHOUSE_SCENARIO_REPORT"
_CALL_REPORT = pytest.StashKey[pytest.TestReport]()
# One mart: a run costs minutes on two shared cores, and the scenarios are about the steps, not the marts.
SCENARIO_MARTS = ("orders",)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep the test's own verdict (its call phase, or a failed setup) for `scenario_report`."""
    test_report = yield
    if test_report.when == "call" or (test_report.when == "setup" and not test_report.passed):
        item.stash[_CALL_REPORT] = test_report
    return test_report


def report_path(tmp_path_factory) -> Path:
    configured = os.environ.get(REPORT_ENV)
    return Path(configured) if configured else tmp_path_factory.getbasetemp() / "scenarios.jsonl"


@pytest.fixture
def scenario_report(request, tmp_path_factory):
    """The test's row of the scenario table; written when the test ends, with its verdict and time."""
    row = report.ScenarioRow(scenario=request.node.name, test=request.node.nodeid)
    started = time.monotonic()
    yield row
    row.seconds = round(time.monotonic() - started, 1)
    verdict = request.node.stash.get(_CALL_REPORT, None)
    row.result = _verdict(verdict)
    if row.result == "failed" and verdict is not None:
        row.outcome = f"FAILED: {_first_line(verdict)}" + (f" ({row.outcome})" if row.outcome else "")
    report.append(report_path(tmp_path_factory), row)


def _verdict(test_report: pytest.TestReport | None) -> str:
    if test_report is None:
        return "not run"
    if hasattr(test_report, "wasxfail"):
        return f"xfailed: {test_report.wasxfail}" if test_report.skipped else "xpassed"
    return test_report.outcome


def _first_line(test_report: pytest.TestReport) -> str:
    crash = getattr(test_report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(test_report.longrepr)
    return text.strip().splitlines()[0][:200] if text.strip() else "?"


@pytest.fixture
def scenario_settings(settings, tmp_path):
    """Settings for one scenario: its own warehouse, `SCENARIO_MARTS`, and a writer that never waits
    for a lease: a lease left by a killed process must be free at once, not after a wait."""
    return dataclasses.replace(
        settings,
        warehouse=str(tmp_path / "warehouse"),
        marts=dataclasses.replace(settings.marts, enabled=SCENARIO_MARTS),
        writer_lock=dataclasses.replace(settings.writer_lock, wait_minutes=0),
    )

