"""
### Lakehouse backfill: restate a range of days of chosen marts (manual)

Restates the chosen marts' days `start` to `end` (both included, UTC) from every landed event, late
ones included; every other day of those marts keeps its published rows unless new events touch it.
Like an hourly `lakehouse_marts` run, every enabled mart first catches up on the events landed since
its last build, so what is published always agrees with silver (the reconciliation gate checks it).
Validates the result (Great Expectations) and publishes it like an hourly run (`meta/publications`).

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

from airflow.sdk import Param, dag, task

from jobs import airflow_tasks
from jobs.config import load_segments
from jobs.marts import MART_NAMES

# Marketers' segments (conf/segments.yaml) are checked when the DAG is parsed, without Spark: a wrong
# one is an import error naming the segment and the problem, shown in the UI before any run.
load_segments()


def _request(params: dict[str, Any]):
    from jobs.orchestration import backfill_request

    return backfill_request(airflow_tasks.settings(params), params.get("start"), params.get("end"), params.get("marts"))


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
    def backfill(params: dict[str, Any] | None = None, dag_run=None) -> dict[str, int]:
        """The chosen marts' days start..end restated, every mart caught up, into this run's staging area."""
        from jobs import pipeline

        settings, request = airflow_tasks.settings(params), _request(params)
        airflow_tasks.renew_lease(settings, dag_run)
        return pipeline.backfill(settings, dag_run.run_id, request.start, request.end, list(request.marts))

    lease, _release = airflow_tasks.staged_marts_run(backfill)
    check_params() >> lease


lakehouse_backfill()
