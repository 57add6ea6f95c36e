"""The Spark session factory (jobs/spark.py): starts on one machine take turns at the ivy folder, where a
start fetches the JVM packages it lacks."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

from jobs.config import PROJECT_ROOT

HOLD_SECONDS = 6
STARTER = """
import sys, time
from jobs.config import load_settings
from jobs.spark import get_spark
print(f"asked {time.time()}", flush=True)
get_spark(load_settings("ci", warehouse=sys.argv[1])).stop()
print(f"started {time.time()}", flush=True)
"""


def test_a_spark_start_waits_while_another_process_holds_the_ivy_folder(settings, tmp_path):
    lock_path = Path(settings.spark.ivy_dir) / ".fetch.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a process fetching packages holds it
        starter = subprocess.Popen(
            [sys.executable, "-c", STARTER, str(tmp_path / "warehouse")], cwd=tmp_path, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        )
        asked = float(starter.stdout.readline().split()[1])
        time.sleep(HOLD_SECONDS)  # a JVM is launched within a second or two when nothing holds the folder
        launched_meanwhile = [child.name() for child in psutil.Process(starter.pid).children(recursive=True)]
        released = time.time()
    out, err = starter.communicate(timeout=300)
    assert starter.returncode == 0, err[-3000:]
    assert launched_meanwhile == []
    started = float(out.split()[1])
    assert asked < released < started
