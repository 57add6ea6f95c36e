"""`python -m jobs serve` in a process of its own for a test: started on a free port, stopped by pid with
SIGTERM, and checked to leave no process behind (tests/bi/test_server.py, tests/cluster/)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import psutil
import pytest

from jobs.bi.server import wait_until_listening
from jobs.config import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(environment: Mapping[str, str], folder: Path, *arguments: str, cwd: Path = PROJECT_ROOT,
            timeout: float = 240) -> Iterator[dict]:
    """The server, listening: its port, pid and log (`folder/serve.log`, printed if it fails to start).
    `arguments` are added to the command (e.g. `--warehouse`)."""
    port = free_port()
    log_path = folder / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "jobs", "serve", *arguments, "--port", str(port)],
            cwd=cwd, env=dict(environment), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            try:
                wait_until_listening("127.0.0.1", port, timeout=timeout)
            except Exception:
                print(log_path.read_text()[-6000:])
                raise
            yield {"port": port, "pid": process.pid, "log": log_path}
        finally:
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    family = [process.pid] + [child.pid for child in psutil.Process(process.pid).children(recursive=True)] if process.poll() is None else []
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in family):
        if time.monotonic() > deadline:
            for pid in family:
                if psutil.pid_exists(pid):
                    os.kill(pid, signal.SIGKILL)
            pytest.fail(f"the server left processes running after SIGTERM: {family}")
        time.sleep(0.5)
