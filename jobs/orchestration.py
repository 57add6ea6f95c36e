"""What the Airflow DAGs call besides the pipeline's steps: their params checked before any job starts,
and the two jobs only a schedule needs (did a landing change bronze; the nightly full validation).

Nothing here imports Airflow or starts Spark on import; the param checks start no Spark at all, so a
bad value fails in seconds with a message naming the param.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Callable, Sequence

from jobs.config import Settings

log = logging.getLogger("jobs")
Progress = Callable[[str], None]

# Airflow assets (dags/ build `Asset(**...)` from them): landing announces that bronze changed with
# the first (the mart builds are scheduled on it), and a publication of the marts with the second.
BRONZE_EVENTS_ASSET = {"name": "lakehouse_bronze_events", "uri": "lakehouse://warehouse/bronze/events"}
GOLD_MARTS_ASSET = {"name": "lakehouse_gold_marts", "uri": "lakehouse://warehouse/gold"}


def settings_for(params: dict[str, Any] | None) -> Settings:
    """The configuration of a DAG run: `LAKEHOUSE_ENV` of the worker, and the run's `warehouse` param if set."""
    from jobs.config import load_settings

    return load_settings(warehouse=(params or {}).get("warehouse") or None)


def take_run_leases(settings: Settings, groups: Sequence[str], dag_id: str, run_id: str) -> list[str]:
    """Take the run's writer leases (its setup task), waiting as configured for another writer."""
    from jobs.writer_lock import airflow_owner, take

    return [lease.name for lease in take(settings, groups, airflow_owner(dag_id, run_id))]


def renew_run_leases(settings: Settings, groups: Sequence[str], dag_id: str, run_id: str) -> list[str]:
    """Every writing task of the run calls this first: it extends the run's leases, takes them if free (a
    task rerun alone), and fails with LeaseLost rather than wait if another writer took them over."""
    from jobs.writer_lock import airflow_owner, renew

    return [lease.name for lease in renew(settings, groups, airflow_owner(dag_id, run_id))]


def release_run_leases(settings: Settings, groups: Sequence[str], dag_id: str, run_id: str) -> list[str]:
    from jobs.writer_lock import airflow_owner, release

    return release(settings, groups, airflow_owner(dag_id, run_id))


class ParamError(ValueError):
    """A DAG param (or command argument) is wrong; the message names it."""


@dataclass(frozen=True)
class BackfillRequest:
    start: date
    end: date
    marts: tuple[str, ...]

    def summary(self) -> str:
        return f"restate {', '.join(self.marts)} for {self.start} to {self.end} ({(self.end - self.start).days + 1} day(s))"


def backfill_request(settings: Settings, start: Any, end: Any, marts: Sequence[str] | None) -> BackfillRequest:
    """Dates as `YYYY-MM-DD`, start <= end, not after today (UTC), marts known and enabled (default: all enabled)."""
    first, last = _date("start", start), _date("end", end)
    if first > last:
        raise ParamError(f"start {first} is after end {last}: a backfill restates start..end, both included")
    today = datetime.now(timezone.utc).date()
    if last > today:
        raise ParamError(f"end {last} is in the future (today is {today} UTC): there is nothing to restate there yet")
    return BackfillRequest(first, last, checked_marts(settings, marts))


def checked_marts(settings: Settings, marts: Sequence[str] | None) -> tuple[str, ...]:
    """The named marts in build order; None or empty: every enabled mart."""
    from jobs.marts import MART_NAMES

    enabled = [name for name in MART_NAMES if name in settings.marts.enabled]
    if not marts:
        return tuple(enabled)
    if isinstance(marts, str) or not all(isinstance(name, str) for name in marts):
        raise ParamError(f"marts must be a list of mart names, got {marts!r}")
    unknown = sorted(set(marts) - set(MART_NAMES))
    if unknown:
        raise ParamError(f"marts names unknown mart(s) {unknown}; marts: {', '.join(MART_NAMES)}")
    disabled = sorted(set(marts) - set(enabled))
    if disabled:
        raise ParamError(f"marts names mart(s) {disabled} that are not enabled (marts.enabled in conf/: {', '.join(enabled)})")
    return tuple(name for name in enabled if name in set(marts))


def replay_as_of(value: Any) -> datetime:
    """An ISO-8601 time with a UTC offset (`2026-01-20T00:00:00+00:00` or `...Z`), returned in UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ParamError(f"as_of {value!r} is not an ISO-8601 time, e.g. 2026-01-20T00:00:00+00:00") from None
    else:
        raise ParamError(f"as_of is required: an ISO-8601 time with a UTC offset, got {value!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ParamError(f"as_of {moment.isoformat()} has no UTC offset: add one, e.g. {moment.isoformat()}+00:00")
    return moment.astimezone(timezone.utc)


def maintenance_retention(settings: Settings, retention_hours: Any, force: Any) -> int:
    """The retention to use (None: the configured one); below the configured minimum only with force."""
    from jobs.maintenance import checked_retention

    if not isinstance(force, bool):
        raise ParamError(f"force must be true or false, got {force!r}")
    if retention_hours is not None and (isinstance(retention_hours, bool) or not isinstance(retention_hours, int)):
        raise ParamError(f"retention_hours must be a whole number of hours, got {retention_hours!r}")
    try:
        return checked_retention(settings, retention_hours, force=force)
    except ValueError as refused:
        raise ParamError(f"retention_hours: {refused}") from refused


def landed_by_run(settings: Settings, run_id: str) -> int:
    """Events the run landed into bronze, whichever attempt of the run landed them (from the ledger)."""
    from pyspark.sql import functions as F

    from jobs.spark import get_spark
    from jobs.tables import LANDING_LEDGER, read_table

    ledger = read_table(get_spark(settings), LANDING_LEDGER, settings.warehouse)
    return int(ledger.filter(F.col("landing_run_id") == run_id).agg(F.coalesce(F.sum("landed"), F.lit(0))).collect()[0][0])


def validate_published(settings: Settings, run_id: str, progress: Progress = log.info) -> dict[str, int]:
    """The nightly full validation: every enabled mart as published now (its whole gold table, against
    its suite) and the landing ledger's balance (lines read = landed + duplicates + quarantined).

    Raises ValidationFailed (naming mart, expectation and observed value), or LedgerUnbalanced, on the
    first run of the night that finds a problem; returns the rows validated per mart otherwise.
    """
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from jobs import data_docs, pipeline
    from jobs.marts import MART_NAMES, mart_module
    from jobs.spark import get_spark
    from jobs.tables import LANDING_LEDGER, latest_version, read_table
    from jobs.validation import raise_for_failures, validate_mart

    spark = get_spark(settings)
    results, rows = [], {}
    missing = []
    with data_docs.rendered_once(spark, settings.data_docs_dir):
        for mart in (name for name in MART_NAMES if name in settings.marts.enabled):
            path = pipeline.gold_path(settings, mart)  # the current major version's table
            if not DeltaTable.isDeltaTable(spark, path):  # reported below, with every other missing mart
                missing.append(mart)
                continue
            version = latest_version(spark, path)
            frame = spark.read.format("delta").option("versionAsOf", version).load(path)
            result = validate_mart(
                frame,
                mart_module(mart).CONTRACT,
                run_id=run_id,
                data_docs_dir=settings.data_docs_dir,
                max_failed_examples=settings.validation.max_failed_examples,
            )
            results.append(result)
            rows[mart] = frame.count()
            progress(result.summary())
    ledger = read_table(spark, LANDING_LEDGER, settings.warehouse)
    unbalanced = ledger.filter(F.col("lines_read") != F.col("landed") + F.col("duplicates") + F.col("quarantined"))
    broken = [row["source_file"] for row in unbalanced.select("source_file").limit(5).collect()]
    raise_for_failures(results)
    if broken:
        raise LedgerUnbalanced(f"landing ledger: lines read != landed + duplicates + quarantined for {', '.join(broken)}")
    if missing:
        raise MartNotPublished(f"enabled mart(s) {missing} have no published table under {settings.table_path('gold', '')}")
    progress(f"nightly validation passed: {', '.join(f'{m} {n} rows' for m, n in rows.items())}; landing ledger balanced")
    return rows


class LedgerUnbalanced(RuntimeError):
    """The landing ledger lost or invented lines."""


class MartNotPublished(RuntimeError):
    """An enabled mart has never been published."""


def _date(param: str, value: Any) -> date:
    if isinstance(value, datetime):
        raise ParamError(f"{param} must be a date (YYYY-MM-DD), not a time: {value.isoformat()}")
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ParamError(f"{param} is required: a date as YYYY-MM-DD, got {value!r}")
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            raise ValueError(value)
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ParamError(f"{param} {value!r} is not a date as YYYY-MM-DD") from None
