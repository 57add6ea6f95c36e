"""
### Lakehouse maintenance: OPTIMIZE and VACUUM every table, weekly

Compacts the small files of every Delta table of the warehouse (OPTIMIZE), then deletes the files
that no version within the retention needs (VACUUM). Time travel reaches back only as far as the
retention, and an erasure becomes physical only once VACUUM has run past it.

`check_params` refuses a retention below `maintenance.min_retention_hours` (168 hours, 7 days) unless
`force` is set, before anything runs. `maintain` holds both writer leases (`bronze` and `marts`): it
rewrites every table, so it waits for landing, mart builds, backfills and commands, and they for it.
Running it twice in a row does nothing more the second time.

**Params**: `retention_hours` (empty: `maintenance.retention_hours` in `conf/`), `force`, `warehouse`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import Param, dag, task


def _settings(params: dict[str, Any] | None):
    from jobs.orchestration import settings_for

    return settings_for(params)


@dag(
    dag_id="lakehouse_maintenance",
    schedule="0 3 * * 0",  # Sundays 03:00 UTC, away from the hourly runs' busiest minutes
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-engineering", "retries": 1, "retry_delay": timedelta(minutes=15)},
    tags=["lakehouse", "maintenance"],
    doc_md=__doc__,
    params={
        "retention_hours": Param(
            None, type=["null", "integer"], minimum=0, title="Retention (hours)",
            description="Hours of old files VACUUM keeps; empty for maintenance.retention_hours in conf/.",
        ),
        "force": Param(
            False, type="boolean", title="Force",
            description="Allow a retention below maintenance.min_retention_hours (old versions become unreadable).",
        ),
        "warehouse": Param(
            None, type=["null", "string"], minLength=1, title="Warehouse",
            description="Where the Delta tables live; empty for the configured warehouse.",
        ),
    },
)
def lakehouse_maintenance():
    @task
    def check_params(params: dict[str, Any] | None = None) -> int:
        """Refuse a retention below the floor (unless forced) before any job starts."""
        from airflow.sdk.exceptions import AirflowFailException

        from jobs.orchestration import ParamError, maintenance_retention

        try:
            return maintenance_retention(_settings(params), params.get("retention_hours"), params.get("force", False))
        except ParamError as error:
            raise AirflowFailException(f"bad params: {error}") from error

    @task
    def maintain(params: dict[str, Any] | None = None, dag_run=None) -> dict[str, int]:
        """OPTIMIZE then VACUUM every table (files deleted per table)."""
        from jobs.maintenance import maintain as maintain_tables
        from jobs.orchestration import maintenance_retention
        from jobs.writer_lock import EVERYTHING, airflow_owner, holding

        settings = _settings(params)
        force = params.get("force", False)
        retention = maintenance_retention(settings, params.get("retention_hours"), force)
        with holding(settings, EVERYTHING, owner=airflow_owner(dag_run.dag_id, dag_run.run_id)):
            done = maintain_tables(settings, retention, force=force)
        return {table.path: table.files_deleted_by_vacuum for table in done}

    check_params() >> maintain()


lakehouse_maintenance()
