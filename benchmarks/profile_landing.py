"""Where landing's time goes (issue #8's landing target): `python -m benchmarks.profile_landing --lines N`
lands N simulated events into a fresh warehouse under cProfile and prints the split between the
driver's Python work (reading lines, JSON, the envelope checks, hashing, encrypting personal data,
building the Arrow batch) and the time the driver waits on Spark (the MERGE into bronze, the
quarantine and the ledger), then the functions that took the most time of their own.

cProfile sees the Python process only: time inside Spark shows as waits on py4j's socket. Its overhead
inflates the Python side somewhat (every call is counted); the figures are for the split, not a rate.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from jobs.config import load_settings

# (label, module path fragment, function name): cumulative time of the driver's Python steps.
STEPS = (
    ("read and parse lines (JSON, envelope, timestamps, hash)", "jobs/landing/files.py", "_parse_file"),
    ("  of which the content hash", "jobs/landing/parse.py", "content_sha256"),
    ("encrypt personal data (reading and writing the keys table too)", "jobs/landing/files.py", "_protect"),
    ("Arrow batch of events", "jobs/landing/files.py", "_events_table"),
)
SPARK_WAIT = ("~", "<method 'recv_into' of '_socket.socket' objects>")  # py4j waiting for the JVM's answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_landing", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=200_000, help="simulated events to land (default 200,000)")
    parser.add_argument("--env", choices=("local", "ci", "cluster"), help="configuration overlay (default: local)")
    parser.add_argument("--top", type=int, default=20, help="functions listed by own time (default 20)")
    args = parser.parse_args(argv)
    if args.lines < 1:
        parser.error(f"--lines must be at least 1, got {args.lines}")
    folder = Path(tempfile.mkdtemp(prefix="profile-landing-"))
    try:
        print(profile(args.lines, args.env, folder, args.top))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def profile(lines: int, env: str | None, folder: Path, top: int) -> str:
    from benchmarks import workload
    from jobs import pipeline
    from jobs.spark import get_spark

    settings = load_settings(env, warehouse=str(folder / "warehouse"))
    plan = workload.plan((lines,), 0.01, "smallest", 1, 7, date(2026, 1, 5))
    export = workload.simulate_export(plan, settings.simulator, folder / "export", lambda message: None)
    landed_lines, _ = workload.cut(export, 0, lines, folder / "landing")
    get_spark(settings)  # started before the profile: a JVM start is not landing
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    report = pipeline.land(settings, folder / "landing", "profile", progress=lambda message: None)
    profiler.disable()
    seconds = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    out = [f"landed {report.total('landed'):,} of {landed_lines:,} lines in {seconds:.1f} s under cProfile "
           f"({landed_lines / seconds:,.0f} lines/s)"]
    for label, path, name in STEPS:
        out.append(f"  {label:64} {_cumulative(stats, path, name):7.1f} s")
    out.append(f"  {'waiting on Spark (py4j)':64} {_own(stats, *SPARK_WAIT):7.1f} s")
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    body = text.getvalue()
    out.append(body[body.index("   ncalls"):] if "   ncalls" in body else body)
    return "\n".join(out)


def _cumulative(stats: pstats.Stats, path: str, name: str) -> float:
    return sum(entry[3] for (file, _, function), entry in stats.stats.items() if file.endswith(path) and function == name)


def _own(stats: pstats.Stats, path: str, name: str) -> float:
    return sum(entry[2] for (file, _, function), entry in stats.stats.items() if file.endswith(path) and function == name)


if __name__ == "__main__":
    sys.exit(main())
