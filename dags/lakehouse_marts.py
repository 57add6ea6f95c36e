"""
### Lakehouse marts: build → validate → publish, when bronze changes and every hour

Runs when `lakehouse_landing` announces new events in bronze (asset **lakehouse_bronze_events**) and
at half past every hour (time moves carts from open to abandoned even without new events). Rebuilds
silver from bronze and every enabled mart into this run's staging area, validates the staged marts
(Great Expectations), and only then publishes them to `<warehouse>/gold/<mart>`, recording each
publication in `meta/publications`; `publish` announces the asset **lakehouse_gold_marts**.

A failed validation fails `validate` at once (no retry: the same staged data would fail again), so
`publish` does not run and the marts keep their last good version.

**One writer**: `take_marts_lease` (a setup task) takes the warehouse's `marts` writer lease for this
run, waiting for any other writer (a backfill, a replay, maintenance, a `python -m jobs` command);
every step renews it, and `release_marts_lease` (a teardown task, run whatever happened) gives it
back. No other run's build or publish can fall between this run's build and its publish.

Each step is keyed by the run id and idempotent: any task can be cleared and rerun (its setup and
teardown are cleared with it). **Params**: `warehouse` (default: `LAKEHOUSE_WAREHOUSE`, then `conf/`).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from jobs.config import load_segments
from jobs.orchestration import BRONZE_EVENTS_ASSET, GOLD_MARTS_ASSET

# Marketers' segments (conf/segments.yaml) are checked when the DAG is parsed, without Spark: a wrong
# one is an import error naming the segment and the problem, shown in the UI before any run.
load_segments()

MARTS = ("marts",)


def _settings(params: dict[str, Any] | None):
    from jobs.orchestration import settings_for

    return settings_for(params)


def _lease(settings, dag_run) -> None:
    """Every writing step renews the run's lease first; it fails rather than wait if another writer took it over."""
    from jobs.orchestration import renew_run_leases

    renew_run_leases(settings, MARTS, dag_run.dag_id, dag_run.run_id)


@dag(
    dag_id="lakehouse_marts",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("30 * * * *", timezone="UTC"), assets=Asset(**BRONZE_EVENTS_ASSET)
    ),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-engineering", "retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["lakehouse", "marts", "gold"],
    doc_md=__doc__,
    params={
        "warehouse": Param(
            None, type=["null", "string"], minLength=1, title="Warehouse",
            description="Where the Delta tables live; empty for the configured warehouse.",
        ),
    },
)
def lakehouse_marts():
    @task
    def take_marts_lease(params: dict[str, Any] | None = None, dag_run=None) -> None:
        """Wait for any other writer of silver and the marts, then hold the lease for this run."""
        from jobs.orchestration import take_run_leases

        take_run_leases(_settings(params), MARTS, dag_run.dag_id, dag_run.run_id)

    @task
    def build(params: dict[str, Any] | None = None, dag_run=None) -> dict[str, int]:
        """Silver from bronze, then every enabled mart into this run's staging area (rows per mart)."""
        from jobs import pipeline

        settings = _settings(params)
        _lease(settings, dag_run)
        return pipeline.build(settings, dag_run.run_id)

    @task
    def validate(params: dict[str, Any] | None = None, dag_run=None) -> None:
        """Validate the staged marts; a failure fails this task without retry and blocks publish."""
        from airflow.sdk.exceptions import AirflowFailException

        from jobs import pipeline
        from jobs.validation import ValidationFailed

        settings = _settings(params)
        _lease(settings, dag_run)
        try:
            pipeline.validate(settings, dag_run.run_id)
        except ValidationFailed as failure:
            # Not retried: the same staged data would fail again. Publish is skipped, gold keeps its last good version.
            raise AirflowFailException(f"{failure}\nnothing published") from failure

    @task(outlets=[Asset(**GOLD_MARTS_ASSET)])
    def publish(params: dict[str, Any] | None = None, dag_run=None) -> dict[str, int]:
        """Copy the validated marts into gold, one commit each (published table version per mart)."""
        from jobs import pipeline

        settings = _settings(params)
        _lease(settings, dag_run)
        return {p.mart: p.table_version for p in pipeline.publish(settings, dag_run.run_id)}

    @task
    def release_marts_lease(params: dict[str, Any] | None = None, dag_run=None) -> list[str]:
        """Give the lease back, whether the run succeeded or not."""
        from jobs.orchestration import release_run_leases

        return release_run_leases(_settings(params), MARTS, dag_run.dag_id, dag_run.run_id)

    lease = take_marts_lease()
    release = release_marts_lease().as_teardown(setups=lease, on_failure_fail_dagrun=True)
    lease >> build() >> validate() >> publish() >> release


lakehouse_marts()
