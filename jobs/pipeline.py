"""The pipeline's steps, each callable alone (by Airflow tasks) or in sequence (`run`).

Write-audit-publish: marts are built into `<warehouse>/staging/<run_id>/<mart>`, validated there, and
only then copied into `<warehouse>/gold/<mart>`, each in one Delta commit. Validation leaves a marker
naming the staging table versions it passed; publication refuses anything without it, so a failed
or skipped validation can never publish.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.config import Settings
from jobs.landing.files import LandingReport, land_files
from jobs.marts import MART_NAMES, mart_module
from jobs.marts.contract import BuildContext
from jobs.silver import SilverReport, build_silver, read_silver
from jobs.spark import get_spark
from jobs.tables import BRONZE_EVENTS, PUBLICATIONS, ensure_table, insert_new, latest_version, overwrite, read_table

log = logging.getLogger("jobs")
Progress = Callable[[str], None]


class PublicationRefused(RuntimeError):
    """Publication was asked for marts that did not pass validation in this run."""


@dataclass(frozen=True)
class Publication:
    mart: str
    contract_version: str
    table_path: str
    table_version: int
    row_count: int


def new_run_id() -> str:
    return f"run_{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}_{secrets.token_hex(3)}"


def safe_run_id(run_id: str) -> str:
    """Run ids become folder names; Airflow's contain ':' and '+'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)


def staging_path(settings: Settings, run_id: str, mart: str) -> str:
    return settings.table_path("staging", f"{safe_run_id(run_id)}/{mart}")


def gold_path(settings: Settings, mart: str) -> str:
    return settings.table_path("gold", mart)


def _marker_path(settings: Settings, run_id: str) -> Path:
    return Path(settings.table_path("staging", safe_run_id(run_id))) / "_validated.json"


def land(settings: Settings, landing_dir: Path, run_id: str, progress: Progress = log.info) -> LandingReport:
    """Land the folder's new files, then each configured event-store table's new rows, then honour
    the erasure requests among the landed events (docs/privacy.md)."""
    from jobs.config import read_master_key, read_secret
    from jobs.landing.postgres import land_postgres

    # Before anything is written: without the master key nothing personal can be encrypted.
    master_key = read_master_key(settings)
    spark = get_spark(settings)
    report = land_files(
        spark, settings.warehouse, landing_dir, run_id, patterns=settings.landing.file_patterns, progress=progress,
        master_key=master_key,
    )
    progress(report.summary())
    for source in settings.landing.postgres_sources:
        from_table = land_postgres(
            spark, settings.warehouse, source, run_id, password=read_secret(source.password_env), progress=progress,
            master_key=master_key,
        )
        progress(f"{source.source_name}: {from_table.summary()}")
        report.files.extend(from_table.files)
    from jobs.privacy.crypto import MasterKey
    from jobs.privacy.erasure import apply_erasure_events

    erased = apply_erasure_events(spark, settings.warehouse, MasterKey(master_key))
    if erased:
        progress(f"erased {len(erased)} customer(s) requested by events: their data keys are deleted")
    return report


def build(settings: Settings, run_id: str, progress: Progress = log.info) -> dict[str, int]:
    """Rebuild silver from bronze, then every enabled mart into this run's staging area."""
    spark = get_spark(settings)
    silver = build_silver(spark, settings.warehouse, progress=progress)
    watermark = _event_watermark(spark, settings)
    as_of = datetime.fromisoformat(watermark) if watermark else datetime.now(timezone.utc)
    rows = _build_marts(settings, as_of, lambda mart: staging_path(settings, run_id, mart), progress)
    _write_build_info(settings, run_id, watermark, silver)
    return rows


def replay(settings: Settings, as_of: datetime, progress: Progress = log.info) -> dict[str, str]:
    """Rebuild every enabled mart as it would have been with only the events that occurred up to
    `as_of`, into `<warehouse>/replays/as_of=<UTC time>/<mart>`, and validate it there.

    Published marts are never touched; the replay's tables stay for comparison. Returns their paths.
    """
    if as_of.tzinfo is None:
        raise ValueError(f"--as-of {as_of.isoformat()} needs a UTC offset, e.g. 2026-01-20T00:00:00+00:00")
    as_of = as_of.astimezone(timezone.utc)
    spark = get_spark(settings)
    build_silver(spark, settings.warehouse, progress=progress)
    folder = settings.table_path("replays", f"as_of={as_of:%Y-%m-%dT%H%M%SZ}")
    _build_marts(settings, as_of, lambda mart: f"{folder}/{mart}", progress)
    from jobs.validation import raise_for_failures, validate_mart

    results = [
        validate_mart(
            spark.read.format("delta").load(f"{folder}/{mart}"),
            mart_module(mart).CONTRACT,
            run_id=f"replay as of {as_of.isoformat()}",
            max_failed_examples=settings.validation.max_failed_examples,
        )
        for mart in _enabled_marts(settings)
    ]
    for result in results:
        progress(result.summary())
    raise_for_failures(results)
    progress(f"replayed as of {as_of.isoformat()} into {folder}")
    return {mart: f"{folder}/{mart}" for mart in _enabled_marts(settings)}


def _build_marts(settings: Settings, as_of: datetime, path_of: Callable[[str], str], progress: Progress) -> dict[str, int]:
    """Every enabled mart from silver events that occurred up to `as_of`, each written to `path_of(mart)`."""
    spark = get_spark(settings)
    context = BuildContext(as_of=as_of)
    sources: dict[str, DataFrame] = {}
    rows: dict[str, int] = {}
    for mart in _enabled_marts(settings):
        module = mart_module(mart)
        for name in module.INPUTS:
            if name not in sources and name not in MART_NAMES:
                events = read_silver(spark, settings.warehouse, name)
                sources[name] = events.filter(F.col("occurred_at") <= F.lit(as_of))
        path = path_of(mart)
        rows[mart] = overwrite(spark, module.build(sources, context), path)
        sources[mart] = spark.read.format("delta").load(path)
        progress(f"built {mart}: {rows[mart]} rows")
    return rows


def validate(settings: Settings, run_id: str, progress: Progress = log.info) -> None:
    """Validate every staged mart; raise ValidationFailed (nothing publishable) if any fails."""
    from jobs.validation import raise_for_failures, validate_mart

    spark = get_spark(settings)
    results, versions = [], {}
    for mart in _enabled_marts(settings):
        path = staging_path(settings, run_id, mart)
        versions[mart] = latest_version(spark, path)
        result = validate_mart(
            spark.read.format("delta").option("versionAsOf", versions[mart]).load(path),
            mart_module(mart).CONTRACT,
            run_id=run_id,
            data_docs_dir=settings.data_docs_dir,
            max_failed_examples=settings.validation.max_failed_examples,
        )
        results.append(result)
        progress(result.summary())
    raise_for_failures(results)
    marker = _marker_path(settings, run_id)
    info = json.loads(marker.with_name("_build.json").read_text())
    info["validated"] = {mart: {"staging_version": v, "result": r.summary()} for (mart, v), r in zip(versions.items(), results)}
    marker.write_text(json.dumps(info, indent=2))


def publish(settings: Settings, run_id: str, progress: Progress = log.info) -> list[Publication]:
    """Copy each validated staging table into gold in one commit, log it, and clear staging."""
    spark = get_spark(settings)
    log_path = ensure_table(spark, PUBLICATIONS, settings.warehouse)
    # A rerun of publish (an Airflow retry, a cleared task) publishes nothing twice.
    already = {
        row["mart"]
        for row in spark.read.format("delta").load(log_path).filter((F.col("run_id") == run_id) & (F.col("action") == "publish")).select("mart").collect()
    }
    todo = [mart for mart in _enabled_marts(settings) if mart not in already]
    if not todo:
        progress(f"run {run_id} is already published: nothing to do")
        return []
    marker = _marker_path(settings, run_id)
    if not marker.exists():
        raise PublicationRefused(f"run {run_id} has no passed validation: nothing published")
    info = json.loads(marker.read_text())
    publications = []
    for mart in todo:
        if mart not in info["validated"]:
            raise PublicationRefused(f"{mart} was not validated in run {run_id}: nothing more published")
        validated = info["validated"][mart]
        staged = spark.read.format("delta").option("versionAsOf", validated["staging_version"]).load(
            staging_path(settings, run_id, mart)
        )
        target = gold_path(settings, mart)
        staged.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(target)
        published = Publication(
            mart=mart,
            contract_version=mart_module(mart).CONTRACT.version,
            table_path=target,
            table_version=latest_version(spark, target),
            row_count=spark.read.format("delta").load(target).count(),
        )
        _log_publication(spark, log_path, published, run_id, info["event_watermark"], validated["result"])
        publications.append(published)
        progress(f"published {mart} v{published.contract_version} as table version {published.table_version}: {published.row_count} rows")
    shutil.rmtree(settings.table_path("staging", safe_run_id(run_id)), ignore_errors=True)
    return publications


def run(settings: Settings, landing_dir: Path, run_id: str | None = None, progress: Progress = log.info) -> list[Publication]:
    """Land, build, validate, publish: once, without Airflow."""
    run_id = run_id or new_run_id()
    progress(f"run {run_id}: warehouse {settings.warehouse}")
    land(settings, landing_dir, run_id, progress)
    build(settings, run_id, progress)
    validate(settings, run_id, progress)
    return publish(settings, run_id, progress)


def _enabled_marts(settings: Settings) -> list[str]:
    enabled = set(settings.marts.enabled)
    return [name for name in MART_NAMES if name in enabled]


def _event_watermark(spark: SparkSession, settings: Settings) -> str | None:
    """The as-of time of the run: the largest occurred_at among the events seen."""
    # Formatted by Spark in the session's UTC zone: collected timestamps would be in the machine's zone.
    latest = F.date_format(F.max("occurred_at"), "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX")
    return read_table(spark, BRONZE_EVENTS, settings.warehouse).agg(latest).collect()[0][0]


def _write_build_info(settings: Settings, run_id: str, watermark: str | None, silver: SilverReport) -> None:
    marker = _marker_path(settings, run_id)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)  # a rebuild invalidates an earlier validation of this run
    info = {"run_id": run_id, "event_watermark": watermark, "silver": silver.summary()}
    marker.with_name("_build.json").write_text(json.dumps(info, indent=2))


def _log_publication(
    spark: SparkSession, log_path: str, published: Publication, run_id: str, watermark: str | None, result: str
) -> None:
    row = spark.createDataFrame(
        [
            (
                published.mart,
                published.contract_version,
                published.table_path,
                published.table_version,
                run_id,
                datetime.fromisoformat(watermark) if watermark else None,
                published.row_count,
                result,
                "publish",
                datetime.now(timezone.utc),
            )
        ],
        PUBLICATIONS.ddl,
    )
    insert_new(spark, row, log_path, ("mart", "table_version", "action"))
