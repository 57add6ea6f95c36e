"""Every DAG imports cleanly, with tags, retries and a doc; each DAG is wired as designed.

Parsing only: no Spark session, no Airflow DB.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from jobs.airflow_env import DAGS_FOLDER, airflow_environ

DAG_FILES = sorted(p for p in DAGS_FOLDER.glob("*.py") if p.name != "__init__.py")
DAG_IDS = {
    "lakehouse_landing", "lakehouse_marts", "lakehouse_validation",
    "lakehouse_backfill", "lakehouse_replay", "lakehouse_maintenance",
}


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    # Airflow reads its configuration when first imported: point it at a throwaway home first.
    environ = airflow_environ(tmp_path_factory.mktemp("airflow_home"))
    with pytest.MonkeyPatch.context() as patch:
        for key, value in environ.items():
            if key.startswith("AIRFLOW"):
                patch.setenv(key, value)
        from airflow.dag_processing.dagbag import DagBag

        yield DagBag(dag_folder=str(DAGS_FOLDER))


def edges(dag) -> dict[str, set[str]]:
    """Task id -> its upstream task ids."""
    return {task.task_id: set(task.upstream_task_ids) for task in dag.tasks}


def test_the_dags_folder_holds_dag_files():
    assert DAG_FILES, f"no DAG files in {DAGS_FOLDER}"


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {Path(dag.fileloc).name for dag in dagbag.dags.values()} == {p.name for p in DAG_FILES}
    assert set(dagbag.dags) == DAG_IDS


def test_every_dag_has_tags_retries_and_a_doc(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert "lakehouse" in dag.tags, f"{dag_id} lacks the lakehouse tag"
        assert len(dag.tags) >= 2, f"{dag_id} has no tag saying what it does"
        assert dag.default_args.get("retries", 0) >= 1, f"{dag_id} does not retry"
        assert "retry_delay" in dag.default_args, f"{dag_id} has no retry_delay"
        assert (dag.doc_md or "").strip(), f"{dag_id} has no doc_md"
        assert all(task.retries >= 1 for task in dag.tasks), f"{dag_id} has a task without retries"


def test_no_dag_catches_up_or_runs_twice_at_once(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert (dag.catchup, dag.max_active_runs) == (False, 1), dag_id


# --- landing --------------------------------------------------------------------------------------


def test_landing_is_one_hourly_task_that_announces_bronze(dagbag):
    dag = dagbag.dags["lakehouse_landing"]
    assert dag.timetable.expression == "0 * * * *"
    assert edges(dag) == {"land": set()}
    assert [asset.name for asset in dag.get_task("land").outlets] == ["lakehouse_bronze_events"]


# --- marts ----------------------------------------------------------------------------------------


def test_marts_run_when_bronze_changes_or_at_half_past_every_hour(dagbag):
    from airflow.sdk import AssetOrTimeSchedule

    schedule = dagbag.dags["lakehouse_marts"].timetable
    assert isinstance(schedule, AssetOrTimeSchedule)
    assert schedule.asset_condition.name == "lakehouse_bronze_events"
    assert schedule.timetable.expression == "30 * * * *"


def test_marts_build_validate_and_publish_inside_one_writer_lease(dagbag):
    dag = dagbag.dags["lakehouse_marts"]
    assert edges(dag) == {
        "take_marts_lease": set(),
        "build": {"take_marts_lease"},
        "validate": {"build"},
        "publish": {"validate"},
        "release_marts_lease": {"publish", "take_marts_lease"},
    }
    assert dag.get_task("take_marts_lease").is_setup
    assert dag.get_task("release_marts_lease").is_teardown
    # A failed step still releases the lease; publish runs only after a successful validation.
    assert dag.get_task("publish").trigger_rule == "all_success"
    assert [asset.name for asset in dag.get_task("publish").outlets] == ["lakehouse_gold_marts"]


def test_a_failed_validation_fails_the_validate_task_without_retry(dagbag, monkeypatch, tmp_path):
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowFailException

    from jobs import pipeline, validation

    failed = validation.FailedExpectation("orders", "expect_column_values_to_not_be_null(order_id)", "1 unexpected")

    def failing_validate(settings, run_id, progress=None):
        raise validation.ValidationFailed([validation.SuiteResult("orders", False, 12, (failed,))])

    monkeypatch.setattr(pipeline, "validate", failing_validate)
    validate = dagbag.dags["lakehouse_marts"].get_task("validate").python_callable
    run = SimpleNamespace(dag_id="lakehouse_marts", run_id="manual__test")
    with pytest.raises(AirflowFailException, match="(?s)orders.*nothing published") as failure:
        validate(params={"warehouse": str(tmp_path)}, dag_run=run)
    assert isinstance(failure.value.__cause__, validation.ValidationFailed)


# --- nightly validation, backfill, replay, maintenance --------------------------------------------


def test_the_full_validation_runs_nightly(dagbag):
    dag = dagbag.dags["lakehouse_validation"]
    assert dag.timetable.expression == "0 2 * * *"
    assert edges(dag) == {"validate_published": set()}


def test_backfill_checks_params_then_restates_validates_and_publishes_inside_one_lease(dagbag):
    dag = dagbag.dags["lakehouse_backfill"]
    assert dag.timetable.can_be_scheduled is False  # manual only
    assert edges(dag) == {
        "check_params": set(),
        "take_marts_lease": {"check_params"},
        "backfill": {"take_marts_lease"},
        "validate": {"backfill"},
        "publish": {"validate"},
        "release_marts_lease": {"publish", "take_marts_lease"},
    }
    assert dag.get_task("take_marts_lease").is_setup and dag.get_task("release_marts_lease").is_teardown


def test_replay_checks_params_then_replays(dagbag):
    dag = dagbag.dags["lakehouse_replay"]
    assert dag.timetable.can_be_scheduled is False
    assert edges(dag) == {"check_params": set(), "replay": {"check_params"}}


def test_maintenance_checks_params_then_maintains_weekly(dagbag):
    dag = dagbag.dags["lakehouse_maintenance"]
    assert dag.timetable.expression == "0 3 * * 0"
    assert edges(dag) == {"check_params": set(), "maintain": {"check_params"}}


# --- params: the UI form refuses what the schema can tell; check_params refuses the rest -----------


def test_backfill_params_are_typed_dates_and_known_marts(dagbag):
    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(dagbag.dags["lakehouse_backfill"].params)
    assert set(params) == {"start", "end", "marts", "warehouse"}
    params["start"], params["end"], params["marts"] = "2026-01-05", "2026-01-07", ["orders"]
    with pytest.raises(ParamValidationError, match="marts"):
        params["marts"] = ["ordres"]
    with pytest.raises(ParamValidationError, match="start"):
        params["start"] = "05/01/2026"
    with pytest.raises(ParamValidationError):  # required: no default
        copy.deepcopy(dagbag.dags["lakehouse_backfill"].params).validate()


@pytest.mark.parametrize(
    ("dag_id", "params", "message"),
    [
        ("lakehouse_backfill", {"start": "2026-01-08", "end": "2026-01-07", "marts": []}, "start 2026-01-08 is after end"),
        ("lakehouse_backfill", {"start": "2026-01-05", "end": "2026-01-07", "marts": ["orders", "ordres"]}, "unknown mart"),
        ("lakehouse_replay", {"as_of": "2026-01-20T00:00:00"}, "has no UTC offset"),
        ("lakehouse_maintenance", {"retention_hours": 1, "force": False}, "below the minimum of 168"),
    ],
)
def test_check_params_fails_without_retry_before_any_job(dagbag, dag_id, params, message, tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv("LAKEHOUSE_ENV", "ci")
    check = dagbag.dags[dag_id].get_task("check_params").python_callable
    with pytest.raises(AirflowFailException, match=f"bad params: .*{message}"):
        check(params={**params, "warehouse": str(tmp_path)})
