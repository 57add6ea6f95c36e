"""Landing files into bronze: every line of every new file ends in exactly one place.

Order of commits, chosen so that a run killed anywhere can simply be rerun:
1. quarantine (insert by file + line),
2. bronze events (appended: the events whose event_id bronze did not hold when the batch was classified),
3. the ledger row of each file (insert by file), which marks the file done.
A rerun re-reads a file that has no ledger row; lines it already landed are recognised by their
file and line in bronze and counted as landed again, not as duplicates, so the ledger adds up the same.
The append relies on the bronze writer lease (jobs/writer_lock.py) that every landing holds: nothing
else writes bronze between the classification and the append. An insert-only MERGE would check again,
but at the price of joining the batch with every event id in bronze, a cost that grows with history.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.events.catalog import CATALOG
from jobs.landing.parse import ParsedEvent, Rejection, UnreadableFile, parse_line, read_lines
from jobs.privacy.crypto import (
    MasterKey, Owner, Protector, Subject, addresses_in, event_owner, may_hold_address, subjects_for_event,
)
from jobs.privacy.erasure import ensure_personal_events, personal_rows
from jobs.privacy.keys import KeyStore
from jobs.tables import BRONZE_EVENTS, LANDING_LEDGER, QUARANTINE, ensure_table, insert_new, write

# Lines parsed before a batch is written: bounds the driver's memory on large deliveries.
DEFAULT_BATCH_LINES = 250_000

Progress = Callable[[str], None]


@dataclass
class FileLedger:
    source: str
    source_file: str
    lines_read: int = 0
    landed: int = 0
    duplicates: int = 0
    quarantined: int = 0
    conflicting_duplicates: int = 0
    unknown_event_types: int = 0
    file_error: str | None = None

    def adds_up(self) -> bool:
        return self.lines_read == self.landed + self.duplicates + self.quarantined


@dataclass
class LandingReport:
    run_id: str
    files: list[FileLedger] = field(default_factory=list)
    skipped_files: int = 0  # landed by an earlier run
    ignored_files: list[str] = field(default_factory=list)  # not matching the landing patterns

    def total(self, name: str) -> int:
        return sum(getattr(ledger, name) for ledger in self.files)

    def summary(self) -> str:
        unreadable = [ledger for ledger in self.files if ledger.file_error]
        return (
            f"{len(self.files)} new file(s), {self.skipped_files} already landed: "
            f"{self.total('lines_read')} lines read = {self.total('landed')} landed + "
            f"{self.total('duplicates')} duplicates + {self.total('quarantined')} quarantined "
            f"({self.total('conflicting_duplicates')} conflicting duplicates, "
            f"{self.total('unknown_event_types')} events of unknown types kept in bronze)"
            + "".join(f"\n  {ledger.source_file}: {ledger.file_error}" for ledger in unreadable)
        )


def discover_files(landing_dir: Path, patterns: Iterable[str]) -> tuple[list[Path], list[Path]]:
    """Files under the landing folder at any depth: (to land, ignored), both sorted."""
    patterns = tuple(patterns)
    if not landing_dir.is_dir():
        raise FileNotFoundError(f"landing folder {landing_dir} does not exist")
    matched, ignored = [], []
    for path in sorted(p for p in landing_dir.rglob("*") if p.is_file()):
        (matched if any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns) else ignored).append(path)
    return matched, ignored


def land_files(
    spark: SparkSession,
    warehouse: str,
    landing_dir: Path,
    run_id: str,
    *,
    patterns: Iterable[str] = ("*.ndjson", "*.ndjson.gz"),
    batch_lines: int = DEFAULT_BATCH_LINES,
    progress: Progress = lambda message: None,
    master_key: bytes | None = None,
) -> LandingReport:
    """Land every file of the folder that no earlier run finished.

    Personal fields and e-mail addresses are encrypted on the way (docs/privacy.md) under data keys
    wrapped by `master_key` (default: the configured one, see `jobs.config.read_master_key`).
    """
    files, ignored = discover_files(landing_dir, patterns)
    done = landed_sources(spark, warehouse)
    todo = [path for path in files if str(path.resolve()) not in done]
    progress(f"landing {len(todo)} new file(s) of {len(files)} under {landing_dir}")
    source = f"files:{landing_dir.resolve()}"
    report = land_chunks(
        spark, warehouse, _batches(todo, batch_lines, source), run_id, progress=progress, master_key=master_key
    )
    report.skipped_files = len(files) - len(todo)
    report.ignored_files = [str(path) for path in ignored]
    return report


def landed_sources(spark: SparkSession, warehouse: str) -> set[str]:
    """Sources (files, database position ranges) whose ledger row says they are landed."""
    ledger = spark.read.format("delta").load(ensure_table(spark, LANDING_LEDGER, warehouse))
    return {row["source_file"] for row in ledger.select("source_file").collect()}


def land_chunks(
    spark: SparkSession,
    warehouse: str,
    batches: Iterable[list[ParsedSource]],
    run_id: str,
    *,
    progress: Progress = lambda message: None,
    master_key: bytes | None = None,
) -> LandingReport:
    """Land batches of parsed sources: the common path of every source (files, an event-store table)."""
    # The key first: without it nothing may be written.
    master = MasterKey(master_key if master_key is not None else _configured_master_key())
    keys = KeyStore(spark, warehouse, master)
    paths = {spec.name: ensure_table(spark, spec, warehouse) for spec in (BRONZE_EVENTS, QUARANTINE, LANDING_LEDGER)}
    paths["personal_events"] = ensure_personal_events(spark, warehouse)
    report = LandingReport(run_id)
    for batch in batches:
        report.files.extend(_land_batch(spark, paths, batch, run_id, keys))
        progress(f"  {len(report.files)} source(s) landed, {report.total('landed')} events so far")
    return report


def _configured_master_key() -> bytes:
    from jobs.config import load_settings, read_master_key

    return read_master_key(load_settings())


@dataclass
class ParsedSource:
    """One unit of the ledger: a file, or a range of an event-store table's positions."""

    source_file: str
    events: list[ParsedEvent]
    rejections: list[Rejection]
    lines_read: int
    file_error: str | None
    # What status groups by: `files:<landing folder>`, `postgres:<name>`; derived from source_file if empty.
    source: str = ""

    @property
    def source_name(self) -> str:
        if self.source:
            return self.source
        # `postgres:<name>:<first>-<last>` -> `postgres:<name>`; a bare path is a file.
        kind, _, rest = self.source_file.partition(":")
        return f"{kind}:{rest.split(':')[0]}" if rest else "files"


def _batches(paths: list[Path], batch_lines: int, source: str) -> Iterator[list[ParsedSource]]:
    batch: list[ParsedSource] = []
    lines = 0
    for path in paths:
        parsed = _parse_file(path, source)
        batch.append(parsed)
        lines += parsed.lines_read
        if lines >= batch_lines:
            yield batch
            batch, lines = [], 0
    if batch:
        yield batch


def _parse_file(path: Path, source: str) -> ParsedSource:
    events: list[ParsedEvent] = []
    rejections: list[Rejection] = []
    lines_read = 0
    file_error = None
    try:
        for line_number, raw in read_lines(path):
            lines_read = line_number
            outcome = parse_line(raw, line_number)
            (events if isinstance(outcome, ParsedEvent) else rejections).append(outcome)
    except UnreadableFile as error:
        file_error = str(error)
    if lines_read == 0 and file_error is None:
        # Marked landed like any file (the export writes each file whole, then renames it into place),
        # but said, since an empty export file usually means something went wrong upstream.
        file_error = "empty_file: no lines"
    return ParsedSource(str(path.resolve()), events, rejections, lines_read, file_error, source)


_DISPOSITION_NEW = "new"
_DISPOSITION_LANDED_BEFORE = "landed_before"  # by an interrupted earlier attempt at the same file
_DISPOSITION_DUPLICATE = "duplicate"
_DISPOSITION_CONFLICT = "conflicting_duplicate"


def _land_batch(
    spark: SparkSession, paths: dict[str, str], batch: list[ParsedSource], run_id: str, keys: KeyStore
) -> list[FileLedger]:
    landed_at = datetime.now(timezone.utc)
    # Keys are committed first: no ciphertext is ever written without its key.
    protected = _protect(batch, keys)
    candidates = spark.createDataFrame(_events_table(batch, run_id, landed_at, protected))
    bronze = spark.read.format("delta").load(paths["events"])
    classified = with_disposition(candidates, bronze).localCheckpoint()

    conflicts = classified.filter(F.col("disposition") == _DISPOSITION_CONFLICT).select(
        F.col("source_file"),
        F.col("source_line").alias("line_number"),
        F.lit("conflicting_duplicate: same event_id, different content than the event already kept").alias("reason"),
        F.col("_raw_text").alias("raw_text"),
        F.col("event_id"),
        F.lit(run_id).alias("landing_run_id"),
        F.lit(landed_at).alias("quarantined_at"),
    )
    rejected = spark.createDataFrame(_rejections_table(batch, run_id, landed_at, protected))
    insert_new(spark, rejected.unionByName(conflicts), paths["quarantine"], ("source_file", "line_number"))

    new_events = classified.filter(F.col("disposition") == _DISPOSITION_NEW).select(
        *(name for name in bronze.columns)
    )
    # Before bronze's commit, so that erasure's search, which reads only these, misses none of bronze's.
    write(spark, personal_rows(new_events), paths["personal_events"], "append")
    write(spark, new_events, paths["events"], "append")

    counts = {
        (row["source_file"], row["disposition"], row["is_known_type"]): row["count"]
        for row in classified.groupBy("source_file", "disposition", F.col("event_type").isin(list(CATALOG)).alias("is_known_type"))
        .count()
        .collect()
    }
    ledgers = [_ledger(parsed, counts) for parsed in batch]
    broken = [ledger for ledger in ledgers if not ledger.adds_up()]
    if broken:
        raise AssertionError(f"landing ledger does not add up for {broken[0]}; nothing marked done")
    ledger_rows = spark.createDataFrame(
        [(run_id, l.source, l.source_file, l.lines_read, l.landed, l.duplicates, l.quarantined, l.conflicting_duplicates,
          l.unknown_event_types, l.file_error, landed_at) for l in ledgers],
        LANDING_LEDGER.ddl,
    )
    insert_new(spark, ledger_rows, paths["landing_ledger"], ("source_file",))
    return ledgers


def with_disposition(candidates: DataFrame, bronze: DataFrame) -> DataFrame:
    """Classify each candidate line: new, landed before (same file and line), duplicate, or conflict.

    Within a batch the first line (by file order, then line) of an event_id is the one kept.
    """
    first_in_batch = Window.partitionBy("event_id").orderBy("_file_order", "source_line")
    # The batch's ids, broadcast, pick the few bronze rows to compare with: without them the join would
    # shuffle every id in bronze, a cost that grows with history and not with the batch.
    batch_ids = F.broadcast(candidates.select("event_id").distinct())
    kept = bronze.join(batch_ids, on="event_id", how="left_semi").select(
        "event_id",
        F.col("content_sha256").alias("_kept_sha256"),
        F.col("source_file").alias("_kept_file"),
        F.col("source_line").alias("_kept_line"),
    )
    ranked = candidates.withColumn("_rank", F.row_number().over(first_in_batch)).withColumn(
        "_first_sha256", F.first("content_sha256").over(first_in_batch)
    )
    joined = ranked.join(kept, on="event_id", how="left")
    in_bronze = F.col("_kept_sha256").isNotNull()
    disposition = (
        F.when(in_bronze & (F.col("_kept_file") == F.col("source_file")) & (F.col("_kept_line") == F.col("source_line")), _DISPOSITION_LANDED_BEFORE)
        .when(in_bronze & (F.col("_kept_sha256") == F.col("content_sha256")), _DISPOSITION_DUPLICATE)
        .when(in_bronze, _DISPOSITION_CONFLICT)
        .when(F.col("_rank") == 1, _DISPOSITION_NEW)
        .when(F.col("_first_sha256") == F.col("content_sha256"), _DISPOSITION_DUPLICATE)
        .otherwise(_DISPOSITION_CONFLICT)
    )
    return joined.withColumn("disposition", disposition)


def _ledger(parsed: ParsedSource, counts: dict[tuple[str, str, bool], int]) -> FileLedger:
    def count(disposition: str, known: bool | None = None) -> int:
        return sum(
            n for (file, d, is_known), n in counts.items()
            if file == parsed.source_file and d == disposition and (known is None or is_known == known)
        )

    conflicts = count(_DISPOSITION_CONFLICT)
    return FileLedger(
        source=parsed.source_name,
        source_file=parsed.source_file,
        lines_read=parsed.lines_read,
        landed=count(_DISPOSITION_NEW) + count(_DISPOSITION_LANDED_BEFORE),
        duplicates=count(_DISPOSITION_DUPLICATE),
        quarantined=len(parsed.rejections) + conflicts,
        conflicting_duplicates=conflicts,
        unknown_event_types=count(_DISPOSITION_NEW, known=False) + count(_DISPOSITION_LANDED_BEFORE, known=False),
        file_error=parsed.file_error,
    )


_EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("tenant_id", pa.string()),
        ("stream_id", pa.string()),
        ("stream_type", pa.string()),
        ("stream_version", pa.int64()),
        ("global_position", pa.int64()),
        ("event_type", pa.string()),
        ("schema_version", pa.int32()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
        ("data", pa.string()),
        ("metadata", pa.string()),
        ("content_sha256", pa.string()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        ("landing_run_id", pa.string()),
        ("landed_at", pa.timestamp("us", tz="UTC")),
        ("_file_order", pa.int32()),
        ("_raw_text", pa.string()),
    ]
)


@dataclass
class _Protected:
    """A batch's texts as they are written, personal values and addresses encrypted, by id() of the
    event or rejection."""

    events: dict[int, tuple[str, str, str]]  # (data, metadata, raw text) of every event
    rejections: dict[int, tuple[str, str]]  # (reason, raw text) of rejections that carry addresses


def _json(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _protect(batch: list[ParsedSource], keys: KeyStore) -> _Protected:
    """Encrypt what is personal in a batch: two passes, so that all its keys are read or made at once."""
    personal_fields = _personal_fields()
    events: dict[int, tuple[str, str, str]] = {}
    to_protect: list[tuple[ParsedEvent, Owner | None, tuple[str, ...]]] = []
    subjects: set[Subject] = set()
    for parsed in batch:
        for event in parsed.events:
            fields = personal_fields.get(event.event_type, ())
            personal = {name: event.data[name] for name in fields if event.data.get(name) is not None}
            # The raw line holds data and metadata: no address in it, none in them (the common case).
            if not personal and not may_hold_address(event.raw_text):
                events[id(event)] = (_json(event.data), _json(event.metadata), event.raw_text)
                continue
            owner = event_owner(event.tenant_id, event.stream_type, event.stream_id, event.data)
            texts = (_json(event.data), _json(event.metadata), event.raw_text)
            subjects |= subjects_for_event(keys.master, owner, personal, texts)
            to_protect.append((event, owner, fields))
    rejections = [r for parsed in batch for r in parsed.rejections if addresses_in(r.raw_text) or addresses_in(r.reason)]
    for rejection in rejections:
        subjects |= subjects_for_event(keys.master, None, {}, (rejection.raw_text, rejection.reason))
    keys.ensure(subjects)
    protector = Protector(keys.master, keys.lookup)
    for event, owner, fields in to_protect:
        data = protector.text(_json(protector.event_data(event.data, fields, owner)), owner)
        events[id(event)] = (data, protector.text(_json(event.metadata), owner), protector.text(event.raw_text, owner))
    return _Protected(events, {id(r): (protector.text(r.reason), protector.text(r.raw_text)) for r in rejections})


def _personal_fields() -> dict[str, tuple[str, ...]]:
    return {name: event_type.personal_fields for name, event_type in CATALOG.items() if event_type.personal_fields}


def _events_table(batch: list[ParsedSource], run_id: str, landed_at: datetime, protected: _Protected) -> pa.Table:
    columns: dict[str, list] = {name: [] for name in _EVENT_SCHEMA.names}
    for file_order, parsed in enumerate(batch):
        for event in parsed.events:
            data, metadata, raw_text = protected.events[id(event)]
            row = {
                "event_id": event.event_id,
                "tenant_id": event.tenant_id,
                "stream_id": event.stream_id,
                "stream_type": event.stream_type,
                "stream_version": event.stream_version,
                "global_position": event.global_position,
                "event_type": event.event_type,
                "schema_version": event.schema_version,
                "occurred_at": event.occurred_at,
                "recorded_at": event.recorded_at,
                "data": data,
                "metadata": metadata,
                "content_sha256": event.content_sha256,
                "source_file": parsed.source_file,
                "source_line": event.line_number,
                "landing_run_id": run_id,
                "landed_at": landed_at,
                "_file_order": file_order,
                # Used only for a conflicting duplicate's quarantine row.
                "_raw_text": raw_text,
            }
            for name, value in row.items():
                columns[name].append(value)
    return pa.Table.from_pydict(columns, schema=_EVENT_SCHEMA)


_REJECTION_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("line_number", pa.int64()),
        ("reason", pa.string()),
        ("raw_text", pa.string()),
        ("event_id", pa.string()),
        ("landing_run_id", pa.string()),
        ("quarantined_at", pa.timestamp("us", tz="UTC")),
    ]
)


def _rejections_table(batch: list[ParsedSource], run_id: str, landed_at: datetime, protected: _Protected) -> pa.Table:
    rows = [
        (parsed.source_file, r.line_number, *protected.rejections.get(id(r), (r.reason, r.raw_text)), r.event_id, run_id, landed_at)
        for parsed in batch
        for r in parsed.rejections
    ]
    return pa.Table.from_pylist([dict(zip(_REJECTION_SCHEMA.names, row)) for row in rows], schema=_REJECTION_SCHEMA)
