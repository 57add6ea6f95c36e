"""`simulate`: a history of the event store's export, day by day, streamed to hourly NDJSON files.

The tenants share one global log, so they are simulated side by side, hour by hour: each tenant emits
the hour's events into one pending log ordered by recording time, and the writer records everything
due before the end of the hour. Memory holds one hour of traffic, events scheduled for later (order
lifecycles, late events), and the capped pools of known visitors and customers; not the history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from jobs.simulator.clock import DAY_US, HOUR_US, InstantFormatter, midnight_us
from jobs.simulator.events import PendingLog
from jobs.simulator.settings import SimulatorSettings, check_switch_order
from jobs.simulator.world import TenantWorld
from jobs.simulator.writer import EventLogWriter, Tally


@dataclass(frozen=True)
class SimulationSummary:
    """What one `simulate` call wrote. Line counts add up:
    lines_written = events_written + conflicting_duplicates + broken_lines + unknown_event_types
    + future_schema_versions, and events_written = sum(event_type_counts) + exact_duplicates."""

    out_dir: str
    start_date: date
    days: int
    tenants: int
    seed: int
    tenant_currencies: dict[str, str]  # tenant id -> currency of its v2+ amounts (v1 amounts are EUR)
    files: tuple[str, ...]  # relative to out_dir, in the order written
    lines_written: int
    events_written: int  # lines holding a catalog event (known type and version), duplicates included
    exact_duplicates: int
    conflicting_duplicates: int
    late_events: int  # catalog events recorded more than a day after they occurred
    broken_lines: int
    unknown_event_types: int
    future_schema_versions: int
    broken_line_kinds: dict[str, int] = field(default_factory=dict)
    event_type_counts: dict[str, int] = field(default_factory=dict)  # distinct catalog events per type
    schema_version_counts: dict[str, dict[int, int]] = field(default_factory=dict)
    # Emitted for times after the last simulated day (e.g. deliveries of the last orders): not exported.
    events_after_end: int = 0

    @property
    def tenant_ids(self) -> tuple[str, ...]:
        return tuple(self.tenant_currencies)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: dates as ISO text, lists instead of tuples, string keys."""
        return {
            "out_dir": self.out_dir,
            "start_date": self.start_date.isoformat(),
            "days": self.days,
            "tenants": self.tenants,
            "seed": self.seed,
            "tenant_currencies": dict(self.tenant_currencies),
            "files": list(self.files),
            "lines_written": self.lines_written,
            "events_written": self.events_written,
            "exact_duplicates": self.exact_duplicates,
            "conflicting_duplicates": self.conflicting_duplicates,
            "late_events": self.late_events,
            "broken_lines": self.broken_lines,
            "unknown_event_types": self.unknown_event_types,
            "future_schema_versions": self.future_schema_versions,
            "broken_line_kinds": dict(sorted(self.broken_line_kinds.items())),
            "event_type_counts": dict(sorted(self.event_type_counts.items())),
            "schema_version_counts": {
                event_type: {str(version): count for version, count in sorted(by_version.items())}
                for event_type, by_version in sorted(self.schema_version_counts.items())
            },
            "events_after_end": self.events_after_end,
        }


def simulate(
    out_dir: Path,
    *,
    days: int,
    tenants: int,
    seed: int,
    start_date: date,
    settings: SimulatorSettings = SimulatorSettings(),
    compress: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SimulationSummary:
    """Writes `days` days of the event store's export, starting at `start_date` (UTC), for `tenants`
    merchants, under `out_dir`. The same arguments always give the same bytes."""
    _check_arguments(days=days, tenants=tenants, seed=seed, start_date=start_date, settings=settings)
    out_dir = Path(out_dir)
    _refuse_written_days(out_dir, start_date, days)
    formatter = InstantFormatter()
    log = PendingLog()
    worlds = [
        TenantWorld(index, settings=settings, seed=seed, start_date=start_date, log=log, formatter=formatter)
        for index in range(tenants)
    ]
    writer = EventLogWriter(
        out_dir,
        seed=seed,
        compress=compress,
        anomaly_settings=settings.anomalies,
        max_lines_per_file=settings.max_events_per_file,
        formatter=formatter,
    )
    first_day_us = midnight_us(start_date)
    for day_index in range(days):
        day_start_us = first_day_us + day_index * DAY_US
        _simulate_day(worlds, log, writer, day_index, day_start_us)
        if progress is not None:
            day = start_date + timedelta(days=day_index)
            progress(
                f"{day.isoformat()} simulated (day {day_index + 1}/{days}): "
                f"{writer.tally.lines_written:,} lines in {len(writer.tally.files)} files so far"
            )
    writer.close()
    return _summary(out_dir, start_date, days, tenants, seed, worlds, writer.tally, events_after_end=len(log))


def _simulate_day(worlds: list[TenantWorld], log: PendingLog, writer: EventLogWriter, day_index: int, day_start_us: int) -> None:
    for world in worlds:
        world.plan_day(day_index, day_start_us)
    for hour_of_day in range(24):
        for world in worlds:
            world.run_hour(hour_of_day)
        # Nothing emitted from here on can be recorded before this hour ends, so it can be written.
        for recorded_us, event in log.pop_before(day_start_us + (hour_of_day + 1) * HOUR_US):
            writer.record(recorded_us, event)


def _check_arguments(*, days: int, tenants: int, seed: int, start_date: date, settings: SimulatorSettings) -> None:
    for name, value in (("days", days), ("tenants", tenants)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer of at least 1, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if isinstance(start_date, datetime) or not isinstance(start_date, date):
        raise ValueError(f"start_date must be a datetime.date, got {start_date!r}")
    if not isinstance(settings, SimulatorSettings):
        raise ValueError(f"settings must be SimulatorSettings, got {type(settings).__name__}")
    check_switch_order(settings.schema_switch_dates, start_date)


def _refuse_written_days(out_dir: Path, start_date: date, days: int) -> None:
    """Files of the export never change once written: a day already there is not written again."""
    for day_index in range(days):
        day_dir = out_dir / (start_date + timedelta(days=day_index)).isoformat()
        if day_dir.is_dir() and any(day_dir.iterdir()):
            raise FileExistsError(f"{day_dir} already holds files; choose another --out or remove it first")


def _summary(
    out_dir: Path, start_date: date, days: int, tenants: int, seed: int, worlds: list[TenantWorld], tally: Tally,
    events_after_end: int,
) -> SimulationSummary:
    return SimulationSummary(
        out_dir=str(out_dir),
        start_date=start_date,
        days=days,
        tenants=tenants,
        seed=seed,
        tenant_currencies={world.tenant_id: world.currency for world in worlds},
        files=tuple(tally.files),
        lines_written=tally.lines_written,
        events_written=tally.events_written,
        exact_duplicates=tally.exact_duplicates,
        conflicting_duplicates=tally.conflicting_duplicates,
        late_events=tally.late_events,
        broken_lines=tally.broken_lines,
        unknown_event_types=tally.unknown_event_types,
        future_schema_versions=tally.future_schema_versions,
        broken_line_kinds=dict(tally.broken_line_kinds),
        event_type_counts=dict(tally.event_type_counts),
        schema_version_counts={k: dict(v) for k, v in tally.schema_version_counts.items()},
        events_after_end=events_after_end,
    )
