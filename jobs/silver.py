"""Silver: one typed Delta table per event type at its newest schema version, derived from bronze.

Silver can always be rebuilt from bronze. A build appends what landed since the version each table
has read up to (`meta/silver_frontiers`, jobs/incremental.py), or rewrites it whole when that record
is missing or stale. Events that cannot be projected are kept beside it with their reason:
`held_back` (a schema version newer than the catalog knows, projected by a replay once an upcaster
exists) and `invalid_payloads`.
"""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce
from typing import Callable, Iterable, Iterator

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from jobs import storage
from jobs.events.catalog import CATALOG, EVENT_TYPES
from jobs.incremental import (
    TableState,
    bronze_changes,
    bronze_version,
    catalog_fingerprint,
    record_silver_frontiers,
    record_silver_writing,
    silver_states,
)
from jobs.tables import BRONZE_EVENTS, write
from jobs.upcasting.chain import Upcast, upcast


@dataclass
class SilverReport:
    """What one build did to silver: `mode` full (every table rewritten from bronze at `bronze_version`)
    or incremental (the events landed since each table's recorded version appended)."""

    mode: str = "full"
    bronze_version: int = 0
    rows_per_table: dict[str, int] = field(default_factory=dict)
    held_back: int = 0
    invalid_payloads: int = 0
    unknown_event_types: dict[str, int] = field(default_factory=dict)
    # The largest occurred_at in bronze at `bronze_version` (ISO 8601, UTC; None for an empty bronze):
    # the as-of time of marts built from it.
    event_watermark: str | None = None

    def summary(self) -> str:
        unknown = ", ".join(f"{name}: {n}" for name, n in sorted(self.unknown_event_types.items())) or "none"
        written = "events in" if self.mode == "full" else "new events appended to"
        return (
            f"silver ({self.mode}, bronze version {self.bronze_version}): {sum(self.rows_per_table.values())} "
            f"{written} {len(self.rows_per_table)} tables, {self.held_back} held back (newer schema version), "
            f"{self.invalid_payloads} invalid payloads, unknown event types kept in bronze: {unknown}"
        )


def silver_path(warehouse: str, table: str) -> str:
    return f"{warehouse.rstrip('/')}/silver/{table}"


def read_silver(spark: SparkSession, warehouse: str, event_type_name: str) -> DataFrame:
    return spark.read.format("delta").load(silver_path(warehouse, CATALOG[event_type_name].table_name))


def build_silver(
    spark: SparkSession,
    warehouse: str,
    progress=lambda message: None,
    only: Iterable[str] | None = None,
    upto: int | None = None,
    full: bool = False,
) -> SilverReport:
    """Bring silver up to bronze version `upto` (default: the latest).

    `meta/silver_frontiers` records the bronze version and catalog each table reflects, moved only
    after the build's writes committed. When every table's record is there and from the current
    catalog, only the events landed after it are upcast and appended (each table one commit, none when
    nothing is new; no work at all when nothing landed since every table's record and no erasure was
    requested outside the event log since); otherwise, or with `full`, every table is rewritten from
    bronze. A rerun after a stop appends to each table only what it lacks. `only`: just these event
    types' tables, for tests of marts that read a few (held_back and invalid_payloads then cover just
    those).
    """
    upto = bronze_version(spark, warehouse) if upto is None else upto
    wanted = set(only) if only is not None else None
    event_types = [t for t in EVENT_TYPES if wanted is None or t.name in wanted]
    names = [t.table_name for t in event_types] + ["invalid_payloads", "held_back"]
    states_by_name = silver_states(spark, warehouse, {name: silver_path(warehouse, name) for name in names})
    states = {silver_path(warehouse, name): state for name, state in states_by_name.items()}
    catalog = catalog_fingerprint()
    changes = None
    if not full and all(s is not None and s.catalog == catalog and s.bronze_version <= upto for s in states.values()):
        oldest = min(states.values(), key=lambda s: s.bronze_version)
        if oldest.bronze_version == upto and not _erasures_outside_pending(spark, warehouse, event_types):
            return _nothing_new(spark, warehouse, event_types, upto, oldest, progress)
        changes = bronze_changes(spark, warehouse, oldest.bronze_version, upto, oldest.bronze_rows)
    # Should the build stop before its writes all committed, the next one can tell which did.
    record_silver_writing(spark, warehouse, states_by_name, upto)
    if changes is None:
        bronze = spark.read.format("delta").option("versionAsOf", upto).load(BRONZE_EVENTS.path(warehouse))
        if wanted is not None:  # other catalog types are not needed; unknown ones are still counted
            bronze = bronze.filter(F.col("event_type").isin(list(wanted)) | ~F.col("event_type").isin(list(CATALOG)))
        with _split_by_type(spark, warehouse, bronze) as split:
            report = _write_silver(
                spark, warehouse, event_types, split.of_type, lambda path: upto, "overwrite", upto, catalog,
                split.types(),
            )
            report.event_watermark = latest_occurred_at(split.rows)
            report.unknown_event_types = _counts_by_type(split.unknown())
    else:
        def since(path: str, event_type) -> DataFrame:
            landed = changes.filter(F.col("_commit_version") > states[path].bronze_version).drop("_commit_version")
            return landed.filter(F.col("event_type") == event_type.name)

        counts = _counts_by_type(changes)
        present = {name for name in counts if name in CATALOG}
        report = _write_silver(
            spark, warehouse, event_types, since, lambda path: states[path].bronze_version, "append", upto, catalog,
            present,
        )
        if oldest.event_watermark is not None:
            # Bronze only gains rows: its largest occurred_at moves on from the landed events alone.
            report.event_watermark = max(filter(None, (oldest.event_watermark, latest_occurred_at(changes))))
        else:
            report.event_watermark = _watermark_at(spark, warehouse, upto)
        report.unknown_event_types = {name: n for name, n in counts.items() if name not in CATALOG}
        changes.unpersist()
    record_silver_frontiers(spark, warehouse, names, upto, catalog, report.event_watermark)
    progress(report.summary())
    return report


# Under the warehouse, a full build's copy of bronze with one partition per silver table (column `_PART`:
# the event type, or `_UNKNOWN` for types the catalog does not know), removed when the build ends.
SPLIT = "_scratch/silver_split"
_PART = "_silver_table"
_UNKNOWN = "_unknown"


@dataclass(frozen=True)
class _Split:
    rows: DataFrame  # bronze's columns and `_PART`
    columns: tuple[str, ...]  # bronze's

    def of_type(self, _path: str, event_type) -> DataFrame:
        """The rows of one event type: only its partition's files are read."""
        return self.rows.filter(F.col(_PART) == event_type.name).select(*self.columns)

    def unknown(self) -> DataFrame:
        return self.rows.filter(F.col(_PART) == _UNKNOWN).select(*self.columns)

    def types(self) -> set[str]:
        """The catalog's types with rows: the partitions holding files, from Delta's log (no data read)."""
        parts = {match.group(1) for file in self.rows.inputFiles() if (match := re.search(f"/{_PART}=([^/]+)/", file))}
        return parts - {_UNKNOWN}


@contextmanager
def _split_by_type(spark: SparkSession, warehouse: str, bronze: DataFrame) -> Iterator[_Split]:
    """Bronze written once into a Delta table partitioned by event type, read by each silver table's
    parts from its own partition; deleted after. Before, a disk cache of all of bronze was read whole for
    each event type and each of its parts (events, invalid payloads, held back: about 70 reads): silver
    took 1,078 of a full rebuild's 1,158 s at 10M events in the benchmark, reading 223 GiB."""
    scratch = f"{warehouse.rstrip('/')}/{SPLIT}"
    # A path of its own: Delta caches a table's log by path, and a table deleted and written again at
    # the same path could be read through a stale one.
    path = f"{scratch}/{uuid.uuid4().hex}"
    part = F.when(F.col("event_type").isin(list(CATALOG)), F.col("event_type")).otherwise(F.lit(_UNKNOWN))
    storage.delete(spark, scratch)  # what a stopped build left (the writer lock excludes another build)
    try:
        bronze.withColumn(_PART, part).write.format("delta").partitionBy(_PART).save(path)
        yield _Split(spark.read.format("delta").load(path), tuple(bronze.columns))
    finally:
        storage.delete(spark, scratch)


def _counts_by_type(rows: DataFrame) -> dict[str, int]:
    return {row["event_type"]: row["count"] for row in rows.groupBy("event_type").count().collect()}


def _nothing_new(spark, warehouse: str, event_types, upto: int, state: TableState, progress) -> SilverReport:
    """Every table has read bronze up to `upto` already: no table is written and no frontier moves
    (an hourly run with nothing landed does no silver work)."""
    watermark = state.event_watermark if state.event_watermark is not None else _watermark_at(spark, warehouse, upto)
    rows = {t.table_name: 0 for t in event_types}
    report = SilverReport(mode="incremental", bronze_version=upto, rows_per_table=rows, event_watermark=watermark)
    progress(report.summary())
    return report


def _erasures_outside_pending(spark: SparkSession, warehouse: str, event_types) -> bool:
    """Whether an erasure requested outside the event log (`erase`) has not joined its silver table yet."""
    erasures = CATALOG["CustomerErasureRequested"]
    if erasures not in event_types:
        return False
    path = silver_path(warehouse, erasures.table_name)
    empty = spark.read.format("delta").load(path).limit(0)
    return _with_erasures_outside(spark, warehouse, empty, already_in=path).limit(1).count() > 0


def _with_erasures_outside(spark: SparkSession, warehouse: str, rows: DataFrame, already_in: str | None) -> DataFrame:
    """`rows` of CustomerErasureRequested plus one per erasure requested outside the event log (`erase`),
    less those the table at `already_in` has (an append's target; None for a rewrite): each joins once."""
    from jobs.privacy.erasure import with_erasures_outside_the_event_log

    requested = with_erasures_outside_the_event_log(spark, warehouse, rows)
    if already_in is None:
        return requested
    return requested.join(spark.read.format("delta").load(already_in).select("event_id"), "event_id", "left_anti")


def _watermark_at(spark: SparkSession, warehouse: str, version: int) -> str | None:
    """Bronze's largest occurred_at at `version`, read from bronze (when no frontier recorded it)."""
    bronze = spark.read.format("delta").option("versionAsOf", version).load(BRONZE_EVENTS.path(warehouse))
    return latest_occurred_at(bronze)


def latest_occurred_at(events: DataFrame) -> str | None:
    """The largest occurred_at of the events, ISO 8601 in UTC (formatted by Spark in the session's
    UTC zone: collected timestamps would be in the machine's zone); None without events."""
    return events.agg(F.date_format(F.max("occurred_at"), "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX")).first()[0]


def _write_silver(
    spark,
    warehouse,
    event_types,
    rows_for,
    read_from: Callable[[str], int],
    mode: str,
    upto: int,
    catalog: str,
    present: set[str],
) -> SilverReport:
    """Upcast each table's bronze rows of its type (`rows_for(path, event_type)`) and write every table in
    one commit each.

    A type's rows feed three tables (its own, invalid_payloads, held_back): they are upcast once for
    the tables that read bronze from the same version (`read_from(path)`, always so but after a stopped
    build), not once per table. Each upcast is a plan of a few dozen expressions per schema version that
    Spark analyses on the driver, one call at a time: 63 of them took 10 s under cProfile in a test run's
    silver (21 types, 4,900 events); upcast once each, silver took 20-23 s where it took 25 s.

    Types without rows to read (not in `present`, the types among the rows being built from) are not
    upcast: an append leaves their tables as they are (it would commit nothing), an overwrite writes
    them empty in their typed schema (`_typed_schemas`). A small batch brings few of the 21 types (a test's
    history a handful; the benchmark's hour of 25,000 events nearly all).
    """
    upcasts: dict[tuple[int, str], Upcast] = {}

    def upcast_into(path: str, event_type) -> Upcast:
        key = (read_from(path), event_type.name)
        if key not in upcasts:
            upcasts[key] = upcast(rows_for(path, event_type), event_type)
        return upcasts[key]

    def empty(schema: StructType) -> DataFrame:
        return spark.createDataFrame([], schema)

    erasures = silver_path(warehouse, CATALOG["CustomerErasureRequested"].table_name)
    writes = {}
    for t in event_types:
        path = silver_path(warehouse, t.table_name)
        if t.name in present:
            writes[path] = upcast_into(path, t).events
        elif mode == "overwrite" or path == erasures:  # erasures requested outside the event log may join
            writes[path] = empty(_typed_schemas(spark, t, catalog, rows_for(path, t).schema)[0])
    if erasures in writes:
        writes[erasures] = _with_erasures_outside(
            spark, warehouse, writes[erasures], already_in=erasures if mode == "append" else None
        )
    invalid, held_back = silver_path(warehouse, "invalid_payloads"), silver_path(warehouse, "held_back")
    # One union part per event type; few rows, so one file instead of one per part. repartition, not
    # coalesce: coalesce(1) ran every part's read of bronze in a single task (at 2.5M events, 159 s
    # of one core reading 19 GiB of cached bronze while the other slots idled); after a shuffle the
    # parts read in parallel and only their few rows meet in one partition.
    with_rows = [t for t in event_types if t.name in present]
    if with_rows:
        parts = [upcast_into(invalid, t).invalid for t in with_rows]
        writes[invalid] = reduce(DataFrame.unionByName, parts).repartition(1)
        parts = [upcast_into(held_back, t).held_back for t in with_rows]
        writes[held_back] = reduce(DataFrame.unionByName, parts).repartition(1)
    elif mode == "overwrite":
        first = event_types[0]
        _events, invalid_rows, held_back_rows = _typed_schemas(spark, first, catalog, rows_for(invalid, first).schema)
        writes[invalid], writes[held_back] = empty(invalid_rows), empty(held_back_rows)
    metadata = TableState(upto, catalog).to_json()
    # Each table is a small job; on few cores, running them side by side hides Delta's per-commit latency.
    with ThreadPoolExecutor(max_workers=4) as pool:
        rows = dict(zip(writes, pool.map(lambda item: write(spark, item[1], item[0], mode, metadata), writes.items())))
    return SilverReport(
        mode="full" if mode == "overwrite" else "incremental",
        bronze_version=upto,
        rows_per_table={t.table_name: rows.get(silver_path(warehouse, t.table_name), 0) for t in event_types},
        invalid_payloads=rows.get(invalid, 0),
        held_back=rows.get(held_back, 0),
    )


# The schemas of a type's silver rows, invalid payloads and held-back events, by type, catalog
# fingerprint and bronze schema: derived once per process (an upcast plan analysed on no rows) for the
# tables written empty.
_TYPED_SCHEMAS: dict[tuple[str, str, str], tuple[StructType, StructType, StructType]] = {}


def _typed_schemas(
    spark: SparkSession, event_type, catalog: str, bronze: StructType
) -> tuple[StructType, StructType, StructType]:
    key = (event_type.name, catalog, bronze.json())
    if key not in _TYPED_SCHEMAS:
        typed = upcast(spark.createDataFrame([], bronze), event_type)
        _TYPED_SCHEMAS[key] = (typed.events.schema, typed.invalid.schema, typed.held_back.schema)
    return _TYPED_SCHEMAS[key]
