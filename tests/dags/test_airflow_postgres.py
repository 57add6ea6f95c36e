"""Airflow for a team (issue #13): conf/airflow-team.env, tried on a real PostgreSQL server.

One deployment for the module, set up from the example file with only this machine's addresses,
paths and test secrets put in: the metadata DB migrated into PostgreSQL, then the three long-running
processes Airflow 3 needs to run a task (the api-server for the execution API the task processes
call, here with only that app; the dag-processor that parses DAG files into the DB; the scheduler,
whose LocalExecutor runs the tasks). A test-only DAG of two tasks that can only succeed side by
side is triggered; the project's DAGs are parsed and registered beside it but stay paused (running
them needs the Spark cluster). Everything started is stopped by pid, and checked gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import time
from base64 import urlsafe_b64encode
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Iterator

import psutil
import pytest
import yaml

from jobs.airflow_env import DAGS_FOLDER, airflow_command, airflow_environ
from jobs.config import PROJECT_ROOT

TEAM_ENV_FILE = PROJECT_ROOT / "conf" / "airflow-team.env"
PROBE_DAG_FILE = Path(__file__).parent / "parallel_probe" / "lakehouse_parallel_probe.py"
PROBE_DAG_ID = "lakehouse_parallel_probe"
PROJECT_DAG_IDS = {
    "lakehouse_landing", "lakehouse_marts", "lakehouse_validation",
    "lakehouse_backfill", "lakehouse_replay", "lakehouse_maintenance",
}
DB_PASSWORD = "airflow-test-only"  # of a throw-away role on a throw-away server on 127.0.0.1
READY_TIMEOUT_S = 60
RUN_TIMEOUT_S = 90
STOP_TIMEOUT_S = 30


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as a shell sourcing them keeps them; single quotes hold a value unexpanded."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = " ".join(shlex.split(value))
    return values


# --- the example file ------------------------------------------------------------------------------


def airflow_options() -> dict[str, set[str]]:
    """Section -> option names of the installed Airflow's config.yml (read without importing Airflow)."""
    package = Path(next(iter(find_spec("airflow").submodule_search_locations)))
    described = yaml.safe_load((package / "config_templates" / "config.yml").read_text(encoding="utf-8"))
    return {section: set(body.get("options", {})) for section, body in described.items()}


def test_every_airflow_setting_of_the_team_example_is_one_the_installed_airflow_knows():
    options = airflow_options()
    settings = [key for key in read_env_file(TEAM_ENV_FILE) if key.startswith("AIRFLOW__")]
    assert settings
    for key in settings:
        section, option = key.removeprefix("AIRFLOW__").lower().split("__")
        assert option in options.get(section, set()), f"{key}: no [{section}] {option} in this Airflow"


def test_the_team_example_holds_no_secret_and_sends_spark_work_to_the_cluster():
    settings = read_env_file(TEAM_ENV_FILE)
    assert settings["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    conn = settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert conn.startswith("postgresql+psycopg2://airflow:${AIRFLOW_DB_PASSWORD}@")
    assert settings["AIRFLOW__CORE__FERNET_KEY"] == "${AIRFLOW_FERNET_KEY}"
    assert settings["AIRFLOW__API_AUTH__JWT_SECRET"] == "${AIRFLOW_JWT_SECRET}"
    assert settings["LAKEHOUSE_ENV"] == "cluster"


# --- the deployment --------------------------------------------------------------------------------


@dataclass
class Deployment:
    server: object  # tests.pg_server.PostgresServer
    environ: dict[str, str]
    root: Path
    api_port: int
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def query(self, sql: str) -> list[list[str]]:
        """Rows of the Airflow metadata DB, read straight from PostgreSQL."""
        output = self.server.psql(f"\\c airflow\n{sql}")
        return [line.split("|") for line in output.splitlines() if line]

    def airflow(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(airflow_command(*args), env=self.environ, cwd=PROJECT_ROOT, capture_output=True,
                              text=True, timeout=timeout)
        assert done.returncode == 0, f"airflow {' '.join(args)} failed:\n{done.stderr[-4000:]}"
        return done

    def start(self, name: str, *args: str) -> None:
        log = open(self.root / f"{name}.log", "wb")
        # Its own process group: stopping it reaches the workers and task processes it forks.
        self.processes[name] = subprocess.Popen(
            airflow_command(*args), env=self.environ, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-4000:]

    def stop_all(self) -> None:
        """SIGTERM to each started process group (scheduler first), SIGKILL if still there after the
        timeout; raises if any of their processes survives."""
        survivors = []
        for name in ("scheduler", "dag-processor", "api-server"):
            process = self.processes.get(name)
            if process is None:
                continue
            members = _process_tree(process.pid)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=STOP_TIMEOUT_S)
            # Task processes may outlive their parent briefly; psutil knows each by pid and start time,
            # so a pid reused meanwhile by an unrelated process is never signalled.
            _, alive = psutil.wait_procs(members, timeout=STOP_TIMEOUT_S)
            for member in alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    member.kill()
            survivors += [(name, member.pid) for member in alive if _is_running(member)]
        if survivors:
            raise RuntimeError(f"Airflow processes still running after stop: {survivors}")


def _process_tree(pid: int) -> list[psutil.Process]:
    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _is_running(process: psutil.Process) -> bool:
    """Still there (the same process, not a reused pid) and not a zombie waiting to be reaped."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def team_environ(server, root: Path, api_port: int, log_port: int) -> dict[str, str]:
    """conf/airflow-team.env with this machine's addresses and paths, and test secrets in the environment."""
    team = read_env_file(TEAM_ENV_FILE)
    # Only the address changes: the password stays a reference for Airflow to expand.
    conn = re.sub(r"@[^/]+/", f"@127.0.0.1:{server.port}/", team["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    dags = root / "dags"
    dags.mkdir()
    for dag_file in [*sorted(DAGS_FOLDER.glob("*.py")), PROBE_DAG_FILE]:
        shutil.copy(dag_file, dags / dag_file.name)
    api = f"http://127.0.0.1:{api_port}"
    environ = airflow_environ(root / "airflow_home", overrides={
        **{key: value for key, value in team.items() if key not in ("AIRFLOW_HOME", "PYTHONPATH")},
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": conn,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_port),
        # The secrets the example's references name, as a secret store would put them in the environment.
        "AIRFLOW_DB_PASSWORD": DB_PASSWORD,
        "AIRFLOW_FERNET_KEY": urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(64),  # JWT signing wants 64 bytes or more
    })
    assert environ["AIRFLOW_HOME"] == str((root / "airflow_home").resolve())
    return environ


def wait_for(what: str, check, deployment: Deployment, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        for name, process in deployment.processes.items():
            assert process.poll() is None, (
                f"{name} exited ({process.returncode}) while waiting for {what}:\n{deployment.log(name)}")
        time.sleep(0.5)
    logs = "\n".join(f"--- {name}\n{deployment.log(name)}" for name in deployment.processes)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    from tests import pg_server

    started = time.monotonic()
    server = pg_server.start_postgres()
    root = tmp_path_factory.mktemp("airflow_team")
    api_port, log_port = _free_port(), _free_port()
    deployment = Deployment(server, {}, root, api_port)
    try:
        server.psql(f"CREATE ROLE airflow LOGIN PASSWORD '{DB_PASSWORD}';\nCREATE DATABASE airflow OWNER airflow;")
        deployment.environ = team_environ(server, root, api_port, log_port)
        deployment.seconds["postgres"] = time.monotonic() - started

        mark = time.monotonic()
        deployment.airflow("db", "migrate")
        deployment.seconds["db migrate"] = time.monotonic() - mark

        mark = time.monotonic()
        # Task processes need only the execution API; a team's api-server serves the UI and REST API too.
        deployment.start("api-server", "api-server", "--apps", "execution",
                         "--host", "127.0.0.1", "--port", str(api_port))
        deployment.start("dag-processor", "dag-processor")
        deployment.start("scheduler", "scheduler")
        wait_for("the api-server's port", lambda: _port_is_open(api_port), deployment, READY_TIMEOUT_S)
        wait_for("every DAG registered", lambda: {row[0] for row in deployment.query("SELECT dag_id FROM dag")}
                 >= PROJECT_DAG_IDS | {PROBE_DAG_ID}, deployment, READY_TIMEOUT_S)
        deployment.seconds["components ready"] = time.monotonic() - mark

        mark = time.monotonic()
        (root / "marks").mkdir()
        deployment.airflow("dags", "trigger", PROBE_DAG_ID, "--run-id", "parallel_probe",
                           "--conf", json.dumps({"folder": str(root / "marks")}))
        wait_for("the probe run to end", lambda: deployment.query(
            f"SELECT state FROM dag_run WHERE dag_id = '{PROBE_DAG_ID}' AND state IN ('success', 'failed')"),
            deployment, RUN_TIMEOUT_S)
        deployment.seconds["probe run"] = time.monotonic() - mark
        yield deployment
    finally:
        try:
            deployment.stop_all()
        finally:
            server.stop()
        for name, port in (("the api-server's", api_port), ("the scheduler's log server's", log_port)):
            assert not _port_is_open(port), f"{name} port {port} is still open"
        assert not _port_is_open(server.port), f"PostgreSQL's port {server.port} is still open"
        print(f"airflow on postgres, seconds: {json.dumps({k: round(v, 1) for k, v in deployment.seconds.items()})}"
              f", total {time.monotonic() - started:.0f}")


def test_the_metadata_db_is_postgresql_migrated_by_airflow(deployment):
    assert deployment.query("SELECT count(*) FROM alembic_version") == [["1"]]
    assert deployment.query("SELECT current_user") == [["postgres"]]  # the test reads as superuser...
    # ...while Airflow connected as the role of the example's URL, with the password from the environment.
    owners = deployment.query("SELECT tableowner FROM pg_tables WHERE tablename IN ('dag_run', 'task_instance')")
    assert owners == [["airflow"], ["airflow"]]


def test_the_local_executor_runs_the_two_probe_tasks_at_the_same_time(deployment):
    assert deployment.query(f"SELECT state FROM dag_run WHERE dag_id = '{PROBE_DAG_ID}'") == [["success"]]
    marks = deployment.root / "marks"
    left, right = (json.loads((marks / f"{name}.json").read_text()) for name in ("left", "right"))
    assert left["pid"] != right["pid"]
    # Each started before the other ended: they overlapped.
    assert left["started_at"] < right["ended_at"] and right["started_at"] < left["ended_at"]


def test_the_task_states_and_overlap_are_recorded_in_postgresql(deployment):
    rows = deployment.query(
        "SELECT task_id, state, extract(epoch FROM start_date), extract(epoch FROM end_date) FROM task_instance"
        f" WHERE dag_id = '{PROBE_DAG_ID}' ORDER BY task_id"
    )
    assert [(task_id, state) for task_id, state, *_ in rows] == [("left", "success"), ("right", "success")]
    (_, _, left_start, left_end), (_, _, right_start, right_end) = rows
    assert float(left_start) < float(right_end) and float(right_start) < float(left_end)


def test_a_job_started_by_an_airflow_task_would_send_its_spark_work_to_the_cluster(deployment):
    cluster_master = yaml.safe_load((PROJECT_ROOT / "conf" / "cluster.yaml").read_text())["spark"]["master"]
    assert cluster_master.startswith("spark://")
    for name in ("left", "right"):
        record = json.loads((deployment.root / "marks" / f"{name}.json").read_text())
        assert record["spark_master"] == cluster_master


def test_the_project_dags_are_parsed_into_postgresql_without_errors(deployment):
    assert deployment.query("SELECT count(*) FROM import_error") == [["0"]]
    serialized = {row[0] for row in deployment.query("SELECT dag_id FROM serialized_dag")}
    assert serialized >= PROJECT_DAG_IDS
    # Paused at creation: they need the Spark cluster, which this test does not start.
    paused = {row[0] for row in deployment.query("SELECT dag_id FROM dag WHERE is_paused")}
    assert paused >= PROJECT_DAG_IDS
