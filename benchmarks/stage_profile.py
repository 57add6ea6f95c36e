"""Where a benchmark phase's time went: the driver alone, or Spark's task slots, and how busy they were.

    python -m benchmarks --event-log .cache/bench/eventlog ...      # a run with Spark's event log on
    python -m benchmarks.stage_profile .cache/bench/eventlog benchmarks/results/latest.json [--json FILE]

For each timed phase of the results (each size's land, builds, validate, publish; a build also split at
its silver summary into silver and marts), from the events Spark logged while it ran:
- `stages running`: the seconds during which at least one stage was running; the rest of the phase's
  wall time the driver worked alone (Python, planning, Delta's log and commits, listing files) or
  waited on storage outside a task;
- `slot use`: the tasks' seconds over (wall seconds x task slots): what a worker more would share;
- `2+ tasks`: the seconds during which at least two tasks ran at once (two slots: both busy);
- tasks' CPU, garbage collection and shuffle-fetch waits, as shares of the tasks' time, and the bytes
  read, shuffled and written;
- how many jobs, stages and tasks, and how many tasks a stage had (median, and the share of stages with
  at most 2 tasks: those cannot use more than 2 slots, however many workers there are).

Reads the event log as Spark writes it (one JSON object per line; a run still going is read as far as
it got). The task slots are the executors' cores, or N of `local[N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from benchmarks.report import GIB, SILVER, short_count

MS = 1000.0


@dataclass
class Task:
    stage: int
    start: float  # seconds since the epoch
    end: float
    run: float  # executor run time, seconds
    cpu: float  # executor CPU time (run and deserialization), seconds
    gc: float
    fetch_wait: float
    input_bytes: int
    shuffle_read_bytes: int
    shuffle_write_bytes: int
    output_bytes: int


@dataclass
class Log:
    tasks: list[Task]
    stages: list[tuple[int, float, float, int]]  # id, submitted, completed, tasks
    jobs: list[float]  # submission times
    slots: int


@dataclass
class PhaseProfile:
    size: str
    phase: str
    wall_seconds: float
    slots: int
    stages_running_seconds: float
    driver_alone_seconds: float
    task_seconds: float
    slot_use: float
    two_or_more_tasks_seconds: float
    cpu_share_of_task_time: float
    gc_share_of_task_time: float
    fetch_wait_share_of_task_time: float
    jobs: int
    stages: int
    tasks: int
    median_tasks_per_stage: float
    stages_with_at_most_2_tasks: float
    input_gib: float
    shuffle_read_gib: float
    shuffle_write_gib: float
    output_gib: float


def read_log(path: Path) -> Log:
    """The tasks, stages, jobs and task slots of one event log (a file, or the newest in a folder)."""
    if path.is_dir():
        candidates = sorted((p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")),
                            key=lambda p: p.stat().st_mtime)
        if not candidates:
            raise FileNotFoundError(f"no event log file in {path} (a rolled log is a folder: the benchmark's "
                                    "--event-log writes one plain file)")
        path = candidates[-1]
    if path.suffix in (".zstd", ".lz4", ".snappy", ".lzf"):
        raise ValueError(f"{path} is compressed: the profile reads plain logs (spark.eventLog.compress=false, "
                         "as the benchmark's --event-log sets)")
    tasks: list[Task] = []
    stages: list[tuple[int, float, float, int]] = []
    jobs: list[float] = []
    executor_cores: dict[str, int] = {}
    local_slots = 0
    for event in _events(path):
        kind = event.get("Event")
        if kind == "SparkListenerTaskEnd":
            info, metrics = event["Task Info"], event.get("Task Metrics") or {}
            shuffle_read = metrics.get("Shuffle Read Metrics") or {}
            tasks.append(Task(
                stage=event["Stage ID"],
                start=info["Launch Time"] / MS,
                end=info["Finish Time"] / MS,
                run=metrics.get("Executor Run Time", 0) / MS,
                cpu=(metrics.get("Executor CPU Time", 0) + metrics.get("Executor Deserialize CPU Time", 0)) / 1e9,
                gc=metrics.get("JVM GC Time", 0) / MS,
                fetch_wait=shuffle_read.get("Fetch Wait Time", 0) / MS,
                input_bytes=(metrics.get("Input Metrics") or {}).get("Bytes Read", 0),
                shuffle_read_bytes=shuffle_read.get("Remote Bytes Read", 0) + shuffle_read.get("Local Bytes Read", 0),
                shuffle_write_bytes=(metrics.get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written", 0),
                output_bytes=(metrics.get("Output Metrics") or {}).get("Bytes Written", 0),
            ))
        elif kind == "SparkListenerStageCompleted":
            info = event["Stage Info"]
            if info.get("Submission Time") and info.get("Completion Time"):
                stages.append((info["Stage ID"], info["Submission Time"] / MS, info["Completion Time"] / MS,
                               info.get("Number of Tasks", 0)))
        elif kind == "SparkListenerJobStart":
            jobs.append(event["Submission Time"] / MS)
        elif kind == "SparkListenerExecutorAdded":
            executor_cores[event["Executor ID"]] = event["Executor Info"]["Total Cores"]
        elif kind == "SparkListenerExecutorRemoved":
            executor_cores.pop(event["Executor ID"], None)
        elif kind == "SparkListenerEnvironmentUpdate":
            master = (event.get("Spark Properties") or {}).get("spark.master", "")
            local_slots = _local_slots(master)
    return Log(tasks=tasks, stages=stages, jobs=jobs, slots=sum(executor_cores.values()) or local_slots)


def profile(log: Log, results: dict[str, Any]) -> list[PhaseProfile]:
    """One profile per timed phase of each size in the benchmark's results."""
    profiles = []
    for size in results.get("sizes", []):
        label = short_count(size["target_events"])
        for name, phase in size["phases"].items():
            start = phase.get("started_at_epoch")
            if start is None:
                raise ValueError("the results have no phase start times: run the benchmark with --event-log "
                                 "(a version that records started_at_epoch)")
            end = start + phase["seconds"]
            profiles.append(profile_window(log, label, name, start, end))
            # A build's silver summary splits it: silver before, the marts after.
            silver_done = next((at for at, message in phase.get("log", []) if message.startswith(SILVER)), None)
            if silver_done is not None:
                profiles.append(profile_window(log, label, f"{name}: silver", start, start + silver_done))
                profiles.append(profile_window(log, label, f"{name}: marts", start + silver_done, end))
    return profiles


def profile_window(log: Log, size: str, name: str, start: float, end: float) -> PhaseProfile:
    wall = max(end - start, 1e-9)
    stages = [s for s in log.stages if s[1] < end and s[2] > start]
    tasks = [t for t in log.tasks if start <= t.start < end]
    task_seconds = sum(t.end - t.start for t in tasks)
    running = _covered(((max(s[1], start), min(s[2], end)) for s in stages))
    run = sum(t.run for t in tasks) or 1e-9
    counts = [s[3] for s in stages]
    return PhaseProfile(
        size=size,
        phase=name,
        wall_seconds=round(wall, 1),
        slots=log.slots,
        stages_running_seconds=round(running, 1),
        driver_alone_seconds=round(wall - running, 1),
        task_seconds=round(task_seconds, 1),
        slot_use=round(task_seconds / (wall * log.slots), 3) if log.slots else 0.0,
        two_or_more_tasks_seconds=round(_at_least(2, ((t.start, t.end) for t in tasks), start, end), 1),
        cpu_share_of_task_time=round(sum(t.cpu for t in tasks) / run, 3),
        gc_share_of_task_time=round(sum(t.gc for t in tasks) / run, 3),
        fetch_wait_share_of_task_time=round(sum(t.fetch_wait for t in tasks) / run, 3),
        jobs=sum(1 for at in log.jobs if start <= at < end),
        stages=len(stages),
        tasks=len(tasks),
        median_tasks_per_stage=statistics.median(counts) if counts else 0,
        stages_with_at_most_2_tasks=round(sum(1 for c in counts if c <= 2) / len(counts), 3) if counts else 0.0,
        input_gib=_gib(sum(t.input_bytes for t in tasks)),
        shuffle_read_gib=_gib(sum(t.shuffle_read_bytes for t in tasks)),
        shuffle_write_gib=_gib(sum(t.shuffle_write_bytes for t in tasks)),
        output_gib=_gib(sum(t.output_bytes for t in tasks)),
    )


def table(profiles: list[PhaseProfile]) -> str:
    header = ("size", "phase", "wall s", "stages running s", "driver alone s", "task s", "slot use",
              "2+ tasks s", "cpu", "gc", "fetch wait", "jobs", "stages", "tasks", "median tasks/stage",
              "stages <=2 tasks", "input GiB", "shuffle written GiB", "output GiB")
    rows = [header]
    for p in profiles:
        rows.append((p.size, p.phase, f"{p.wall_seconds:.1f}", f"{p.stages_running_seconds:.1f}",
                     f"{p.driver_alone_seconds:.1f}", f"{p.task_seconds:.1f}", f"{p.slot_use:.0%}",
                     f"{p.two_or_more_tasks_seconds:.1f}", f"{p.cpu_share_of_task_time:.0%}",
                     f"{p.gc_share_of_task_time:.0%}", f"{p.fetch_wait_share_of_task_time:.0%}", str(p.jobs),
                     str(p.stages), str(p.tasks), f"{p.median_tasks_per_stage:g}",
                     f"{p.stages_with_at_most_2_tasks:.0%}", f"{p.input_gib:.2f}", f"{p.shuffle_write_gib:.2f}",
                     f"{p.output_gib:.2f}"))
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * len(header))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stage_profile", description=__doc__.split("\n")[0])
    parser.add_argument("event_log", type=Path, help="the event log file, or the --event-log folder (its newest)")
    parser.add_argument("results", type=Path, help="the benchmark's JSON results (--out)")
    parser.add_argument("--json", type=Path, help="also write the profiles here")
    args = parser.parse_args(argv)
    try:
        log = read_log(args.event_log)
        profiles = profile(log, json.loads(args.results.read_text()))
    except (OSError, ValueError) as error:
        print(f"stage_profile: {error}", file=sys.stderr)
        return 2
    print(f"{len(log.tasks):,} tasks, {len(log.stages):,} stages, {len(log.jobs):,} jobs; {log.slots} task slots")
    print(table(profiles))
    if args.json:
        args.json.write_text(json.dumps([asdict(p) for p in profiles], indent=2) + "\n")
    return 0


def _events(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                # The last line of a log still being written can be cut; any other is not Spark's.
                if lines.readline():
                    raise ValueError(f"{path}, line {number}: not a JSON event")
                return


def _covered(intervals: Iterable[tuple[float, float]]) -> float:
    """Seconds covered by the union of the intervals."""
    total, reach = 0.0, float("-inf")
    for begin, finish in sorted(intervals):
        if finish <= reach:
            continue
        total += finish - max(begin, reach)
        reach = finish
    return total


def _at_least(k: int, intervals: Iterable[tuple[float, float]], start: float, end: float) -> float:
    """Seconds within [start, end) during which at least k of the intervals overlap."""
    edges = sorted(
        edge for begin, finish in intervals
        for edge in ((max(begin, start), 1), (min(finish, end), -1)) if min(finish, end) > max(begin, start)
    )
    seconds, depth, since = 0.0, 0, start
    for at, step in edges:
        if depth >= k:
            seconds += at - since
        depth, since = depth + step, at
    return seconds


def _local_slots(master: str) -> int:
    if master.startswith("local[") and master.endswith("]"):
        inside = master[len("local["):-1].split(",")[0]
        if inside == "*":
            return os.cpu_count() or 1
        return int(inside)
    return 1 if master == "local" else 0


def _gib(count: int) -> float:
    return round(count / GIB, 3)


if __name__ == "__main__":
    sys.exit(main())
