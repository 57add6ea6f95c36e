"""Pipeline steps in a process of their own, for the scenarios that kill it with SIGKILL.

Child side (`python -m tests.scenarios.child ...`): runs the steps as `python -m jobs run` does, holding
the same writer leases for the whole run, on the scenario's warehouse and marts (the CLI would take
the marts from conf/). With `--stop-at`, the child stops at that point of the run, writes
`--stopped-file` and waits there. The test kills it as soon as that file appears, so the kill always
lands at the same point of the run, never at a moment guessed with a sleep:

- `bronze-committed`: landing's append to bronze/events has committed (the real Delta commit, on
  disk) and the ledger's commit, which marks the files done, has not happened;
- `validated`: build and validate are done (staging written, the validation marker saying it passed),
  and publish has not started.

Parent side: `kill_at(...)` starts the child in a process group of its own and SIGKILLs the whole
group (the Python driver, Spark's JVM and its Python workers), like the kernel's OOM killer or a lost
machine would, then waits until none of them is left.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STOP_POINTS = ("bronze-committed", "validated")
STEPS = ("land", "build", "validate", "publish")


# --- Child side -----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("jobs").setLevel(logging.INFO)

    from jobs import pipeline
    from jobs.config import load_settings
    from jobs.writer_lock import holding

    settings = load_settings(
        "ci",
        warehouse=args.warehouse,
        # A smaller JVM than the test session's: two of them share the machine during a scenario.
        overrides={"marts": {"enabled": args.marts.split(",")}, "spark": {"driver_memory": "1g"}},
    )
    steps = args.steps.split(",")
    stop = _stopper(Path(args.stopped_file)) if args.stop_at else None
    if args.stop_at == "bronze-committed":
        _stop_after_bronze_commit(settings.warehouse, stop)
    groups = (["bronze"] if "land" in steps else []) + (["marts"] if set(steps) - {"land"} else [])
    with holding(settings, groups):
        for step in steps:
            if step == "land":
                pipeline.land(settings, Path(args.landing), args.run_id)
            else:
                getattr(pipeline, step)(settings, args.run_id)
            if step == "validate" and args.stop_at == "validated":
                stop("validated")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.scenarios.child")
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--marts", required=True, help="comma-separated enabled marts")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--steps", required=True, help=f"comma-separated, in order, among {', '.join(STEPS)}")
    parser.add_argument("--landing", help="the landing folder (for land)")
    parser.add_argument("--stop-at", choices=STOP_POINTS)
    parser.add_argument("--stopped-file", help="written when the child has stopped at --stop-at")
    return parser


def _stopper(stopped_file: Path):
    def stop(point: str) -> None:
        scratch = stopped_file.with_suffix(".tmp")
        scratch.write_text(f"{point} {os.getpid()}\n")
        os.replace(scratch, stopped_file)  # the test never sees half a file
        print(f"stopped at {point}; waiting to be killed", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)

    return stop


def _stop_after_bronze_commit(warehouse: str, stop) -> None:
    """Stop right after landing's real append to bronze/events returns (its Delta commit is written)."""
    from jobs.landing import files
    from jobs.tables import BRONZE_EVENTS

    write = files.write
    bronze = BRONZE_EVENTS.path(warehouse)

    def write_then_stop(spark, frame, path, mode, metadata=None):
        written = write(spark, frame, path, mode, metadata)
        if path == bronze:
            stop("bronze-committed")
        return written

    files.write = write_then_stop


# --- Parent side ----------------------------------------------------------------------------------

class ChildDidNotStop(AssertionError):
    pass


def kill_at(
    stop_at: str,
    folder: Path,
    *,
    warehouse: str,
    marts: tuple[str, ...],
    run_id: str,
    steps: tuple[str, ...],
    landing: Path | None = None,
    timeout_seconds: float = 600,
) -> int:
    """Run the steps in a child process until it stops at `stop_at`, then SIGKILL its process group.
    Returns the child's exit status (-SIGKILL). Its output is in `folder/child.log`."""
    from jobs.config import PROJECT_ROOT

    folder.mkdir(parents=True, exist_ok=True)
    stopped = folder / f"stopped-{run_id}"
    log_path = folder / "child.log"
    command = [
        sys.executable, "-m", "tests.scenarios.child", "--warehouse", warehouse, "--marts", ",".join(marts),
        "--run-id", run_id, "--steps", ",".join(steps), "--stop-at", stop_at, "--stopped-file", str(stopped),
    ]
    if landing is not None:
        command += ["--landing", str(landing)]
    with open(log_path, "w") as log:
        child = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + timeout_seconds
        while not stopped.exists():
            if child.poll() is not None:
                raise ChildDidNotStop(f"the child ended ({child.returncode}) before {stop_at}:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                raise ChildDidNotStop(f"the child did not reach {stop_at} in {timeout_seconds:.0f} s:\n{_tail(log_path)}")
            time.sleep(0.1)
    finally:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.wait()  # reaped: a zombie would still look alive to the writer lease's pid check
        _wait_until_group_gone(child.pid)
    return child.returncode


def _wait_until_group_gone(group: int, timeout_seconds: float = 60) -> None:
    """Spark's JVM and workers got the same SIGKILL; wait until the kernel has ended them all, so that
    nothing of the killed run can still write when the test goes on."""
    deadline = time.monotonic() + timeout_seconds
    while _live_members(group):
        if time.monotonic() > deadline:
            raise AssertionError(f"processes of the killed group {group} still run: {_live_members(group)}")
        time.sleep(0.1)


def _live_members(group: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...; comm may hold spaces, so split after its closing parenthesis.
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError):
            continue
        if int(pgrp) == group and state not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


if __name__ == "__main__":
    sys.exit(main())
