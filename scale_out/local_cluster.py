"""A Spark standalone cluster and an S3-compatible server on this machine, started and stopped by pid.

    python -m scale_out.local_cluster up|down|status [--master-port 7077 --webui-port 8090 --s3-port 9000]

`up` starts, all on 127.0.0.1:
- a Spark master and two workers (1 core, 2 GB each) with the pinned pyspark wheel's `spark-class`,
  which ships no `start-master.sh`; `spark-class` execs java, so the pid started is the JVM's;
- s3proxy (one jar from Maven Central, fetched once into `.cache/s3proxy/` and checked against its
  .sha1) with its filesystem backend, serving the bucket `lakehouse` from `<state>/s3-data/`.

It returns once the master's `/json/` page shows both workers ALIVE and the S3 port answers. If a
component does not come up, it stops everything it started and prints that component's log tail.
State (pids, logs, worker dirs, S3 data) lives in `.cache/cluster/` (`--state-dir`): `down` stops
exactly the pids recorded there (TERM, then KILL after a timeout; a pid whose start time differs is
someone else's and left alone) and empties the workers' work dirs, where executors copy every
package jar. Both commands are idempotent.

S3 credentials come from LAKEHOUSE_S3_ACCESS_KEY / LAKEHOUSE_S3_SECRET_KEY. When they are not set,
`up` generates a pair for this local server into `<state>/s3.env` (mode 600, never committed) and
prints the `export` lines.

This is an operator's tool beside the jobs, not a job: it reads no `conf/` file. Its default ports
match `conf/cluster.yaml` (`spark.master: spark://127.0.0.1:7077`); the Makefile passes its
CLUSTER_* variables as options.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

import psutil

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = PROJECT_ROOT / ".cache" / "cluster"
DEFAULT_JAR_DIR = PROJECT_ROOT / ".cache" / "s3proxy"

S3PROXY_VERSION = "4.1.0"
S3PROXY_JAR = f"s3proxy-{S3PROXY_VERSION}-jar-with-dependencies.jar"
S3PROXY_URL = f"https://repo1.maven.org/maven2/org/gaul/s3proxy/{S3PROXY_VERSION}/{S3PROXY_JAR}"

ACCESS_KEY_ENV = "LAKEHOUSE_S3_ACCESS_KEY"
SECRET_KEY_ENV = "LAKEHOUSE_S3_SECRET_KEY"

HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0  # two cores shared with other work: the workers register in about 10 s when idle
STOP_TIMEOUT_S = 20.0
LOG_TAIL_LINES = 25

Say = Callable[[str], None]


class ClusterError(RuntimeError):
    """A component could not be fetched, started or stopped; the message says which and why."""


@dataclass(frozen=True)
class Layout:
    """Where the local cluster keeps its state and which ports it listens on."""

    state_dir: Path = DEFAULT_STATE_DIR
    jar_dir: Path = DEFAULT_JAR_DIR
    master_port: int = 7077
    webui_port: int = 8090  # the master's; worker i (1, 2) serves its UI on webui_port + i
    s3_port: int = 9000
    workers: int = 2
    # False: s3proxy alone, no Spark master or workers (tests of what needs only the object store).
    spark: bool = True
    worker_cores: int = 1
    worker_memory: str = "2g"
    bucket: str = "lakehouse"

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{HOST}:{self.s3_port}"

    @property
    def ports(self) -> tuple[int, ...]:
        if not self.spark:
            return (self.s3_port,)
        worker_ui = tuple(self.webui_port + i for i in range(1, self.workers + 1))
        return (self.master_port, self.webui_port, *worker_ui, self.s3_port)

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def credentials_file(self) -> Path:
        return self.state_dir / "s3.env"

    @property
    def s3_data(self) -> Path:
        return self.state_dir / "s3-data"

    def worker_dir(self, number: int) -> Path:
        return self.state_dir / f"worker-{number}"

    def log(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"


@dataclass
class Component:
    name: str
    pid: int
    started_at: float  # the process's create time: tells our process from a later one given the same pid
    log: str
    ports: list[int] = field(default_factory=list)

    def process(self) -> psutil.Process | None:
        """The running process, or None when it is gone (exited, a zombie, or the pid now someone else's).

        A JVM's first thread can exit before its others: the kernel then shows the process as a zombie
        while its other threads still run (and hold its ports), and it cannot be reaped yet. It is gone
        only once one thread, the dead one, is left.
        """
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.started_at) > 1.0:
                return None
            if process.status() == psutil.STATUS_ZOMBIE and process.num_threads() <= 1:
                return None
            return process
        except psutil.NoSuchProcess:
            return None


# ---------------------------------------------------------------------------------------------- up


def up(layout: Layout, environ: Mapping[str, str] | None = None, say: Say = print) -> None:
    environ = os.environ if environ is None else environ
    with _state_lock(layout):
        running = [c for c in _read_state(layout) if c.process() is not None]
        recorded = _read_state(layout)
        if recorded and len(running) == len(recorded) and _is_serving(layout, say=None):
            say(f"already up: master {layout.master_url} (UI http://{HOST}:{layout.webui_port}), "
                f"S3 {layout.s3_endpoint}; nothing started")
            return
        if recorded:
            gone = sorted({c.name for c in recorded} - {c.name for c in running})
            say(f"partly up ({', '.join(gone) or 'not answering'}): stopping the rest to start again")
            _stop_all(layout, recorded, say)
        busy = [port for port in layout.ports if not port_is_free(port)]
        if busy:
            raise ClusterError(f"port(s) {', '.join(map(str, busy))} on {HOST} already in use by another "
                               "process; choose others (make cluster-up CLUSTER_MASTER_PORT=… CLUSTER_WEBUI_PORT=… "
                               "CLUSTER_S3_PORT=…)")
        access_key, secret_key = _credentials(layout, environ, say)
        jar = ensure_s3proxy_jar(layout.jar_dir, say)

        started: list[Component] = []
        try:
            t0 = time.monotonic()
            started.append(_start_s3proxy(layout, jar, access_key, secret_key))
            _write_state(layout, started)
            if layout.spark:
                started.append(_start_master(layout))
                _write_state(layout, started)
                for number in range(1, layout.workers + 1):
                    started.append(_start_worker(layout, number))
                    _write_state(layout, started)
            say(f"started {', '.join(c.name for c in started)} (pids "
                f"{', '.join(str(c.pid) for c in started)}); waiting for them to answer")
            _wait_until_serving(layout, started, say)
            spark = (f"master {layout.master_url} (UI http://{HOST}:{layout.webui_port}), {layout.workers} workers ALIVE, "
                     if layout.spark else "")
            say(f"up in {time.monotonic() - t0:.1f} s: {spark}S3 {layout.s3_endpoint} bucket {layout.bucket!r}")
        except BaseException:
            say("stopping what was started")
            _stop_all(layout, started, say)
            raise


def _start_s3proxy(layout: Layout, jar: Path, access_key: str, secret_key: str) -> Component:
    (layout.s3_data / layout.bucket).mkdir(parents=True, exist_ok=True)  # a bucket is a folder here
    properties = layout.state_dir / "s3proxy.properties"
    _write_private(properties, "\n".join([
        "jclouds.provider=filesystem",
        f"jclouds.filesystem.basedir={layout.s3_data.resolve()}",
        "s3proxy.authorization=aws-v2-or-v4",
        f"s3proxy.identity={access_key}",
        f"s3proxy.credential={secret_key}",
        f"s3proxy.endpoint={layout.s3_endpoint}",
        "",
    ]))
    argv = [_java(), "-Xmx512m", "-jar", str(jar), "--properties", str(properties)]
    return _spawn(layout, "s3proxy", argv, os.environ, [layout.s3_port])


def _start_master(layout: Layout) -> Component:
    argv = [str(_spark_class()), "org.apache.spark.deploy.master.Master", "--host", HOST,
            "--port", str(layout.master_port), "--webui-port", str(layout.webui_port)]
    return _spawn(layout, "master", argv, _spark_env(layout), [layout.master_port, layout.webui_port])


def _start_worker(layout: Layout, number: int) -> Component:
    folder = layout.worker_dir(number)
    (folder / "work").mkdir(parents=True, exist_ok=True)
    (folder / "local").mkdir(parents=True, exist_ok=True)
    ui_port = layout.webui_port + number
    argv = [str(_spark_class()), "org.apache.spark.deploy.worker.Worker", layout.master_url, "--host", HOST,
            "--cores", str(layout.worker_cores), "--memory", layout.worker_memory,
            "--work-dir", str(folder / "work"), "--webui-port", str(ui_port)]
    # Executors' shuffle and spill files go under the worker's folder too, so `down` finds them.
    env = {**_spark_env(layout), "SPARK_LOCAL_DIRS": str(folder / "local")}
    return _spawn(layout, f"worker-{number}", argv, env, [ui_port])


def _spark_env(layout: Layout) -> dict[str, str]:
    conf_dir = layout.state_dir / "spark-conf"  # empty: no stray spark-env.sh or spark-defaults.conf
    conf_dir.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "SPARK_HOME": str(_pyspark_home()),
        "SPARK_CONF_DIR": str(conf_dir),
        # Every socket on the loopback address, web UIs included (they bind to 0.0.0.0 otherwise).
        "SPARK_LOCAL_IP": HOST,
        # The master and workers only schedule; the 2 GB per worker are for its executors.
        "SPARK_DAEMON_MEMORY": "512m",
        # Jobs connect as drivers; the master's REST submission server would take a fixed port (6066)
        # that a second cluster on other ports could not have, and it accepts unauthenticated submissions.
        "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
    }


def _spawn(layout: Layout, name: str, argv: list[str], env: Mapping[str, str], ports: list[int]) -> Component:
    log = layout.log(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        # A new session: Ctrl-C in the terminal that ran `up` does not reach the servers; `down` stops them.
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   env=dict(env), cwd=layout.state_dir, start_new_session=True)
    try:
        started_at = psutil.Process(process.pid).create_time()
    except psutil.NoSuchProcess:
        started_at = 0.0
    process.returncode = 0  # not ours to wait for: it outlives this command (keeps Popen from warning)
    return Component(name=name, pid=process.pid, started_at=started_at, log=str(log), ports=ports)


def _wait_until_serving(layout: Layout, started: list[Component], say: Say) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    last_report = ""
    while True:
        for component in started:
            if component.process() is None:
                raise ClusterError(f"{component.name} exited while starting\n{_log_tail(component)}")
        progress = _serving_progress(layout)
        if progress is None:
            return
        if progress != last_report:
            say(f"  waiting: {progress}")
            last_report = progress
        if time.monotonic() > deadline:
            culprit = _culprit(started, progress)
            raise ClusterError(f"{culprit.name} did not come up within {START_TIMEOUT_S:.0f} s ({progress})\n"
                               f"{_log_tail(culprit)}")
        time.sleep(0.5)


def _culprit(started: list[Component], progress: str) -> Component:
    by_name = {c.name: c for c in started}
    if "S3" in progress:
        return by_name["s3proxy"]
    if "master" in progress:
        return by_name["master"]
    return next((c for c in started if c.name.startswith("worker")), by_name["master"])


def _serving_progress(layout: Layout) -> str | None:
    """None when everything answers; otherwise what is still missing, for a progress message."""
    missing = []
    if not _s3_answers(layout):
        missing.append(f"S3 port {layout.s3_port} not answering yet")
    if not layout.spark:
        return "; ".join(missing) or None
    try:
        alive = alive_workers(layout)
    except (OSError, ValueError):
        missing.append(f"master UI {layout.webui_port} not answering yet")
    else:
        if alive < layout.workers:
            missing.append(f"{alive} of {layout.workers} workers ALIVE")
    return "; ".join(missing) or None


def _is_serving(layout: Layout, say: Say | None) -> bool:
    progress = _serving_progress(layout)
    if progress and say:
        say(progress)
    return progress is None


def master_status(layout: Layout) -> dict:
    """The master's own JSON status page (workers, their state, cores and memory)."""
    with urllib.request.urlopen(f"http://{HOST}:{layout.webui_port}/json/", timeout=5) as response:
        return json.load(response)


def alive_workers(layout: Layout) -> int:
    return sum(1 for worker in master_status(layout).get("workers", []) if worker.get("state") == "ALIVE")


def _s3_answers(layout: Layout) -> bool:
    """Any HTTP answer counts (unsigned requests get 403): the server is listening and speaking HTTP."""
    try:
        with urllib.request.urlopen(layout.s3_endpoint + "/", timeout=3):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


# -------------------------------------------------------------------------------------------- down


def down(layout: Layout, say: Say = print) -> None:
    with _state_lock(layout):
        recorded = _read_state(layout)
        if not recorded:
            say(f"not running (no state in {layout.state_dir})")
        else:
            _stop_all(layout, recorded, say)
        _clean_work_dirs(layout, say)


def _wait_until_gone(components: list[Component]) -> None:
    """Wait up to STOP_TIMEOUT_S for every component's process to be gone."""
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while any(c.process() is not None for c in components) and time.monotonic() < deadline:
        time.sleep(0.2)


def _stop_all(layout: Layout, components: list[Component], say: Say) -> None:
    """Workers first, then the master, then S3; TERM to all, KILL to whatever outlives the timeout."""
    order = sorted(components, key=lambda c: (not c.name.startswith("worker"), c.name != "master"))
    t0 = time.monotonic()
    running = [(c, p) for c in order if (p := c.process()) is not None]
    for component, process in running:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _wait_until_gone([c for c, _ in running])
    for component, process in running:
        if component.process() is not None:
            say(f"{component.name} (pid {component.pid}) ignored TERM for {STOP_TIMEOUT_S:.0f} s: KILL")
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
    _wait_until_gone([c for c, _ in running])
    for component, _ in running:
        # Reap it when this process started it (a test calling up() and down()); a process started by an
        # earlier `up` command belongs to whatever adopted it.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(component.pid, os.WNOHANG)
    left = [c for c, _ in running if c.process() is not None]
    if left:
        raise ClusterError("still running after KILL: " + ", ".join(f"{c.name} (pid {c.pid})" for c in left))
    names = ", ".join(f"{c.name} ({c.pid})" for c, _ in running) or "nothing was running"
    say(f"stopped {names} in {time.monotonic() - t0:.1f} s")
    layout.state_file.unlink(missing_ok=True)


def _clean_work_dirs(layout: Layout, say: Say) -> None:
    """Executors copy every package jar into the worker's work dir, once per application: hundreds of MB."""
    removed = 0
    for worker in sorted(layout.state_dir.glob("worker-*")):
        for sub in ("work", "local"):
            folder = worker / sub
            if folder.exists():
                removed += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
                shutil.rmtree(folder)
    if removed:
        say(f"emptied the workers' work dirs ({removed / 1e6:.0f} MB)")


# ------------------------------------------------------------------------------------------ status


def status(layout: Layout, say: Say = print) -> bool:
    recorded = _read_state(layout)
    if not recorded:
        say(f"down (no state in {layout.state_dir})")
        return False
    for component in recorded:
        state = "running" if component.process() is not None else "NOT RUNNING"
        say(f"{component.name:9} pid {component.pid:<8} {state:12} ports {component.ports}  log {component.log}")
    progress = _serving_progress(layout)
    if progress:
        say(f"not serving: {progress}")
        return False
    say(f"up: master {layout.master_url} (UI http://{HOST}:{layout.webui_port}), {layout.workers} workers "
        f"ALIVE, S3 {layout.s3_endpoint} bucket {layout.bucket!r}")
    if layout.credentials_file.exists():
        say(f"S3 credentials of this local server: source {layout.credentials_file}")
    return True


# ----------------------------------------------------------------------------- jar and credentials


def ensure_s3proxy_jar(jar_dir: Path, say: Say = print) -> Path:
    """The s3proxy jar, downloaded once from Maven Central and kept only if its SHA-1 matches."""
    jar = jar_dir / S3PROXY_JAR
    if jar.exists():
        return jar
    jar_dir.mkdir(parents=True, exist_ok=True)
    # One partial file per download: two clusters started at once on a fresh machine download side by side,
    # and each renames its own checked copy into place (the same bytes).
    partial = jar.with_suffix(f".{secrets.token_hex(6)}.part")
    say(f"downloading s3proxy {S3PROXY_VERSION} (55 MB, once) from {S3PROXY_URL}")
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(S3PROXY_URL + ".sha1", timeout=30) as response:
            expected = response.read().decode().split()[0].strip().lower()
        digest = hashlib.sha1()
        with urllib.request.urlopen(S3PROXY_URL, timeout=30) as response, open(partial, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise ClusterError(
            f"cannot download s3proxy from Maven Central ({S3PROXY_URL}): {reason}. Without access to "
            f"Maven Central, copy that jar (checked against {S3PROXY_URL}.sha1) to {jar}") from error
    if digest.hexdigest() != expected:
        partial.unlink(missing_ok=True)
        raise ClusterError(f"s3proxy download from {S3PROXY_URL} has SHA-1 {digest.hexdigest()}, "
                           f"Maven Central says {expected}: not kept")
    partial.replace(jar)
    say(f"downloaded {jar.stat().st_size / 1e6:.0f} MB in {time.monotonic() - t0:.1f} s, SHA-1 checked: {jar}")
    return jar


def _credentials(layout: Layout, environ: Mapping[str, str], say: Say) -> tuple[str, str]:
    access_key, secret_key = environ.get(ACCESS_KEY_ENV), environ.get(SECRET_KEY_ENV)
    if access_key and secret_key:
        return access_key, secret_key
    if access_key or secret_key:
        raise ClusterError(f"set both {ACCESS_KEY_ENV} and {SECRET_KEY_ENV}, or neither (then `up` generates a pair)")
    if layout.credentials_file.exists():
        values = dict(line.removeprefix("export ").split("=", 1)
                      for line in layout.credentials_file.read_text().splitlines() if "=" in line)
        access_key, secret_key = values[ACCESS_KEY_ENV], values[SECRET_KEY_ENV]
        say(f"S3 credentials from {layout.credentials_file} (generated earlier for this local server)")
    else:
        access_key, secret_key = "local-" + secrets.token_hex(8), secrets.token_urlsafe(30)
        _write_private(layout.credentials_file,
                       f"export {ACCESS_KEY_ENV}={access_key}\nexport {SECRET_KEY_ENV}={secret_key}\n")
        say(f"{ACCESS_KEY_ENV}/{SECRET_KEY_ENV} not set: generated a pair for this local server into "
            f"{layout.credentials_file}; for jobs and clients:")
        say(f"export {ACCESS_KEY_ENV}={access_key}\nexport {SECRET_KEY_ENV}={secret_key}")
    return access_key, secret_key


# ------------------------------------------------------------------------------------------ helpers


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free to servers
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    # Bound to 0.0.0.0 by someone else also blocks it; binding 127.0.0.1 alone would not always notice.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((HOST, port)) != 0


def running_components(layout: Layout) -> tuple[str | None, list[Component]]:
    """The master URL `up` recorded and those of its components still running, for a caller that
    measures them (the benchmark samples their memory); (None, []) when nothing was started."""
    master_url, components = _recorded(layout)
    return master_url, [c for c in components if c.process() is not None]


def _read_state(layout: Layout) -> list[Component]:
    return _recorded(layout)[1]


def _recorded(layout: Layout) -> tuple[str | None, list[Component]]:
    if not layout.state_file.exists():
        return None, []
    state = json.loads(layout.state_file.read_text())
    return state["master_url"], [Component(**c) for c in state["components"]]


def _write_state(layout: Layout, components: list[Component]) -> None:
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    state = {"master_url": layout.master_url, "webui_port": layout.webui_port, "s3_endpoint": layout.s3_endpoint,
             "bucket": layout.bucket, "components": [asdict(c) for c in components]}
    tmp = layout.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(layout.state_file)


@contextlib.contextmanager
def _state_lock(layout: Layout) -> Iterator[None]:
    """One `up` or `down` at a time per state dir."""
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    with open(layout.state_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _log_tail(component: Component) -> str:
    path = Path(component.log)
    lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:] if path.exists() else []
    return f"--- last {len(lines)} lines of {path} ---\n" + "\n".join(lines)


def _pyspark_home() -> Path:
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise ClusterError("pyspark is not installed in this interpreter (run `make setup`)")
    return Path(spec.origin).parent


def _spark_class() -> Path:
    return _pyspark_home() / "bin" / "spark-class"


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java:
        raise ClusterError("java not found (JAVA_HOME unset and no java on PATH): a Java 17 JDK is needed")
    return java


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scale_out.local_cluster", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("--master-port", type=int, default=Layout.master_port)
    parser.add_argument("--webui-port", type=int, default=Layout.webui_port,
                        help="the master's web UI (and /json/); worker i uses this port + i")
    parser.add_argument("--s3-port", type=int, default=Layout.s3_port)
    args = parser.parse_args(argv)
    layout = Layout(state_dir=args.state_dir.resolve(), master_port=args.master_port,
                    webui_port=args.webui_port, s3_port=args.s3_port)
    try:
        if args.command == "up":
            up(layout)
        elif args.command == "down":
            down(layout)
        else:
            return 0 if status(layout) else 1
    except ClusterError as error:
        print(f"cluster {args.command} failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
