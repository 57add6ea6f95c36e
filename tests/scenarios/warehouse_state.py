"""What the scenarios read back from a warehouse: the landing ledger's counts, the published marts,
the publication log."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import pipeline
from jobs.config import Settings
from jobs.tables import latest_version
from tests.scenarios.deliveries import first_delivery, late_delivery, lines_delivered
from tests.scenarios.report import ScenarioRow


def account_landing(spark: SparkSession, warehouse: str, row: ScenarioRow) -> ScenarioRow:
    """Fill the row's ledger counts from what `python -m jobs status` shows (jobs.status.landing_summary:
    the ledger per source and run, plus the events held back from the marts)."""
    from jobs.status import landing_summary

    totals = landing_summary(spark, warehouse).agg(
        *(F.coalesce(F.sum(name), F.lit(0)).alias(name) for name in ("landed", "duplicates", "quarantined", "held_back"))
    ).first()
    row.landed, row.duplicates, row.quarantined, row.held_back = (
        totals["landed"], totals["duplicates"], totals["quarantined"], totals["held_back"]
    )
    return row


def gold_state(spark: SparkSession, settings: Settings) -> dict[str, tuple[int, list[tuple]]]:
    """Per enabled mart, as a reader sees it now: the published table's Delta version and its rows."""
    state = {}
    for mart in settings.marts.enabled:
        path = pipeline.gold_path(settings, mart)
        state[mart] = (latest_version(spark, path), sorted(map(tuple, spark.read.format("delta").load(path).collect())))
    return state


def publications(spark: SparkSession, settings: Settings) -> list[tuple[str, str, str, int]]:
    """The publication log: (mart, run_id, action, table_version), oldest first."""
    from jobs.publications import read_log

    rows = read_log(spark, settings.warehouse).orderBy("published_at").collect()
    return [(row["mart"], row["run_id"], row["action"], row["table_version"]) for row in rows]


def published_then_late(spark: SparkSession, settings: Settings, landing: Path, row: ScenarioRow) -> dict:
    """A good run published from the first delivery, then the late delivery waiting in landing (the
    row's events in: every line delivered). Returns the published marts' state after the good run."""
    first_delivery(landing)
    pipeline.run(settings, landing, run_id="good")
    good = gold_state(spark, settings)
    late_delivery(landing)
    row.events_in = lines_delivered(landing)
    return good
