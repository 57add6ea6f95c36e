"""
### Lakehouse landing: new event files into bronze, every hour

Lands the files of the landing folder that no earlier run landed (and the new rows of any configured
event-store table) into `bronze/events`, rejected lines into `bronze/quarantine`, with a ledger per file.
When the run landed at least one event, `land` announces the asset **lakehouse_bronze_events**, which
schedules `lakehouse_marts`; a run that found nothing new ends *skipped* and triggers nothing.

Idempotent: landing the same files again lands nothing, so any run can be cleared and rerun. `land`
holds the warehouse's `bronze` writer lease while it runs (`jobs/writer_lock.py`): one writer of the
bronze tables at a time, whether Airflow runs, backfills or `python -m jobs` commands.

**Params**: `landing`, the folder of event files (default: `landing.folder` in `conf/`); `warehouse`
(default: `LAKEHOUSE_WAREHOUSE`, then `conf/`). `LAKEHOUSE_ENV` of the workers picks the configuration.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import Asset, Param, dag, task

from jobs.orchestration import BRONZE_EVENTS_ASSET


@dag(
    dag_id="lakehouse_landing",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-engineering", "retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["lakehouse", "landing", "bronze"],
    doc_md=__doc__,
    params={
        "landing": Param(
            None, type=["null", "string"], minLength=1, title="Landing folder",
            description="Folder of event files (.ndjson, .ndjson.gz); empty for landing.folder in conf/.",
        ),
        "warehouse": Param(
            None, type=["null", "string"], minLength=1, title="Warehouse",
            description="Where the Delta tables live; empty for the configured warehouse.",
        ),
    },
)
def lakehouse_landing():
    @task(outlets=[Asset(**BRONZE_EVENTS_ASSET)])
    def land(params: dict[str, Any] | None = None, dag_run=None) -> str:
        """New files into bronze; skipped (no asset event) when this run landed no event."""
        from pathlib import Path

        from airflow.sdk.exceptions import AirflowSkipException

        from jobs import orchestration, pipeline
        from jobs.writer_lock import BRONZE, airflow_owner, holding

        settings = orchestration.settings_for(params)
        with holding(settings, BRONZE, owner=airflow_owner(dag_run.dag_id, dag_run.run_id)):
            report = pipeline.land(settings, Path(params.get("landing") or settings.landing.folder), dag_run.run_id)
            # From the ledger, so a retry after a partial first attempt still announces what that attempt landed.
            landed = orchestration.landed_by_run(settings, dag_run.run_id)
        if landed == 0:
            raise AirflowSkipException(f"nothing new: {report.summary()}; bronze unchanged, marts not triggered")
        return report.summary()

    land()


lakehouse_landing()
