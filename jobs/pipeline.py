"""The pipeline's steps, each callable alone (by Airflow tasks) or in sequence (`run`).

Write-audit-publish: marts are built into `<warehouse>/staging/<run_id>/<mart>`, validated there, and
only then copied into `<warehouse>/gold/<mart>`, each in one Delta commit. Validation leaves a marker
naming the staging table versions it passed; publication refuses anything without it, so a failed
or skipped validation can never publish. Publication also refuses a run built before the run whose
data gold holds (a run killed before publication, retried after a later one published): that would
take gold back in time. Each step's writes fail with a first line naming the step, the table and the
root cause (jobs/failures.py).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import dataclass
from functools import partial
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Sequence

from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType

from jobs import storage
from jobs.config import Settings
from jobs.events.catalog import CATALOG
from jobs.failures import failing_clearly
from jobs.incremental import bronze_changes, bronze_version, catalog_fingerprint
from jobs.landing.files import LandingReport, land_files
from jobs.marts import MART_NAMES, mart_module
from jobs.marts.contract import BuildContext
from jobs.marts.restate import (
    Changes, Restatement, added, below_zero, counted_difference, joinable, kept, materialized,
)
from jobs.marts.shared import reused
from jobs.segments import check_with_spark as check_segments_with_spark
from jobs.silver import SilverReport, build_silver, read_silver
from jobs.spark import get_spark
from jobs.tables import (
    BUILDS,
    PUBLICATIONS,
    commit,
    ensure_table,
    insert_new,
    latest_version,
    overwrite,
    read_table,
    upsert,
)
from jobs.upcasting.chain import upcast

log = logging.getLogger("jobs")
Progress = Callable[[str], None]


class PublicationRefused(RuntimeError):
    """Publication was asked for marts that did not pass validation in this run."""


class StaleRunRefused(PublicationRefused):
    """The run's marts were built before the data their published tables hold: publishing them would
    take gold back in time."""


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
    """Where the mart's current contract is published (gold/<mart>, or gold/<mart>_v<major>)."""
    from jobs.publications import current_table

    return current_table(settings, mart).path


def _marker_path(settings: Settings, run_id: str, name: str = "_validated.json") -> str:
    """A run's marker in its staging folder: `_build.json` (what build saw) or `_validated.json`
    (what validation passed), read and written on the warehouse's file system (jobs/storage.py)."""
    return f"{settings.table_path('staging', safe_run_id(run_id))}/{name}"


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


def build(settings: Settings, run_id: str, progress: Progress = log.info, full: bool = False) -> dict[str, int]:
    """Bring silver up to date with bronze, then build every enabled mart into this run's staging area.

    A mart whose published build can be continued is restated: only the units (days, orders,
    campaigns…) that the events landed since that build touch are rebuilt, the rest is kept as
    published (jobs/marts/restate.py). Otherwise, or with `full`, it is rebuilt from all events.
    """
    return _stage(settings, run_id, progress, full=full)


def backfill(
    settings: Settings,
    run_id: str,
    start: date,
    end: date,
    marts: Sequence[str] | None = None,
    progress: Progress = log.info,
) -> dict[str, int]:
    """Stage every enabled mart for `run_id` with the UTC days `start`..`end` (inclusive) of `marts`
    (default: every enabled mart) restated from all events, then `validate` and `publish` it as any run.

    Units with a date (days of the daily marts) are restated only inside the range; orders, campaigns
    and customers are restated when an event of theirs occurred in it (customer_360 is always rebuilt
    whole). A backfill is also a regular build: every enabled mart catches up on the events landed
    since its published build, so the staged marts reflect every landed event and agree with silver
    and with each other (the reconciliation gate checks that). A mart never published yet is built in full.
    """
    enabled = _enabled_marts(settings)
    marts = list(marts) if marts else enabled
    if start > end:
        raise ValueError(f"backfill: start {start} is after end {end}")
    unknown = [mart for mart in marts if mart not in enabled]
    if unknown:
        raise ValueError(f"backfill: {', '.join(unknown)} not among the enabled marts ({', '.join(enabled)})")
    first = datetime.combine(start, datetime.min.time(), timezone.utc)
    after_last = datetime.combine(end + timedelta(days=1), datetime.min.time(), timezone.utc)

    def occurred_in_range(event_type: str) -> DataFrame:
        events = read_silver(get_spark(settings), settings.warehouse, event_type)
        return events.filter((F.col("occurred_at") >= F.lit(first)) & (F.col("occurred_at") < F.lit(after_last)))

    progress(f"backfill {run_id}: {', '.join(marts)} from {start} to {end}")
    return _stage(settings, run_id, progress, window=Window(frozenset(marts), (start, end), occurred_in_range))


def _stage(
    settings: Settings, run_id: str, progress: Progress, full: bool = False, window: Window | None = None
) -> dict[str, int]:
    """What `build` and `backfill` share: silver brought up to bronze, then every enabled mart staged
    for `run_id`, restated from the events landed since its published build (and, with `window`, a
    backfill's range) where it can be, else in full."""
    spark = get_spark(settings)
    step = "backfill" if window else "build"
    check_segments_with_spark(spark, settings.segments)
    upto = bronze_version(spark, settings.warehouse)
    with failing_clearly(step, "silver", settings.table_path("silver", ""), lambda: _PUBLISHED_UNTOUCHED):
        silver = build_silver(spark, settings.warehouse, progress=progress, upto=upto, full=full)
    watermark = silver.event_watermark  # bronze's largest occurred_at at `upto`, kept by silver's frontier
    as_of = datetime.fromisoformat(watermark) if watermark else datetime.now(timezone.utc)
    since = {} if full else _restatable_marts(spark, settings, upto)
    landed = bronze_changes(spark, settings.warehouse, min(since.values()), upto) if since else None
    restating = Restating(since, _landed_since(landed, since), window) if landed is not None else None
    built = _build_marts(
        settings, as_of, lambda mart: staging_path(settings, run_id, mart), progress, restating, upto, step=step
    )
    if landed is not None:
        landed.unpersist()
    with failing_clearly(step, f"run {run_id}", BUILDS.path(settings.warehouse), lambda: _PUBLISHED_UNTOUCHED):
        _record_builds(spark, settings, run_id, watermark, built)
    _write_build_info(settings, run_id, watermark, silver)
    return {mart: b.rows for mart, b in built.items()}


def replay(settings: Settings, as_of: datetime, progress: Progress = log.info) -> dict[str, str]:
    """Rebuild every enabled mart as it would have been with only the events that occurred up to
    `as_of`, into `<warehouse>/replays/as_of=<UTC time>/<mart>`, and validate it there.

    Published marts are never touched; the replay's tables stay for comparison. Returns their paths.
    """
    if as_of.tzinfo is None:
        raise ValueError(f"--as-of {as_of.isoformat()} needs a UTC offset, e.g. 2026-01-20T00:00:00+00:00")
    as_of = as_of.astimezone(timezone.utc)
    spark = get_spark(settings)
    check_segments_with_spark(spark, settings.segments)
    build_silver(spark, settings.warehouse, progress=progress)
    folder = settings.table_path("replays", f"as_of={as_of:%Y-%m-%dT%H%M%SZ}")
    _build_marts(settings, as_of, lambda mart: f"{folder}/{mart}", progress, step="replay")
    from jobs.validation import raise_for_failures, validate_mart

    frames = {mart: spark.read.format("delta").load(f"{folder}/{mart}") for mart in _enabled_marts(settings)}
    results = [
        validate_mart(
            frames[mart],
            mart_module(mart).CONTRACT,
            run_id=f"replay as of {as_of.isoformat()}",
            max_failed_examples=settings.validation.max_failed_examples,
        )
        for mart in _enabled_marts(settings)
    ]
    for result in results:
        progress(result.summary())
    results.append(_reconcile(settings, frames, as_of, f"replay as of {as_of.isoformat()}", None, progress))
    raise_for_failures(results)
    progress(f"replayed as of {as_of.isoformat()} into {folder}")
    return {mart: f"{folder}/{mart}" for mart in _enabled_marts(settings)}


@dataclass(frozen=True)
class Built:
    mode: str  # "full" or "restated"
    rows: int
    bronze_version: int  # the bronze version the staged table reflects, for the next build
    restated_units: int | None = None


@dataclass(frozen=True)
class Window:
    """A backfill's range: for `marts`, the units touched by the events that occurred in `days` (UTC,
    inclusive; `events(event_type)`) and by the rows of the marts they read dated in `days` are
    restated too, from all data."""

    marts: frozenset[str]
    days: tuple[date, date]
    events: Callable[[str], DataFrame]


@dataclass(frozen=True)
class Restating:
    """Which marts a build restates rather than rebuilds, and from what.

    `since[mart]`: the bronze version its published table reflects; `new_events(mart, event_type)`:
    the events landed since then, whose units are restated; `window`: a backfill's range, whose units
    are restated as well.
    """

    since: dict[str, int]
    new_events: Callable[[str, str], DataFrame]
    window: Window | None = None


def _landed_since(landed: DataFrame, since: dict[str, int]) -> Callable[[str, str], DataFrame]:
    """`new_events` for `Restating`: a mart's events of one type landed after its published build,
    upcast like silver (from bronze's change feed, `landed`)."""

    def new_events(mart: str, event_type: str) -> DataFrame:
        rows = landed.filter((F.col("_commit_version") > since[mart]) & (F.col("event_type") == event_type))
        return upcast(rows, CATALOG[event_type]).events

    return new_events


def _build_marts(
    settings: Settings,
    as_of: datetime,
    path_of: Callable[[str], str],
    progress: Progress,
    restating: Restating | None = None,
    upto: int = 0,
    step: str = "build",
) -> dict[str, Built]:
    """Every enabled mart from silver events that occurred up to `as_of`, each written to `path_of(mart)`:
    restated where `restating` allows it and every mart it reads was restated too, else in full.
    A failure names the `step`, the mart and its root cause (jobs/failures.py)."""
    spark = get_spark(settings)
    context = BuildContext(
        as_of=as_of,
        segments=settings.segments,
        experiment_splits=settings.experiments.splits,
        read_published=lambda mart: _published(spark, settings, mart),
    )
    since = restating.since if restating else {}
    sources: dict[str, DataFrame] = {}
    changed: dict[str, DataFrame] = {}  # restated marts: their touched units' rows, as published and as rebuilt
    built: dict[str, Built] = {}
    # Frames several marts derive from the same whole input are computed once (jobs/marts/shared.py).
    with reused(sources):
        for mart in _enabled_marts(settings):
            module = mart_module(mart)
            for name in module.INPUTS:
                if name not in sources and name not in MART_NAMES:
                    events = read_silver(spark, settings.warehouse, name)
                    sources[name] = events.filter(F.col("occurred_at") <= F.lit(as_of))
            path = path_of(mart)
            with failing_clearly(step, f"mart {mart}", path, lambda: _PUBLISHED_UNTOUCHED):
                restate = getattr(module, "RESTATE", None)
                upstream_restated = all(name in changed for name in module.INPUTS if name in MART_NAMES)
                touched, by_difference, published, why_full = None, None, None, None
                if restating and restate is not None and mart in since and upstream_restated:
                    published = spark.read.format("delta").load(gold_path(settings, mart))
                    on, unit = list(restate.unit), ", ".join(restate.unit)
                    if _by_difference(restate, module.INPUTS, restating, mart):
                        news = _changes(module.INPUTS, partial(restating.new_events, mart), changed, sources, as_of)
                        by_difference = _difference(settings, module, published, news, context)
                        why_full = by_difference.why_full
                    else:
                        touched = _touched(restate, module.INPUTS, published, sources, changed, restating, mart, as_of)
                        if touched is None:
                            # Known from the new events alone (restate.py): marts that read this one get no
                            # changes from it, and are built in full too.
                            why_full = "its new events touch units that need an input whole"
                        elif touched.whole:
                            # The build reads that input whole either way (restate.py): build in full, without
                            # joining the published rows and the rebuilt ones.
                            whole = ", ".join(touched.whole)
                            why_full = f"its {touched.units.count()} touched ({unit}) need {whole} whole"
                if by_difference is not None and by_difference.rows is not None:
                    rows = overwrite(spark, by_difference.rows, path)
                    built[mart] = Built("restated", rows, upto, by_difference.units)
                    progress(
                        f"built {mart}: {built[mart].restated_units} ({unit}) restated by difference, "
                        f"{by_difference.entities} ({', '.join(restate.counted.entity)}) touched, {rows} rows"
                    )
                elif touched is not None and not touched.whole:
                    rebuilt = module.build(touched.narrow, context).join(touched.keys, on=on, how="left_semi")
                    untouched = published.join(touched.keys, on=on, how="left_anti")
                    rows = overwrite(spark, untouched.unionByName(rebuilt), path)
                    built[mart] = Built("restated", rows, upto, touched.units.count())
                    progress(f"built {mart}: {built[mart].restated_units} ({unit}) restated, {rows} rows")
                else:
                    rows = overwrite(spark, module.build(sources, context), path)
                    built[mart] = Built("full", rows, upto)
                    how = f": in full ({why_full})," if why_full else " in full:"
                    progress(f"built {mart}{how} {rows} rows")
                keys = touched.keys if touched is not None else by_difference and by_difference.keys
                if keys is not None:
                    staged = spark.read.format("delta").load(path)
                    changed[mart] = published.join(keys, on=on, how="left_semi").unionByName(
                        staged.join(keys, on=on, how="left_semi")
                    )
                if touched is not None:
                    touched.units.unpersist()
            sources[mart] = spark.read.format("delta").load(path)
    return built


@dataclass(frozen=True)
class _Touched:
    """A restatement's touched units (computed once, cached), them as a join's right side, and the
    inputs narrowed to them, with the names of those its `narrow` kept whole."""

    units: DataFrame
    keys: DataFrame
    narrow: dict[str, DataFrame]
    whole: list[str]


def _by_difference(restate: Restatement, inputs: Sequence[str], restating: Restating, mart: str) -> bool:
    """Whether `mart` is restated by difference (restate.Counted): it can be, it is not in a backfill's
    range (restated from all data), and the upstream marts it reads were published from the same bronze
    version as it (as published, they are what its published build read)."""
    if restate.counted is None or (restating.window is not None and mart in restating.window.marts):
        return False
    return all(restating.since.get(name) == restating.since[mart] for name in inputs if name in MART_NAMES)


@dataclass(frozen=True)
class _Difference:
    """A restatement by difference: the mart's new rows, how many units the difference touched and them
    as a join's right side (`keys`), and how many entities were touched; or why it is built in full."""

    rows: DataFrame | None
    units: int
    keys: DataFrame | None
    entities: int
    why_full: str | None = None


def _difference(settings: Settings, module, published: DataFrame, news: Changes, context: BuildContext) -> _Difference:
    """The mart (`module`) restated by difference from the run's changes (`news`), or why it cannot be:
    more entities touched than a restatement reads by key, or published rows the events before the
    run do not explain (a count would fall below 0)."""
    spark = get_spark(settings)
    restate: Restatement = module.RESTATE
    counted, key = restate.counted, list(module.CONTRACT.key)
    upstream = {
        name: spark.read.format("delta").load(gold_path(settings, name)) for name in module.INPUTS if name in MART_NAMES
    }
    build = partial(module.build, context=context)
    difference = counted_difference(counted, build, module.INPUTS, news, upstream, key)
    entity = ", ".join(counted.entity)
    if difference is None:
        return _Difference(None, 0, None, 0, f"its new events touch more ({entity}) than a restatement reads by key")
    rows, units, entities = difference
    total = added(published, rows, key)
    negative = below_zero(total, key)
    if negative:
        why = f"{negative} of its published rows count less than the events before this run: not built from them"
        return _Difference(None, units, None, entities, why)
    keys = joinable(materialized(rows.select(*restate.unit)))
    return _Difference(kept(total, counted), units, keys, entities)


def _changes(
    inputs: Sequence[str],
    events_of: Callable[[str], DataFrame],
    marts: dict[str, DataFrame],
    sources: dict[str, DataFrame],
    as_of: datetime,
) -> Changes:
    """A mart's `Changes`: its event inputs' rows from `events_of` (up to `as_of`), the upstream marts'
    changed rows, and every input in full."""
    events = {
        name: events_of(name).filter(F.col("occurred_at") <= F.lit(as_of)) for name in inputs if name not in MART_NAMES
    }
    return Changes(events=events, marts=marts, sources=sources)


def _touched(
    restate: Restatement,
    inputs: Sequence[str],
    published: DataFrame,
    sources: dict[str, DataFrame],
    changed: dict[str, DataFrame],
    restating: Restating,
    mart: str,
    as_of: datetime,
) -> _Touched | None:
    """The units of `mart` that the run's changes touch (and, in a backfill, those of its range), and
    its inputs narrowed to them; None when its new events already tell that they need an input whole."""

    def changes(events_of: Callable[[str], DataFrame], marts: dict[str, DataFrame]) -> Changes:
        return _changes(inputs, events_of, marts, sources, as_of)

    news = changes(lambda name: restating.new_events(mart, name), changed)
    if restate.needs_whole is not None and restate.needs_whole(news, published):
        return None
    units = restate.touched(news, published)
    window = restating.window
    if window is not None and mart in window.marts:
        # The range from all data: its events, and the rows of the marts it reads dated in it
        # (basket_daily reads only orders: its days in the range are restated from all orders).
        upstream = {name: _within(sources[name], window.days) for name in inputs if name in MART_NAMES}
        in_window = restate.touched(changes(window.events, upstream), published)
        units = units.unionByName(_within(in_window, window.days)).distinct()
    units = materialized(units).cache()  # few: computed once, broadcast to joins (restate.py)
    narrow = restate.narrow(sources, units)
    whole = [name for name in narrow if narrow[name] is sources.get(name)]
    return _Touched(units, joinable(units), dict(narrow), whole)


# What readers see when a build fails: builds write only staging (or replays), never gold.
_PUBLISHED_UNTOUCHED = "the published marts are untouched"


def _within(units: DataFrame, window: tuple[date, date]) -> DataFrame:
    """Units whose date column lies in the window; all of them without a date column."""
    dated = [f.name for f in units.schema.fields if isinstance(f.dataType, DateType)]
    if not dated:
        return units
    return units.filter(F.col(dated[0]).between(F.lit(window[0]), F.lit(window[1])))


def _restatable_marts(spark: SparkSession, settings: Settings, upto: int) -> dict[str, int]:
    """The enabled marts whose published table can be restated: the run that published it recorded
    its build, from the same catalog and contract version. Each with the bronze version it reflects."""
    latest = _current_publications(spark, settings).select("mart", "run_id")
    builds = read_table(spark, BUILDS, settings.warehouse)
    catalog = catalog_fingerprint()
    restatable = {}
    for row in latest.join(builds, on=["mart", "run_id"]).collect():
        if row["mart"] not in _enabled_marts(settings):
            continue
        if (
            row["catalog"] == catalog
            and row["contract_version"] == mart_module(row["mart"]).CONTRACT.version
            and row["bronze_version"] <= upto
        ):
            restatable[row["mart"]] = row["bronze_version"]
    return restatable


def _current_publications(spark: SparkSession, settings: Settings) -> DataFrame:
    """Per enabled mart with a publication, the log row of the run whose data its current table holds:
    its latest publication or rollback (a rollback row carries the restored publication's run).
    Columns: mart, run_id, table_version, published_at."""
    current = [gold_path(settings, mart) for mart in _enabled_marts(settings)]
    latest = (
        read_table(spark, PUBLICATIONS, settings.warehouse)
        .filter(F.col("action").isin("publish", "rollback") & F.col("table_path").isin(current))
        .groupBy("mart")
        .agg(F.max_by(F.struct("run_id", "table_version", "published_at"), "published_at").alias("entry"))
    )
    return latest.select("mart", "entry.*")


def _stale_builds(spark: SparkSession, settings: Settings, runs: Column) -> list[Row]:
    """The builds (meta/builds rows, of the runs `runs` selects) older than the build whose data their
    mart's published table holds: a publication would take that mart back in time.

    Older means built from an earlier bronze version, or from the same one but before (a later
    build from the same bronze may be a backfill, or a new catalog, that the earlier one lacks). A
    published run without a recorded build (a log older than meta/builds) is compared by time: a
    build made before that publication is older. Each row: run_id, mart, bronze_version, and the
    publication's published_run_id, table_version, published_bronze_version."""
    every_build = read_table(spark, BUILDS, settings.warehouse).select("run_id", "mart", "bronze_version", "built_at")
    builds = every_build.filter(runs & F.col("mart").isin(_enabled_marts(settings)))
    published = (
        _current_publications(spark, settings)
        .join(every_build, on=["run_id", "mart"], how="left")
        .select(
            "mart",
            "table_version",
            "published_at",
            F.col("run_id").alias("published_run_id"),
            F.col("bronze_version").alias("published_bronze_version"),
            F.col("built_at").alias("published_built_at"),
        )
    )
    bronze, published_bronze = F.col("bronze_version"), F.col("published_bronze_version")
    older = F.when(published_bronze.isNull(), F.col("built_at") < F.col("published_at")).otherwise(
        (bronze < published_bronze) | ((bronze == published_bronze) & (F.col("built_at") < F.col("published_built_at")))
    )
    return (
        builds.join(published, on="mart", how="inner")
        .filter((F.col("run_id") != F.col("published_run_id")) & older)
        .orderBy("run_id", "mart")
        .collect()
    )


def _record_builds(
    spark: SparkSession, settings: Settings, run_id: str, watermark: str | None, built: dict[str, Built]
) -> None:
    now = datetime.now(timezone.utc)
    at = datetime.fromisoformat(watermark) if watermark else None
    rows = [
        (run_id, mart, b.bronze_version, catalog_fingerprint(), mart_module(mart).CONTRACT.version, b.mode,
         b.restated_units, b.rows, at, now)
        for mart, b in built.items()
    ]
    upsert(spark, spark.createDataFrame(rows, BUILDS.ddl), ensure_table(spark, BUILDS, settings.warehouse), ("run_id", "mart"))


def _published(spark: SparkSession, settings: Settings, mart: str) -> DataFrame | None:
    """The mart as last published, read at its current version; None before its first publication."""
    from delta.tables import DeltaTable

    path = gold_path(settings, mart)
    return spark.read.format("delta").load(path) if DeltaTable.isDeltaTable(spark, path) else None


def validate(settings: Settings, run_id: str, progress: Progress = log.info) -> None:
    """Validate every staged mart, then reconcile them with silver events and with each other
    (expectations/reconciliation.py); raise ValidationFailed (nothing publishable) if anything fails."""
    from jobs import data_docs
    from jobs.validation import raise_for_failures, validate_mart

    spark = get_spark(settings)
    marker = _marker_path(settings, run_id)
    info = json.loads(storage.read_text(spark, _marker_path(settings, run_id, "_build.json")))
    results, versions, frames = [], {}, {}
    with data_docs.rendered_once(spark, settings.data_docs_dir):
        for mart in _enabled_marts(settings):
            path = staging_path(settings, run_id, mart)
            versions[mart] = latest_version(spark, path)
            frames[mart] = spark.read.format("delta").option("versionAsOf", versions[mart]).load(path)
            result = validate_mart(
                frames[mart],
                mart_module(mart).CONTRACT,
                run_id=run_id,
                data_docs_dir=settings.data_docs_dir,
                max_failed_examples=settings.validation.max_failed_examples,
            )
            results.append(result)
            progress(result.summary())
        watermark = info["event_watermark"]
        as_of = datetime.fromisoformat(watermark) if watermark else datetime.now(timezone.utc)
        reconciled = _reconcile(settings, frames, as_of, run_id, settings.data_docs_dir, progress)
    raise_for_failures([*results, reconciled])
    info["validated"] = {
        mart: {"staging_version": v, "result": f"{r.summary()}\n{reconciled.summary()}"}
        for (mart, v), r in zip(versions.items(), results)
    }
    storage.write_text(spark, marker, json.dumps(info, indent=2))


def _reconcile(settings: Settings, frames: dict[str, DataFrame], as_of: datetime, run_id: str, data_docs_dir: str | None, progress: Progress):
    from expectations.reconciliation import reconcile

    result, skipped = reconcile(
        get_spark(settings), settings.warehouse, frames, as_of, run_id=run_id, data_docs_dir=data_docs_dir,
        max_failed_examples=settings.validation.max_failed_examples,
    )
    for sentence in skipped:
        progress(f"reconciliation: {sentence}")
    progress(result.summary())
    return result


def publish(settings: Settings, run_id: str, progress: Progress = log.info) -> list[Publication]:
    """Copy each validated staging table into its published table in one commit, log the run's
    publications in one commit of the log, and clear staging. A mart whose contract has a new major
    version goes to a new table beside the old one (jobs/publications.py), and the old one gets an end
    of support date in the log.

    A run built before the data a published table holds is refused (StaleRunRefused, `_stale_builds`):
    a run killed before publication can be retried until a later run publishes, not after, as that
    would take gold back in time. Such a run can never be published, so its staging is removed: the
    refused run's own, and, after each publication, that of every run it made stale
    (`_remove_stale_staging`). A failed write says first which mart failed, why, and which version
    its table keeps (jobs/failures.py).
    """
    from jobs import publications

    spark = get_spark(settings)
    # A rerun of publish (an Airflow retry, a cleared task) publishes nothing twice.
    already = {
        row["mart"]
        for row in publications.read_log(spark, settings.warehouse)
        .filter((F.col("run_id") == run_id) & (F.col("action") == publications.PUBLISH))
        .select("mart")
        .collect()
    }
    todo = [mart for mart in _enabled_marts(settings) if mart not in already]
    if not todo:
        progress(f"run {run_id} is already published: nothing to do")
        return []
    # Before the marker: the staging of a stale run may be gone already, its build record is not.
    stale = _stale_builds(spark, settings, F.col("run_id") == run_id)
    if stale:
        _remove_staging(spark, settings, run_id)
        raise StaleRunRefused(_stale_message(settings, run_id, stale))
    marker = _marker_path(settings, run_id)
    if not storage.exists(spark, marker):
        raise PublicationRefused(f"run {run_id} has no passed validation: nothing published")
    info = json.loads(storage.read_text(spark, marker))
    unvalidated = [mart for mart in todo if mart not in info["validated"]]
    if unvalidated:
        raise PublicationRefused(f"{', '.join(unvalidated)} not validated in run {run_id}: nothing published")
    majors = {mart: mart_module(mart).CONTRACT.major_version for mart in todo}
    publications.check_major_versions(spark, settings, majors)
    watermark = datetime.fromisoformat(info["event_watermark"]) if info["event_watermark"] else None
    published_list = []
    table_of = {}
    logged: list[publications.LogEntry] = []
    try:
        for mart in todo:
            contract = mart_module(mart).CONTRACT
            table = table_of[mart] = publications.published_table(settings, mart, contract.major_version)
            validated = info["validated"][mart]
            before = _table_version(spark, table.path)
            readers_see = partial(_after_failed_publish, spark, table, before)  # asked only on failure
            with failing_clearly("publish", f"mart {mart}", table.path, readers_see):
                staged = spark.read.format("delta").option("versionAsOf", validated["staging_version"]).load(
                    staging_path(settings, run_id, mart)
                )
                written = commit(spark, staged, table.path, "overwrite")  # the version and its rows, from the commit
            published = Publication(
                mart=mart,
                contract_version=contract.version,
                table_path=table.path,
                table_version=written.version,
                row_count=written.rows,
            )
            logged.append(
                publications.LogEntry(
                    mart=mart,
                    contract_version=contract.version,
                    table=table,
                    table_version=written.version,
                    run_id=run_id,
                    event_watermark=watermark,
                    row_count=published.row_count,
                    validation_result=validated["result"],
                    action=publications.PUBLISH,
                )
            )
            published_list.append(published)
            progress(
                f"published {mart} v{contract.version} to {table.sql_name} as table version {written.version}: "
                f"{published.row_count} rows"
            )
    finally:
        # One commit to the log for the run's publications, also for those before a mart that failed.
        # A process killed before it leaves published marts unlogged: a rerun publishes them again
        # (the same rows, as a new table version) and logs them.
        if logged:
            unlogged = ", ".join(entry.table.sql_name for entry in logged)
            with failing_clearly(
                "publish",
                "the publication log",
                publications.PUBLICATIONS.path(settings.warehouse),
                lambda: f"{unlogged} published and not logged: publishing run {run_id} again logs them",
            ):
                publications.append_all(spark, settings.warehouse, logged)
    # Once for all marts, after their publication (a run killed before it: at the next publication).
    publications.end_older_majors(spark, settings, {p.mart: table_of[p.mart] for p in published_list}, progress)
    _remove_staging(spark, settings, run_id)
    _remove_stale_staging(spark, settings, progress)
    return published_list


def _stale_message(settings: Settings, run_id: str, stale: list[Row]) -> str:
    from jobs.publications import current_table

    def older(row: Row) -> str:
        table = current_table(settings, row["mart"]).sql_name
        held = f"{table} holds run {row['published_run_id']}'s publication (table version {row['table_version']}"
        if row["published_bronze_version"] is None:
            return f"{row['mart']} was built before {held}, whose build is not recorded)"
        if row["bronze_version"] == row["published_bronze_version"]:
            return f"{row['mart']} was built from bronze version {row['bronze_version']}, and {held}, built later from it)"
        return (
            f"{row['mart']} was built from bronze version {row['bronze_version']}, and {held}, "
            f"built from bronze version {row['published_bronze_version']})"
        )

    return (
        f"run {run_id} is older than what is published, nothing published: {'; '.join(map(older, stale))}. "
        f"Publishing it would take gold back in time; its staging is removed. Build and publish a new run instead."
    )


def _table_version(spark: SparkSession, path: str) -> int | None:
    """The Delta table's latest version; None where there is no table yet."""
    from delta.tables import DeltaTable

    return latest_version(spark, path) if DeltaTable.isDeltaTable(spark, path) else None


def _after_failed_publish(spark: SparkSession, table, before: int | None) -> str:
    """What readers of a published table see after its publication failed."""
    now = _table_version(spark, table.path)
    if now == before:
        return f"{table.sql_name} keeps version {before}" if before is not None else f"{table.sql_name} stays unpublished"
    return f"{table.sql_name} is at version {now} (was {before}), a publication not logged: publish the run again"


def _remove_staging(spark: SparkSession, settings: Settings, run_id: str) -> None:
    """Best effort, as the run's outcome is settled by then: a folder that cannot be removed is
    logged and left (`_remove_stale_staging` tries again after the next publication)."""
    _remove_folder(spark, settings.table_path("staging", safe_run_id(run_id)))


def _remove_folder(spark: SparkSession, folder: str) -> None:
    try:
        storage.delete(spark, folder)
    except Exception as error:  # noqa: BLE001 (a Py4JJavaError from the file system)
        log.warning("could not remove %s: %s", folder, str(error).splitlines()[0])


def _remove_stale_staging(spark: SparkSession, settings: Settings, progress: Progress) -> list[str]:
    """Remove the staging folder of every run older than what is now published (`_stale_builds`):
    publish would refuse it, so nothing will ever read it again. Returns the folders removed.

    Done by publish, right after a publication, rather than by `maintain`: that publication is what
    makes those runs stale, so their staging (a full copy of their marts each) goes as soon as it is
    of no use, on every deployment, including those that seldom or never run `maintain`; and publish
    holds the marts lease, so no build or validation of another run writes staging meanwhile. A
    folder without a recorded build (a build killed before it finished) is left: its run can still
    build again under its id, and nothing can publish it before.
    """
    root = settings.table_path("staging", "")
    folders = [entry.name for entry in storage.list_dir(spark, root) if entry.is_dir]
    if not folders:
        return []
    folder_name = F.regexp_replace("run_id", r"[^A-Za-z0-9_.-]", "_")  # safe_run_id, in Spark
    stale = sorted({safe_run_id(row["run_id"]) for row in _stale_builds(spark, settings, folder_name.isin(folders))})
    for folder in stale:
        _remove_folder(spark, f"{root.rstrip('/')}/{folder}")
    if stale:
        progress(f"removed the staging of {len(stale)} run(s) older than the published marts: {', '.join(stale)}")
    return stale


def run(
    settings: Settings, landing_dir: Path, run_id: str | None = None, progress: Progress = log.info, full: bool = False
) -> list[Publication]:
    """Land, build, validate, publish: once, without Airflow."""
    run_id = run_id or new_run_id()
    progress(f"run {run_id}: warehouse {settings.warehouse}")
    land(settings, landing_dir, run_id, progress)
    build(settings, run_id, progress, full=full)
    validate(settings, run_id, progress)
    return publish(settings, run_id, progress)


def _enabled_marts(settings: Settings) -> list[str]:
    enabled = set(settings.marts.enabled)
    return [name for name in MART_NAMES if name in enabled]


def _write_build_info(settings: Settings, run_id: str, watermark: str | None, silver: SilverReport) -> None:
    spark = get_spark(settings)
    storage.delete(spark, _marker_path(settings, run_id))  # a rebuild invalidates an earlier validation of this run
    info = {"run_id": run_id, "event_watermark": watermark, "silver": silver.summary()}
    storage.write_text(spark, _marker_path(settings, run_id, "_build.json"), json.dumps(info, indent=2))
