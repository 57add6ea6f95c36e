"""The store's export: appends events in `recorded_at` order, numbers them, and delivers them as
hourly NDJSON files, with the delivery faults the contract warns about.

Layout: `<out>/<YYYY-MM-DD>/<HH>/events-<YYYYMMDD>T<HH>-<part>.ndjson[.gz]`, by the UTC hour in which
the events were recorded. A file is written under a hidden temporary name and renamed when complete,
so a reader never sees half a file, and an existing file is never overwritten.
"""

from __future__ import annotations

import gzip
import heapq
import json
import os
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from jobs.simulator import anomalies
from jobs.simulator.clock import HOUR_US, InstantFormatter, TimeStyle
from jobs.simulator.events import EventKind, PendingEvent
from jobs.simulator.settings import AnomalySettings

# The store writes UTC, mostly as `Z`; one node of the cluster was set up with a local offset.
RECORDED_AT_Z = TimeStyle(0, 6, "Z")
RECORDED_AT_NUMERIC_UTC = TimeStyle(0, 6, "+00:00")  # 15 %
RECORDED_AT_LOCAL = TimeStyle(120, 6)  # 5 %
# How far a re-delivery travels: a few lines later in the same file, or up to 36 hours later.
MAX_LINES_UNTIL_REDELIVERY = 50
MAX_HOURS_UNTIL_REDELIVERY = 36
LINES_PER_WRITE = 2000

_EPOCH = datetime(1970, 1, 1)


@dataclass
class Tally:
    """What went into the files, counted as it is written."""

    lines_written: int = 0
    events_written: int = 0  # catalog events (known type and version), each delivery counted
    exact_duplicates: int = 0
    conflicting_duplicates: int = 0
    late_events: int = 0
    broken_lines: int = 0
    unknown_event_types: int = 0
    future_schema_versions: int = 0
    broken_line_kinds: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    _catalog_counts: dict[tuple[str, int], int] = field(default_factory=dict)  # distinct events by type, version

    def count_event(self, event: PendingEvent) -> None:
        kind = event.kind
        if kind is EventKind.CATALOG:
            self.events_written += 1
            key = (event.event_type, event.schema_version)
            self._catalog_counts[key] = self._catalog_counts.get(key, 0) + 1
            if event.is_late:
                self.late_events += 1
        elif kind is EventKind.UNKNOWN_TYPE:
            self.unknown_event_types += 1
        else:
            self.future_schema_versions += 1

    @property
    def event_type_counts(self) -> dict[str, int]:
        """Distinct catalog events per type (re-deliveries not counted)."""
        counts: dict[str, int] = {}
        for (event_type, _), count in sorted(self._catalog_counts.items()):
            counts[event_type] = counts.get(event_type, 0) + count
        return counts

    @property
    def schema_version_counts(self) -> dict[str, dict[int, int]]:
        counts: dict[str, dict[int, int]] = {}
        for (event_type, version), count in sorted(self._catalog_counts.items()):
            counts.setdefault(event_type, {})[version] = count
        return counts

    def count_broken(self, kind: str) -> None:
        self.broken_lines += 1
        self.broken_line_kinds[kind] = self.broken_line_kinds.get(kind, 0) + 1


class _HourFile:
    """One output file, streamed to disk in chunks under a temporary name."""

    def __init__(self, out_dir: str, hour_index: int, part: int, compress: bool) -> None:
        hour = _EPOCH + timedelta(hours=hour_index)
        name = f"events-{hour:%Y%m%dT%H}-{part:03d}.ndjson" + (".gz" if compress else "")
        self.relative_path = f"{hour:%Y-%m-%d}/{hour:%H}/{name}"
        # Plain strings, not pathlib: pathlib interns every path part, and unique file names would
        # grow the interpreter's intern table with the length of the history.
        directory = os.path.join(out_dir, f"{hour:%Y-%m-%d}", f"{hour:%H}")
        self.path = os.path.join(directory, name)
        if os.path.exists(self.path):
            raise FileExistsError(f"{self.path} exists: files of the export never change once written")
        os.makedirs(directory, exist_ok=True)
        self._partial_path = os.path.join(directory, f".{name}.partial")
        self._raw: IO[bytes] = open(self._partial_path, "wb")
        # mtime=0 and no file name in the header: the same lines always give the same bytes.
        self._out: IO[bytes] = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=6) if compress else self._raw
        )
        self._pending: list[str] = []
        self.line_count = 0

    def append(self, line: str) -> None:
        self._pending.append(line)
        self.line_count += 1
        if len(self._pending) >= LINES_PER_WRITE:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._out.write(("\n".join(self._pending) + "\n").encode("utf-8"))
            self._pending = []

    def close(self) -> None:
        self._flush()
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()
        os.replace(self._partial_path, self.path)


class EventLogWriter:
    """Records pending events into the global log and writes them out, hour file by hour file."""

    def __init__(
        self,
        out_dir: Path,
        *,
        seed: int,
        compress: bool,
        anomaly_settings: AnomalySettings,
        max_lines_per_file: int,
        formatter: InstantFormatter,
    ) -> None:
        self._out_dir = str(out_dir)
        self._compress = compress
        self._rng = random.Random(f"simulator:{seed}:store")
        self._encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
        self._formatter = formatter
        self._max_lines_per_file = max_lines_per_file
        self._exact_rate = anomaly_settings.exact_duplicate_rate
        self._conflict_rate = self._exact_rate + anomaly_settings.conflicting_duplicate_rate
        self._broken_rate = self._conflict_rate + anomaly_settings.broken_line_rate
        self._global_position = 0
        self._last_recorded_us = -1
        self._file: _HourFile | None = None
        self._hour_index = -1
        self._part = 0
        self._queued = 0  # tie-breaker that keeps heap order deterministic
        # Re-deliveries waiting for a later file: (hour index, queued, kind, line).
        self._later: list[tuple[int, int, str, str]] = []
        # Re-deliveries waiting for a later line of the current file: (line count, queued, kind, line).
        self._soon: list[tuple[int, int, str, str]] = []
        self.tally = Tally()

    def record(self, scheduled_us: int, event: PendingEvent) -> None:
        """Appends one event to the store at (or just after, the log being strictly ordered) its time."""
        recorded_us = max(scheduled_us, self._last_recorded_us + 1)
        self._last_recorded_us = recorded_us
        self._use_file_for(recorded_us // HOUR_US)
        if event.kind is EventKind.LEAKED_EMAIL:
            self._write_leaked_email(event, recorded_us)
            return
        stream = event.stream
        stream_version = stream.next_version
        stream.next_version = stream_version + 1
        self._global_position += 1
        recorded_at = self._formatter.format(recorded_us, self._recorded_at_style())
        line = self._line(event, stream_version, self._global_position, recorded_at)
        self._write(line)
        self.tally.count_event(event)
        if event.kind is EventKind.CATALOG:
            self._maybe_damage(event, stream_version, self._global_position, recorded_at, line)

    def close(self) -> None:
        """Writes what is still waiting into the last file and closes it."""
        if self._file is None:
            return
        while self._later:
            _, queued, kind, line = heapq.heappop(self._later)
            heapq.heappush(self._soon, (0, queued, kind, line))
        self._close_file()

    # --- envelope and anomalies -----------------------------------------------------------------

    def _recorded_at_style(self) -> TimeStyle:
        draw = self._rng.random()
        return RECORDED_AT_Z if draw < 0.80 else RECORDED_AT_NUMERIC_UTC if draw < 0.95 else RECORDED_AT_LOCAL

    def _line(self, event: PendingEvent, stream_version: int, global_position: int, recorded_at: str) -> str:
        """The event's JSON line, the same text as `encode(envelope(...))` but faster: only `data` goes
        through the JSON encoder; the envelope's strings are ids, names and timestamps that need no
        escaping."""
        producer = f',"producer":"{event.producer_name}"' if event.producer_name is not None else ""
        return (
            f'{{"event_id":"{event.event_id}","tenant_id":"{event.tenant_id}","stream_id":"{event.stream.stream_id}",'
            f'"stream_version":{stream_version},"global_position":{global_position},'
            f'"event_type":"{event.event_type}","schema_version":{event.schema_version},'
            f'"occurred_at":"{event.occurred_at}","recorded_at":"{recorded_at}","data":{self._encode(event.data)},'
            f'"metadata":{{"correlation_id":"{event.correlation_id}","causation_id":"{event.causation_id}"{producer}}}}}'
        )

    @staticmethod
    def envelope(event: PendingEvent, stream_version: int, global_position: int, recorded_at: str) -> dict[str, Any]:
        metadata: dict[str, Any] = {"correlation_id": event.correlation_id, "causation_id": event.causation_id}
        if event.producer_name is not None:
            metadata["producer"] = event.producer_name
        return {
            "event_id": event.event_id,
            "tenant_id": event.tenant_id,
            "stream_id": event.stream.stream_id,
            "stream_version": stream_version,
            "global_position": global_position,
            "event_type": event.event_type,
            "schema_version": event.schema_version,
            "occurred_at": event.occurred_at,
            "recorded_at": recorded_at,
            "data": event.data,
            "metadata": metadata,
        }

    def _maybe_damage(self, event: PendingEvent, stream_version: int, global_position: int, recorded_at: str, line: str) -> None:
        """One draw decides whether this event is re-delivered, re-delivered changed, or followed by a
        broken attempt to deliver it."""
        rng = self._rng
        draw = rng.random()
        if draw >= self._broken_rate:
            return
        if draw < self._exact_rate:
            self._redeliver("exact", line)
            return
        envelope = self.envelope(event, stream_version, global_position, recorded_at)
        if draw < self._conflict_rate:
            self._redeliver("conflict", self._encode(anomalies.conflicting_copy(envelope, rng)))
        else:
            kind, text = anomalies.broken_line(envelope, self._fresh_id(), rng, self._encode)
            self._write(text)
            self.tally.count_broken(kind)

    def _write_leaked_email(self, event: PendingEvent, recorded_us: int) -> None:
        # Looks like the next event of its stream, but is never recorded: it takes no version or position.
        recorded_at = self._formatter.format(recorded_us, self._recorded_at_style())
        envelope = self.envelope(event, event.stream.next_version, self._global_position + 1, recorded_at)
        self._write(anomalies.leaked_email_line(envelope, event.data["email"], self._rng, self._encode))
        self.tally.count_broken(anomalies.LEAKED_EMAIL_KIND)

    def _fresh_id(self) -> str:
        digits = f"{self._rng.getrandbits(128):032x}"
        return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"

    def _redeliver(self, kind: str, line: str) -> None:
        rng = self._rng
        self._queued += 1
        if rng.random() < 0.5:
            due_line = self._file_line_count() + rng.randint(1, MAX_LINES_UNTIL_REDELIVERY)
            heapq.heappush(self._soon, (due_line, self._queued, kind, line))
        else:
            due_hour = self._hour_index + rng.randint(1, MAX_HOURS_UNTIL_REDELIVERY)
            heapq.heappush(self._later, (due_hour, self._queued, kind, line))

    # --- files ----------------------------------------------------------------------------------

    def _file_line_count(self) -> int:
        return self._file.line_count if self._file is not None else 0

    def _write(self, line: str) -> None:
        assert self._file is not None
        self._file.append(line)
        self.tally.lines_written += 1
        soon = self._soon
        while soon and soon[0][0] <= self._file.line_count:
            _, _, kind, redelivered = heapq.heappop(soon)
            self._write_redelivery(kind, redelivered)

    def _write_redelivery(self, kind: str, line: str) -> None:
        assert self._file is not None
        self._file.append(line)
        self.tally.lines_written += 1
        if kind == "exact":
            self.tally.exact_duplicates += 1
            self.tally.events_written += 1
        else:
            self.tally.conflicting_duplicates += 1

    def _use_file_for(self, hour_index: int) -> None:
        if self._file is not None and hour_index == self._hour_index:
            if self._file.line_count < self._max_lines_per_file:
                return
            part = self._part + 1
        else:
            part = 0
        self._close_file()
        self._file = _HourFile(self._out_dir, hour_index, part, self._compress)
        self._hour_index, self._part = hour_index, part
        # Re-deliveries due by now are spread over the new file.
        while self._later and self._later[0][0] <= hour_index:
            _, queued, kind, line = heapq.heappop(self._later)
            due_line = self._rng.randint(0, MAX_LINES_UNTIL_REDELIVERY)
            heapq.heappush(self._soon, (due_line, queued, kind, line))

    def _close_file(self) -> None:
        if self._file is None:
            return
        while self._soon:
            _, _, kind, line = heapq.heappop(self._soon)
            self._write_redelivery(kind, line)
        self._file.close()
        self.tally.files.append(self._file.relative_path)
        self._file = None
