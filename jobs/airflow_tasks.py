"""The Airflow tasks the marts DAG and the backfill DAG share: the `marts` writer lease around
build → validate → publish. Only DAG files import this module (it imports Airflow); the work itself is
in `jobs.pipeline` and `jobs.orchestration`.

Each task is keyed by the DAG run's id, so any of them can be cleared and rerun; every writing task
renews the run's lease first, and fails rather than wait if another writer took it over.
"""

from __future__ import annotations

from typing import Any, Callable

from airflow.sdk import Asset, task

from jobs.orchestration import GOLD_MARTS_ASSET
from jobs.writer_lock import MARTS


def settings(params: dict[str, Any] | None):
    from jobs.orchestration import settings_for

    return settings_for(params)


def renew_lease(run_settings, dag_run) -> None:
    """Called first by every writing step of a run holding the `marts` lease."""
    from jobs.orchestration import renew_run_leases

    renew_run_leases(run_settings, MARTS, dag_run.dag_id, dag_run.run_id)


@task
def take_marts_lease(params: dict[str, Any] | None = None, dag_run=None) -> None:
    """Wait for any other writer of silver and the marts, then hold the lease for this run."""
    from jobs.orchestration import take_run_leases

    take_run_leases(settings(params), MARTS, dag_run.dag_id, dag_run.run_id)


@task
def validate(params: dict[str, Any] | None = None, dag_run=None) -> None:
    """Validate the staged marts; a failure fails this task without retry and blocks publish."""
    from airflow.sdk.exceptions import AirflowFailException

    from jobs import pipeline
    from jobs.validation import ValidationFailed

    run_settings = settings(params)
    renew_lease(run_settings, dag_run)
    try:
        pipeline.validate(run_settings, dag_run.run_id)
    except ValidationFailed as failure:
        # Not retried: the same staged data would fail again. Publish is skipped, gold keeps its last good version.
        raise AirflowFailException(f"{failure}\nnothing published") from failure


@task(outlets=[Asset(**GOLD_MARTS_ASSET)])
def publish(params: dict[str, Any] | None = None, dag_run=None) -> dict[str, int]:
    """Copy the validated marts into gold, one commit each (published table version per mart)."""
    from airflow.sdk.exceptions import AirflowFailException

    from jobs import pipeline

    run_settings = settings(params)
    renew_lease(run_settings, dag_run)
    try:
        published = pipeline.publish(run_settings, dag_run.run_id)
    except pipeline.PublicationRefused as refused:
        # Not retried: a run without a passed validation, or older than what gold holds (a stale run
        # cleared after a later one published), is refused again; a failed write (StepFailed) is retried.
        raise AirflowFailException(str(refused)) from refused
    return {p.mart: p.table_version for p in published}


@task
def release_marts_lease(params: dict[str, Any] | None = None, dag_run=None) -> list[str]:
    """Give the lease back, whether the run succeeded or not."""
    from jobs.orchestration import release_run_leases

    return release_run_leases(settings(params), MARTS, dag_run.dag_id, dag_run.run_id)


def staged_marts_run(build: Callable[[], Any]) -> tuple[Any, Any]:
    """take_marts_lease → build → validate → publish → release_marts_lease, the lease a setup and its
    release a teardown (run whatever happened, its setup cleared with any task). `build` makes the task
    that stages the marts; returns (lease, release) for the caller to chain anything before or after."""
    lease = take_marts_lease()
    release = release_marts_lease().as_teardown(setups=lease, on_failure_fail_dagrun=True)
    lease >> build() >> validate() >> publish() >> release
    return lease, release
