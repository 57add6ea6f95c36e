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

from jobs import airflow_tasks
from jobs.config import load_segments
from jobs.orchestration import BRONZE_EVENTS_ASSET

# Marketers' segments (conf/segments.yaml) are checked when the DAG is parsed, without Spark: a wrong
# one is an import error naming the segment and the problem, shown in the UI before any run.
load_segments()


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
    def build(params: dict[str, Any] | None = None, dag_run=None) -> dict[str, int]:
        """Silver from bronze, then every enabled mart into this run's staging area (rows per mart)."""
        from jobs import pipeline

        settings = airflow_tasks.settings(params)
        airflow_tasks.renew_lease(settings, dag_run)
        return pipeline.build(settings, dag_run.run_id)

    airflow_tasks.staged_marts_run(build)


lakehouse_marts()
