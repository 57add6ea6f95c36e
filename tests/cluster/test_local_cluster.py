"""The local cluster of `make cluster-up`: a real Spark master with two workers and a real s3proxy, on
free ports with a temporary state dir, brought up, used and brought down by pid (issue #13).

The first run downloads s3proxy (55 MB) from Maven Central into `.cache/s3proxy/`; later runs start
offline in about 10 to 20 seconds.
"""

from __future__ import annotations

import random
import time

import psutil
import pytest
from pyarrow import fs

from scale_out import local_cluster
from scale_out.local_cluster import Layout

# Throw-away keys for a server that lives only on the loopback address for this test module.
ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key-only-for-this-test"


def _free_layout(state_dir) -> Layout:
    """Ports nobody listens on: master, its UI, the two workers' UIs (UI + 1, + 2) and S3."""
    for _ in range(100):
        master, webui, s3 = random.randrange(20000, 40000), random.randrange(40000, 50000), random.randrange(50000, 60000)
        layout = Layout(state_dir=state_dir, master_port=master, webui_port=webui, s3_port=s3)
        if all(local_cluster.port_is_free(port) for port in layout.ports):
            return layout
    raise RuntimeError("no free ports found")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    layout = _free_layout(tmp_path_factory.mktemp("cluster"))
    messages: list[str] = []
    environ = {local_cluster.ACCESS_KEY_ENV: ACCESS_KEY, local_cluster.SECRET_KEY_ENV: SECRET_KEY}
    started = time.monotonic()
    try:
        local_cluster.up(layout, environ=environ, say=messages.append)
        pids = [component.pid for component in local_cluster._read_state(layout)]
        yield layout, pids, messages, time.monotonic() - started
    finally:
        local_cluster.down(layout, say=messages.append)  # idempotent: the last test has already run it


def test_up_starts_a_master_with_two_alive_workers(cluster):
    layout, pids, messages, seconds = cluster

    workers = local_cluster.master_status(layout)["workers"]

    assert [w["state"] for w in workers] == ["ALIVE", "ALIVE"], messages
    assert all(w["cores"] == 1 and w["memory"] == 2048 for w in workers)
    assert len(pids) == 4
    print(f"up in {seconds:.1f} s")


def test_the_s3_server_stores_and_returns_an_object_with_the_environment_keys(cluster):
    layout = cluster[0]
    s3 = fs.S3FileSystem(access_key=ACCESS_KEY, secret_key=SECRET_KEY, endpoint_override=layout.s3_endpoint,
                         scheme="http", region="us-east-1")

    with s3.open_output_stream(f"{layout.bucket}/probe/hello.txt") as out:
        out.write(b"one line\n")
    with s3.open_input_stream(f"{layout.bucket}/probe/hello.txt") as stream:
        read_back = stream.read()

    assert read_back == b"one line\n"
    assert (layout.s3_data / layout.bucket / "probe" / "hello.txt").read_bytes() == b"one line\n"


def test_the_s3_server_refuses_other_keys(cluster):
    layout = cluster[0]
    s3 = fs.S3FileSystem(access_key=ACCESS_KEY, secret_key="not-the-secret", endpoint_override=layout.s3_endpoint,
                         scheme="http", region="us-east-1")

    with pytest.raises(OSError, match="(?i)forbidden|denied|signature"):
        s3.get_file_info(fs.FileSelector(layout.bucket, recursive=True))


def test_up_again_says_it_is_already_up_and_starts_nothing(cluster):
    layout, pids, _, _ = cluster
    messages: list[str] = []
    environ = {local_cluster.ACCESS_KEY_ENV: ACCESS_KEY, local_cluster.SECRET_KEY_ENV: SECRET_KEY}

    local_cluster.up(layout, environ=environ, say=messages.append)

    assert messages[0].startswith("already up"), messages
    assert [c.pid for c in local_cluster._read_state(layout)] == pids


def test_down_stops_every_pid_frees_every_port_and_empties_the_work_dirs(cluster):
    layout, pids, _, _ = cluster
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
