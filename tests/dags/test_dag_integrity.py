"""Every DAG imports cleanly, with tags, retries and a doc; the pipeline DAG is wired as designed.

Parsing only: no Spark session, no Airflow DB.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.airflow_env import DAGS_FOLDER, airflow_environ

DAG_FILES = sorted(p for p in DAGS_FOLDER.glob("*.py") if p.name != "__init__.py")


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


@pytest.fixture(scope="module")
def pipeline_dag(dagbag):
    return dagbag.dags["lakehouse_pipeline"]


def test_the_dags_folder_holds_dag_files():
    assert DAG_FILES, f"no DAG files in {DAGS_FOLDER}"


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {Path(dag.fileloc).name for dag in dagbag.dags.values()} == {p.name for p in DAG_FILES}


def test_every_dag_has_tags_retries_and_a_doc(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.default_args.get("retries", 0) >= 1, f"{dag_id} does not retry"
        assert "retry_delay" in dag.default_args, f"{dag_id} has no retry_delay"
        assert (dag.doc_md or "").strip(), f"{dag_id} has no doc_md"
        assert all(task.retries >= 1 for task in dag.tasks), f"{dag_id} has a task without retries"


def test_the_pipeline_runs_land_build_validate_publish_in_that_order(pipeline_dag):
    upstream = {task.task_id: task.upstream_task_ids for task in pipeline_dag.tasks}
    downstream = {task.task_id: task.downstream_task_ids for task in pipeline_dag.tasks}
    assert upstream == {"land": set(), "build": {"land"}, "validate": {"build"}, "publish": {"validate"}}
    assert downstream == {"land": {"build"}, "build": {"validate"}, "validate": {"publish"}, "publish": set()}


def test_publish_runs_only_after_a_successful_validation(pipeline_dag):
    assert pipeline_dag.get_task("publish").trigger_rule == "all_success"


def test_the_pipeline_is_hourly_without_catchup_and_one_run_at_a_time(pipeline_dag):
    assert (pipeline_dag.schedule, pipeline_dag.catchup, pipeline_dag.max_active_runs) == ("@hourly", False, 1)


def test_the_pipeline_takes_a_landing_folder_and_an_optional_warehouse(pipeline_dag):
    import copy

    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(pipeline_dag.params)
    assert set(params) == {"landing", "warehouse"}
    assert params["warehouse"] is None and params["landing"] is None  # None: the folder configured in conf/
    params["warehouse"] = "/data/warehouse"
    params["landing"] = "/data/landing"
    with pytest.raises(ParamValidationError, match="landing"):
        params["landing"] = ""


def test_a_failed_validation_fails_the_validate_task_without_retry(pipeline_dag, monkeypatch, tmp_path):
    from airflow.sdk.exceptions import AirflowFailException

    from jobs import pipeline, validation

    failed = validation.FailedExpectation("orders", "expect_column_values_to_not_be_null(order_id)", "1 unexpected")

    def failing_validate(settings, run_id, progress=None):
        raise validation.ValidationFailed([validation.SuiteResult("orders", False, 12, (failed,))])

    monkeypatch.setattr(pipeline, "validate", failing_validate)
    validate = pipeline_dag.get_task("validate").python_callable
    with pytest.raises(AirflowFailException, match="(?s)orders.*nothing published") as failure:
        validate(params={"landing": str(tmp_path), "warehouse": str(tmp_path)}, run_id="manual__test")
    assert isinstance(failure.value.__cause__, validation.ValidationFailed)
