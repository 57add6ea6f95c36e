"""The local cluster of `make cluster-up`: a real Spark master with two workers and a real s3proxy, on
free ports with a temporary state dir, brought up, used and brought down by pid (issue #13).

The first run downloads s3proxy (55 MB) from Maven Central into `.cache/s3proxy/`; later runs start
offline in about 10 to 20 seconds.
"""

from __future__ import annotations

import os
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
from pyarrow import fs

from scale_out import local_cluster

from tests.cluster.support import ACCESS_KEY, KEYS, SECRET_KEY


def test_up_starts_a_master_with_two_alive_workers(cluster):
    workers = local_cluster.master_status(cluster.layout)["workers"]

    assert [w["state"] for w in workers] == ["ALIVE", "ALIVE"], cluster.messages
    assert all(w["cores"] == 1 and w["memory"] == 2048 for w in workers)
    assert len(cluster.pids) == 4
    print(f"up in {cluster.up_seconds:.1f} s")


def test_the_s3_server_stores_and_returns_an_object_with_the_environment_keys(cluster):
    layout = cluster.layout
    s3 = fs.S3FileSystem(access_key=ACCESS_KEY, secret_key=SECRET_KEY, endpoint_override=layout.s3_endpoint,
                         scheme="http", region="us-east-1")

    with s3.open_output_stream(f"{layout.bucket}/probe/hello.txt") as out:
        out.write(b"one line\n")
    with s3.open_input_stream(f"{layout.bucket}/probe/hello.txt") as stream:
        read_back = stream.read()

    assert read_back == b"one line\n"
    assert (layout.s3_data / layout.bucket / "probe" / "hello.txt").read_bytes() == b"one line\n"


def test_the_s3_server_refuses_other_keys(cluster):
    layout = cluster.layout
    s3 = fs.S3FileSystem(access_key=ACCESS_KEY, secret_key="not-the-secret", endpoint_override=layout.s3_endpoint,
                         scheme="http", region="us-east-1")

    with pytest.raises(OSError, match="(?i)forbidden|denied|signature"):
        s3.get_file_info(fs.FileSelector(layout.bucket, recursive=True))


def test_up_again_says_it_is_already_up_and_starts_nothing(cluster):
    messages: list[str] = []

    local_cluster.up(cluster.layout, environ=KEYS, say=messages.append)

    assert messages[0].startswith("already up"), messages
    assert [c.pid for c in local_cluster._read_state(cluster.layout)] == cluster.pids


def test_down_stops_every_pid_frees_every_port_and_empties_the_work_dirs(cluster):
    layout, pids = cluster.layout, cluster.pids
    messages: list[str] = []
    started = time.monotonic()

    local_cluster.down(layout, say=messages.append)
    seconds = time.monotonic() - started

    assert not [pid for pid in pids if psutil.pid_exists(pid)], messages
    assert [port for port in layout.ports if not local_cluster.port_is_free(port)] == []
    assert not any((layout.worker_dir(n) / "work").exists() for n in (1, 2))
    assert not layout.state_file.exists()
    local_cluster.down(layout, say=messages.append)
    assert messages[-1].startswith("not running"), messages
    print(f"down in {seconds:.1f} s")


# A process whose first thread exits while another, ignoring TERM, goes on for a while: what a JVM shows
# for a moment when it stops (the kernel calls it a zombie, yet it runs, holds its ports, cannot be reaped).
FIRST_THREAD_EXITS_FIRST = """
import ctypes, os, signal, sys, threading, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
threading.Thread(target=lambda: (time.sleep(float(sys.argv[1])), os._exit(0))).start()
ctypes.CDLL(None).pthread_exit(None)
"""


def test_down_waits_for_a_process_whose_first_thread_exited_before_its_others_and_reaps_it(tmp_path):
    layout = local_cluster.Layout(state_dir=tmp_path)
    component = local_cluster._spawn(layout, "slow-exit", [sys.executable, "-c", FIRST_THREAD_EXITS_FIRST, "2"],
                                     env=os.environ, ports=[])
    time.sleep(0.5)
    assert psutil.Process(component.pid).status() == psutil.STATUS_ZOMBIE  # the state being tested
    messages: list[str] = []
    started = time.monotonic()

    local_cluster._stop_all(layout, [component], say=messages.append)

    assert time.monotonic() - started > 1.0, messages  # waited for the thread still running
    assert not psutil.pid_exists(component.pid), messages  # and reaped it
    assert messages[-1].startswith("stopped slow-exit"), messages


def test_downloads_of_the_s3proxy_jar_at_once_each_keep_a_checked_copy(tmp_path):
    # Two clusters started at once on a fresh machine (parallel tests, two operators) fetch side by side.
    with ThreadPoolExecutor(max_workers=2) as pool:
        jars = list(pool.map(lambda _: local_cluster.ensure_s3proxy_jar(tmp_path, say=lambda _: None), range(2)))

    assert jars[0] == jars[1] == tmp_path / local_cluster.S3PROXY_JAR
    assert [path.name for path in tmp_path.iterdir()] == [local_cluster.S3PROXY_JAR]  # no partial file left
    assert zipfile.ZipFile(jars[0]).testzip() is None
