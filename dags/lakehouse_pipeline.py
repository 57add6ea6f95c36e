"""
### Lakehouse pipeline: land → build → validate → publish

Every hour: land the new event files of the landing folder into bronze, rebuild silver and every
enabled mart into this run's staging area, validate the staged marts (Great Expectations), and only
then publish them to `<warehouse>/gold/<mart>`, recording each publication in
`<warehouse>/meta/publications`.

A failed validation fails `validate` at once (no retry: the same staged data would fail again), so
`publish` does not run and the marts keep their last good version. Each step is keyed by the Airflow
run id and idempotent, so any task can be cleared and rerun for the same run.

**Params** (also accepted as run conf): `landing`, the folder of event files (default: `landing.folder`
in `conf/`); `warehouse`, where the Delta tables live (default: `LAKEHOUSE_WAREHOUSE`, then `conf/`).
The configuration environment is chosen by `LAKEHOUSE_ENV` in the workers' environment.

The logic lives in `jobs.pipeline`; this file only wires it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import Param, dag, task

from jobs.config import load_segments

# Marketers' segments (conf/segments.yaml) are checked when the DAG is parsed, without Spark: a wrong
# one is an import error naming the segment and the problem, shown in the UI before any run.
load_segments()


def _settings(params: dict[str, Any]):
    from jobs.config import load_settings

    return load_settings(warehouse=params.get("warehouse") or None)


@dag(
    dag_id="lakehouse_pipeline",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    # One writer per table: runs of this DAG never overlap.
    max_active_runs=1,
    default_args={"owner": "data-engineering", "retries": 1, "retry_delay": timedelta(minutes=5)},
    tags=["lakehouse", "marts"],
    doc_md=__doc__,
    params={
        "landing": Param(
            None,
            type=["null", "string"],
            minLength=1,
            title="Landing folder",
            description="Folder of event files (.ndjson, .ndjson.gz) to land; empty for landing.folder in conf/. "
            "Files landed before are skipped.",
        ),
        "warehouse": Param(
            None,
            type=["null", "string"],
            minLength=1,
            title="Warehouse",
            description="Where the Delta tables live; empty for the configured warehouse.",
        ),
    },
)
def lakehouse_pipeline():
    @task
    def land(params: dict[str, Any] | None = None, run_id: str | None = None) -> str:
        """New files of the landing folder into bronze; files landed before are skipped."""
        from pathlib import Path

        from jobs import pipeline

        settings = _settings(params)
        return pipeline.land(settings, Path(params.get("landing") or settings.landing.folder), run_id).summary()

    @task
    def build(params: dict[str, Any] | None = None, run_id: str | None = None) -> dict[str, int]:
        """Silver from bronze, then every enabled mart into this run's staging area (rows per mart)."""
        from jobs import pipeline

        return pipeline.build(_settings(params), run_id)

    @task
    def validate(params: dict[str, Any] | None = None, run_id: str | None = None) -> None:
        """Validate the staged marts; a failure fails this task without retry and blocks publish."""
        from airflow.sdk.exceptions import AirflowFailException

        from jobs import pipeline
        from jobs.validation import ValidationFailed

        try:
            pipeline.validate(_settings(params), run_id)
        except ValidationFailed as failure:
            # Not retried: the same staged data would fail again. Publish is skipped, gold keeps its last good version.
            raise AirflowFailException(f"{failure}\nnothing published") from failure

    @task
    def publish(params: dict[str, Any] | None = None, run_id: str | None = None) -> dict[str, int]:
        """Copy the validated marts into gold, one commit each (published table version per mart)."""
        from jobs import pipeline

        return {p.mart: p.table_version for p in pipeline.publish(_settings(params), run_id)}

    land() >> build() >> validate() >> publish()


lakehouse_pipeline()
