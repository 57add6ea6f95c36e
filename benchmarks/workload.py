"""The benchmark's workload: one simulated export, cut into a history of each size and the hourly
batches that follow it.

The export is simulated once (`jobs.simulator`, the project's own simulator settings) at a constant
traffic rate: one hour of average traffic is the hourly batch. Its lines are in recording order
(files hour by hour, lines in order), so a history of N events is its first N lines and its hourly
batches the lines right after, one after the other: events recorded in the hours after the history,
mostly continuing its streams (orders confirmed, shipped, refunded...), with the export's late events
and re-deliveries. Histories of different sizes are therefore prefixes of one world, and each size's
batches are the same number of lines; only the history grows. Whole files are hard-linked into a size's
landing folders, the file a cut falls in is split.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Callable, Mapping

from jobs.simulator import SimulationSummary, SimulatorSettings, simulate

Progress = Callable[[str], None]

# The simulator's volume is approximate (weekdays, chance, a slower first day): simulate this much
# more than needed, plus a day.
_VOLUME_MARGIN = 1.25


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]  # history sizes, in lines of the export (events, before landing drops any)
    hourly_lines: Mapping[int, int]  # size -> lines of each of its hourly batches
    hourly_runs: int  # successive hourly batches after each history
    tenants: int
    events_per_tenant_per_day: int
    days: int
    seed: int
    start_date: date

    def to_dict(self) -> dict[str, Any]:
        return {
            "sizes": list(self.sizes),
            "hourly_lines": {str(size): lines for size, lines in self.hourly_lines.items()},
            "hourly_runs": self.hourly_runs,
            "tenants": self.tenants,
            "events_per_tenant_per_day": self.events_per_tenant_per_day,
            "days_simulated": self.days,
            "seed": self.seed,
            "start_date": self.start_date.isoformat(),
        }


def plan(
    sizes: tuple[int, ...],
    hourly_fraction: float,
    hourly_of: str,
    tenants: int,
    seed: int,
    start_date: date,
    hourly_runs: int = 1,
) -> Plan:
    """The hourly batch is `hourly_fraction` of the smallest history (`hourly_of="smallest"`: a batch of
    the same size at every size, so that only the history grows) or of each history (`"each"`). The export's
    traffic is one such batch (of the smallest history) per hour of the day on average; each history is
    followed by `hourly_runs` such batches."""
    smallest = min(sizes)
    hourly = {size: max(1, round(hourly_fraction * (smallest if hourly_of == "smallest" else size))) for size in sizes}
    per_hour = hourly[smallest]
    events_per_tenant_per_day = max(1, round(24 * per_hour / tenants))
    needed = _lines_needed(hourly, hourly_runs)
    days = math.ceil(needed * _VOLUME_MARGIN / (24 * per_hour)) + 1
    return Plan(tuple(sorted(sizes)), hourly, hourly_runs, tenants, events_per_tenant_per_day, days, seed, start_date)


def _lines_needed(hourly_lines: Mapping[int, int], hourly_runs: int) -> int:
    """The export's lines the largest need: a history and its hourly batches after it."""
    return max(size + hourly_runs * lines for size, lines in hourly_lines.items())


@dataclass(frozen=True)
class Export:
    folder: Path
    files: tuple[tuple[str, int], ...]  # (path relative to folder, lines), in recording order
    summary: SimulationSummary

    @property
    def lines(self) -> int:
        return sum(lines for _, lines in self.files)


def simulate_export(plan: Plan, simulator: Mapping[str, Any], folder: Path, progress: Progress) -> Export:
    """Simulate the plan's export into `folder` (emptied first) with the configured simulator settings,
    only `events_per_tenant_per_day` set by the plan; simulate longer if it came out short."""
    settings = dataclasses.replace(
        SimulatorSettings.from_mapping(simulator), events_per_tenant_per_day=plan.events_per_tenant_per_day
    )
    needed = _lines_needed(plan.hourly_lines, plan.hourly_runs)
    days = plan.days
    while True:
        shutil.rmtree(folder, ignore_errors=True)
        summary = simulate(
            folder,
            days=days,
            tenants=plan.tenants,
            seed=plan.seed,
            start_date=plan.start_date,
            settings=settings,
            progress=lambda message: progress(f"simulate: {message}"),
        )
        export = Export(folder, tuple((name, _count_lines(folder / name)) for name in summary.files), summary)
        if export.lines >= needed:
            return export
        days = math.ceil(days * needed / max(export.lines, 1)) + 1
        progress(f"simulate: {export.lines:,} lines are fewer than the {needed:,} needed; again with {days} days")


def cut(export: Export, first_line: int, lines: int, destination: Path) -> tuple[int, int]:
    """Lines `first_line` .. `first_line + lines - 1` (0-based, in recording order) of the export as a
    landing folder at `destination`, under the export's file names. Returns (lines, files)."""
    destination.mkdir(parents=True, exist_ok=True)
    end = first_line + lines
    offset = written = files = 0
    for name, count in export.files:
        start, stop = max(first_line, offset), min(end, offset + count)
        if start < stop:
            source, target = export.folder / name, destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if start == offset and stop == offset + count:
                _link_or_copy(source, target)
            else:
                _write_lines(source, target, start - offset, stop - offset)
            written += stop - start
            files += 1
        offset += count
        if offset >= end:
            break
    return written, files


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(source, target)


def _write_lines(source: Path, target: Path, first: int, stop: int) -> None:
    with source.open("rb") as reader, target.open("wb") as writer:
        for index, line in enumerate(reader):
            if index >= stop:
                break
            if index >= first:
                writer.write(line)
