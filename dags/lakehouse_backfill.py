"""
### Lakehouse backfill: restate a range of days of chosen marts (manual)

Rebuilds the chosen marts for the days `start` to `end` (both included, UTC) from silver, late events
included, leaving every other day of those marts as published; validates the result (Great
Expectations) and publishes it like an hourly run (`meta/publications`). Marts not chosen are not
touched.

`check_params` refuses a bad request before anything runs: dates as `YYYY-MM-DD`, `start` not after
`end`, `end` not in the future, marts known and enabled. The run then holds the warehouse's `marts`
writer lease from `take_marts_lease` to `release_marts_lease` (setup and teardown), so it never
interleaves with an hourly `lakehouse_marts` run, another backfill or a `python -m jobs` command: it
waits for them, and they for it.

**Params**: `start`, `end` (dates), `marts` (default: every enabled mart), `warehouse`.
Trigger it from the UI (*Trigger*, fill in the form) or:
`python -m jobs.airflow_env dags trigger lakehouse_backfill -c '{"start": "2026-01-05", "end": "2026-01-07"}'`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import Asset, Param, dag, task

from jobs.config import load_segments
from jobs.marts import MART_NAMES
from jobs.orchestration import GOLD_MARTS_ASSET

# Marketers' segments (conf/segments.yaml) are checked when the DAG is parsed, without Spark: a wrong
# one is an import error naming the segment and the problem, shown in the UI before any run.
load_segments()

MARTS = ("marts",)


def _settings(params: dict[str, Any] | None):
    from jobs.orchestration import settings_for

    return settings_for(params)


def _request(params: dict[str, Any]):
    from jobs.orchestration import backfill_request

    return backfill_request(_settings(params), params.get("start"), params.get("end"), params.get("marts"))


def _lease(settings, dag_run) -> None:
    """Every writing step renews the run's lease first; it fails rather than wait if another writer took it over."""
    from jobs.orchestration import renew_run_leases

    renew_run_leases(settings, MARTS, dag_run.dag_id, dag_run.run_id)


@dag(
    dag_id="lakehouse_backfill",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-engineering", "retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["lakehouse", "marts", "backfill", "manual"],
    doc_md=__doc__,
    params={
        "start": Param(type="string", format="date", title="First day", description="YYYY-MM-DD (UTC), included."),
        "end": Param(type="string", format="date", title="Last day", description="YYYY-MM-DD (UTC), included."),
        "marts": Param(
            [], type="array", items={"type": "string", "enum": list(MART_NAMES)}, uniqueItems=True,
            title="Marts", description="Marts to restate; empty for every enabled mart.",
        ),
        "warehouse": Param(
            None, type=["null", "string"], minLength=1, title="Warehouse",
            description="Where the Delta tables live; empty for the configured warehouse.",
        ),
    },
)
def lakehouse_backfill():
    @task
    def check_params(params: dict[str, Any] | None = None) -> str:
        """Refuse a bad range or mart list before any job starts (no retry: the same params fail again)."""
        from airflow.sdk.exceptions import AirflowFailException

        from jobs.orchestration import ParamError

        try:
            return _request(params).summary()
        except ParamError as error:
            raise AirflowFailException(f"bad params: {error}") from error

    @task
    def take_marts_lease(params: dict[str, Any] | None = None, dag_run=None) -> None:
        """Wait for any other writer of silver and the marts, then hold the lease for this run."""
        from jobs.orchestration import take_run_leases

        take_run_leases(_settings(params), MARTS, dag_run.dag_id, dag_run.run_id)

    @task
    def backfill(params: dict[str, Any] | None = None, dag_run=None) -> dict[str, int]:
        """The chosen marts, restated for start..end from silver, into this run's staging area."""
        from jobs import pipeline

        settings, request = _settings(params), _request(params)
        _lease(settings, dag_run)
        return pipeline.backfill(settings, dag_run.run_id, request.start, request.end, list(request.marts))

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
            raise AirflowFailException(f"{failure}\nnothing published") from failure

    @task(outlets=[Asset(**GOLD_MARTS_ASSET)])
    def publish(params: dict[str, Any] | None = None, dag_run=None) -> dict[str, int]:
        """Publish the restated marts, one commit each (published table version per mart)."""
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
    check_params() >> lease >> backfill() >> validate() >> publish() >> release


lakehouse_backfill()
