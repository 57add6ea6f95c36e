"""The scenario table itself (`make scenarios` prints it): order and cells, without running anything."""

from __future__ import annotations

from tests.scenarios import report
from tests.scenarios.report import ScenarioRow


def test_rows_come_in_the_issues_order_whatever_their_names():
    names = ["2.10 disk full", "test_left_unnamed", "2.2.1 stale run", "2.2b extra", "2.2 killed run", "2.1 killed landing"]
    rows = [ScenarioRow(scenario=name) for name in names]
    lines = report.table(rows).splitlines()[2:]
    order = [line.split(" | ", 1)[0].removeprefix("| ") for line in lines]
    assert order == ["2.1 killed landing", "2.2 killed run", "2.2.1 stale run", "2.2b extra", "2.10 disk full", "test_left_unnamed"]


def test_a_row_accounts_for_its_lines_only_when_every_count_is_known():
    assert ScenarioRow(scenario="x", landed=23, duplicates=2, quarantined=1).accounted == 26
    assert ScenarioRow(scenario="x", landed=23, duplicates=2).accounted is None
