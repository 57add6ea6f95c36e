"""
### Lakehouse replay: the marts as they were at a point in time (manual)

Rebuilds every enabled mart from bronze with only the events that occurred up to `as_of`, into
`<warehouse>/replays/as_of=<UTC time>/<mart>`, and validates them there. Published marts are never
touched; compare the two like any two tables (README, *Comparing with the past*).

`check_params` refuses an `as_of` that is not an ISO-8601 time with a UTC offset before anything
runs. `replay` holds the warehouse's `marts` writer lease (it rewrites silver), so it waits for an
hourly build, a backfill or a command, and they for it. Replaying the same `as_of` again rewrites the
same tables with the same rows.

**Params**: `as_of` (e.g. `2026-01-20T00:00:00+00:00`), `warehouse`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import Param, dag, task

from jobs.config import load_segments

# Marketers' segments (conf/segments.yaml) are checked when the DAG is parsed, without Spark: a wrong
# one is an import error naming the segment and the problem, shown in the UI before any run.
load_segments()


def _settings(params: dict[str, Any] | None):
    from jobs.orchestration import settings_for

    return settings_for(params)


@dag(
    dag_id="lakehouse_replay",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-engineering", "retries": 1, "retry_delay": timedelta(minutes=5)},
    tags=["lakehouse", "marts", "replay", "manual"],
    doc_md=__doc__,
    params={
        "as_of": Param(
            type="string", minLength=1, title="As of",
            description="ISO-8601 time with a UTC offset, e.g. 2026-01-20T00:00:00+00:00.",
        ),
        "warehouse": Param(
            None, type=["null", "string"], minLength=1, title="Warehouse",
            description="Where the Delta tables live; empty for the configured warehouse.",
        ),
    },
)
def lakehouse_replay():
    @task
    def check_params(params: dict[str, Any] | None = None) -> str:
        """Refuse a bad as_of before any job starts (no retry: the same params fail again)."""
        from airflow.sdk.exceptions import AirflowFailException

        from jobs.orchestration import ParamError, replay_as_of

        try:
            return replay_as_of(params.get("as_of")).isoformat()
        except ParamError as error:
            raise AirflowFailException(f"bad params: {error}") from error

    @task
    def replay(params: dict[str, Any] | None = None, dag_run=None) -> dict[str, str]:
        """Every enabled mart as of the time, validated, under replays/ (path per mart)."""
        from airflow.sdk.exceptions import AirflowFailException

        from jobs import pipeline
        from jobs.orchestration import replay_as_of
        from jobs.validation import ValidationFailed
        from jobs.writer_lock import MARTS, airflow_owner, holding

        settings = _settings(params)
        with holding(settings, MARTS, owner=airflow_owner(dag_run.dag_id, dag_run.run_id)):
            try:
                return pipeline.replay(settings, replay_as_of(params.get("as_of")))
            except ValidationFailed as failure:
                raise AirflowFailException(str(failure)) from failure

    check_params() >> replay()


lakehouse_replay()
