"""
### Lakehouse nightly validation: every published mart, in full

Every night, validates each enabled mart as published now, the whole gold table, against its Great
Expectations suite (results in the Data Docs), and checks the landing ledger's balance (lines read =
landed + duplicates + quarantined for every file). The hourly runs validate what they publish; this
catches what they cannot: a table changed outside the pipeline, a mart never published, a ledger
that lost lines.

A failure fails the run without retry (the same tables would fail again), naming the mart, the
expectation and the observed value. It writes nothing but Data Docs, under the `marts` writer lease
(so it reads a consistent set of marts). **Params**: `warehouse`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import Param, dag, task


@dag(
    dag_id="lakehouse_validation",
    schedule="0 2 * * *",  # 02:00 UTC: after the day's last hourly publication has settled
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-engineering", "retries": 1, "retry_delay": timedelta(minutes=10)},
    tags=["lakehouse", "marts", "validation"],
    doc_md=__doc__,
    params={
        "warehouse": Param(
            None, type=["null", "string"], minLength=1, title="Warehouse",
            description="Where the Delta tables live; empty for the configured warehouse.",
        ),
    },
)
def lakehouse_validation():
    @task
    def validate_published(params: dict[str, Any] | None = None, dag_run=None) -> dict[str, int]:
        """Every enabled gold mart against its suite, and the landing ledger's balance (rows per mart)."""
        from airflow.sdk.exceptions import AirflowFailException

        from jobs import orchestration
        from jobs.validation import ValidationFailed
        from jobs.writer_lock import MARTS, airflow_owner, holding

        settings = orchestration.settings_for(params)
        with holding(settings, MARTS, owner=airflow_owner(dag_run.dag_id, dag_run.run_id)):
            try:
                return orchestration.validate_published(settings, dag_run.run_id)
            except (ValidationFailed, orchestration.LedgerUnbalanced, orchestration.MartNotPublished) as failure:
                raise AirflowFailException(str(failure)) from failure

    validate_published()


lakehouse_validation()
