"""Scenario 2.9: an injected projection bug that the expectations catch: nothing is published, the last
good version is served, and the message names the mart and the expectation.

Moved here from tests/test_pipeline.py (it was that file's failed-validation test), with the good
publication readers must go on seeing compared in full: table versions, rows and the publication log.
"""

from __future__ import annotations

import dataclasses

import pytest

from jobs import pipeline
from jobs.marts import basket_daily
from jobs.validation import ValidationFailed
from tests.scenarios.warehouse_state import account_landing, gold_state, publications, published_then_late

# basket_daily carries the bug; orders, which it reads, passes: publication is all or nothing.
MARTS = ("orders", "basket_daily")


def test_a_projection_bug_caught_by_the_expectations_publishes_nothing_and_the_last_good_marts_stay_served(
    spark, scenario_settings, tmp_path, monkeypatch, scenario_report
):
    row = scenario_report
    row.scenario = "2.9 projection bug caught by expectations"
    row.injected = "basket_daily's build returns every row twice (its key no longer unique), in a run after a good one"
    settings = dataclasses.replace(scenario_settings, marts=dataclasses.replace(scenario_settings.marts, enabled=MARTS))
    landing = tmp_path / "landing"
    good = published_then_late(spark, settings, landing, row)
    correct = basket_daily.build
    monkeypatch.setattr(basket_daily, "build", lambda sources, context: correct(sources, context).unionAll(correct(sources, context)))

    with pytest.raises(ValidationFailed) as failure:
        # In full, so the bug reaches every row (a restatement rebuilds only the day the late order touches).
        pipeline.run(settings, landing, run_id="buggy", full=True)

    failed = {result.mart: result for result in failure.value.results if not result.success}
    assert "basket_daily" in failed and "orders" not in failed
    unique_key = "ExpectCompoundColumnsToBeUnique"
    assert any(unique_key in expectation.expectation for expectation in failed["basket_daily"].failed)
    assert f"basket_daily: {unique_key}" in str(failure.value)
    # Readers see the good publication: same table versions, same rows; the log holds only the good run.
    seen = gold_state(spark, settings)
    row.marts_readable = True  # gold_state read every mart
    row.marts_at_last_good_version = seen == good
    assert row.marts_at_last_good_version
    assert {run_id for _mart, run_id, _action, _version in publications(spark, settings)} == {"good"}
    account_landing(spark, settings.warehouse, row)
    assert row.accounted == row.events_in
    message = next(line for line in str(failure.value).splitlines() if unique_key in line)
    row.outcome = f"validation failed, nothing published, the good run's marts still served; the error says: {message[:140]}"
