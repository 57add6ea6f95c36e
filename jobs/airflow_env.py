"""Running Airflow against this project's DAGs, locally or from tests, without touching anyone's ~/airflow.

The environment keeps Airflow's state (SQLite DB, logs, generated config and UI password) in one
folder: `airflow_home/` of the project (ignored by git) unless a test gives its own. Airflow reads
it at startup, so it must be set before `airflow` starts: these helpers run Airflow as a subprocess.

    python -m jobs.airflow_env standalone          # the UI and scheduler on http://localhost:8080
    python -m jobs.airflow_env dags list           # any other `airflow ...` command
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

from jobs.config import PROJECT_ROOT

DEFAULT_AIRFLOW_HOME = PROJECT_ROOT / "airflow_home"
DAGS_FOLDER = PROJECT_ROOT / "dags"

# Settings a caller's shell may carry for another Airflow; they would point this one elsewhere.
_FOREIGN_PREFIXES = ("AIRFLOW__", "AIRFLOW_HOME", "AIRFLOW_CONFIG", "_AIRFLOW")


def airflow_environ(
    airflow_home: Path | None = None,
    *,
    base: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment for an `airflow` process that sees only this project's DAGs.

    Everything of `base` (default: this process's environment) is kept, `LAKEHOUSE_*` included, except
    Airflow settings meant for another installation. `overrides` are applied last.
    """
    home = Path(airflow_home or DEFAULT_AIRFLOW_HOME).resolve()
    base = os.environ if base is None else base
    environ = {key: value for key, value in base.items() if not key.startswith(_FOREIGN_PREFIXES)}
    environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # DAG files import `jobs` from the project root, in every Airflow process.
            "PYTHONPATH": _prepend(str(PROJECT_ROOT), base.get("PYTHONPATH", "")),
            # `airflow standalone` starts its components as `airflow ...` from PATH: this environment's.
            "PATH": _prepend(str(Path(sys.executable).parent), base.get("PATH", os.defpath)),
        }
    )
    environ.update(overrides or {})
    return environ


def _prepend(entry: str, search_path: str) -> str:
    return os.pathsep.join(dict.fromkeys([entry, *filter(None, search_path.split(os.pathsep))]))


def airflow_command(*args: str) -> list[str]:
    """`airflow <args>` with this interpreter, so the project's virtual environment is the one used."""
    return [sys.executable, "-m", "airflow", *args]


def migrate_db(environ: Mapping[str, str]) -> None:
    """Create or upgrade Airflow's metadata DB in `environ`'s AIRFLOW_HOME, once per Airflow version."""
    home = Path(environ["AIRFLOW_HOME"])
    marker = home / f".db-migrated-{metadata.version('apache-airflow-core')}"
    if marker.exists() and _sqlite_file(environ).exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    command = airflow_command("db", "migrate")
    done = subprocess.run(command, env=dict(environ), cwd=PROJECT_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed in {home} (exit {done.returncode}):\n{done.stderr[-4000:]}")
    marker.touch()


def dags_test(
    dag_id: str,
    logical_date: str,
    conf: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    timeout: float | None = None,
    fail_fast: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run one DAG run to its end with `airflow dags test`, every task in that one process.

    Never raises on a failed run: the caller reads `returncode` (non-zero when the run failed) and the
    output. `dags test` sleeps out a failed task's retry_delay before retrying it; with `fail_fast`,
    the run is stopped as soon as a task is up for retry (or failed), as tests want.
    """
    command = airflow_command("dags", "test", dag_id, logical_date, "-c", json.dumps(dict(conf)))
    # Its own process group, so that stopping it also stops the Spark JVM it started.
    process = subprocess.Popen(
        command, env=dict(environ), cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    deadline = None if timeout is None else time.monotonic() + timeout
    failed_before = _failed_tasks(environ, dag_id)  # of earlier runs in a reused AIRFLOW_HOME
    stopped = ""
    while True:
        try:
            stdout, stderr = process.communicate(timeout=2)
            break
        except subprocess.TimeoutExpired:
            if deadline is not None and time.monotonic() > deadline:
                stopped = f"stopped after {timeout:.0f} s"
            elif fail_fast and (failed := _failed_tasks(environ, dag_id) - failed_before):
                stopped = "stopped: " + ", ".join(f"{task} of {run} is {state}" for run, task, state in sorted(failed))
            if stopped:
                # SIGKILL: `dags test` keeps running after a SIGTERM (the task runner's handler takes it).
                os.killpg(process.pid, signal.SIGKILL)
                stdout, stderr = process.communicate()
                break
    if stopped:
        stderr += f"\n[airflow_env] {stopped}\n"
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _sqlite_file(environ: Mapping[str, str]) -> Path:
    return Path(environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///"))


def _failed_tasks(environ: Mapping[str, str], dag_id: str) -> set[tuple[str, str, str]]:
    """(run id, task id, state) of the DAG's task instances that failed or wait for a retry."""
    query = "SELECT run_id, task_id, state FROM task_instance WHERE dag_id = ? AND state IN ('up_for_retry', 'failed')"
    try:
        with closing(sqlite3.connect(f"file:{_sqlite_file(environ)}?mode=ro", uri=True, timeout=1)) as db:
            return set(db.execute(query, (dag_id,)).fetchall())
    except sqlite3.Error:  # busy, or no DB yet: look again later
        return set()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m jobs.airflow_env <airflow arguments>`: migrate the DB once, then hand over to Airflow."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    environ = airflow_environ()
    migrate_db(environ)
    os.execve(sys.executable, airflow_command(*args), environ)


if __name__ == "__main__":
    sys.exit(main())
