"""A local cluster (scale_out/local_cluster.py) per test module, on free ports with a temporary state dir;
or s3proxy alone, for tests that need only the object store."""

from __future__ import annotations

import time
from typing import Iterator

import pytest

from scale_out import local_cluster
from scale_out.local_cluster import Layout
from tests.cluster.support import KEYS, RunningCluster, free_layout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[RunningCluster]:
    yield from _running(free_layout(tmp_path_factory.mktemp("cluster")))


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory) -> Iterator[RunningCluster]:
    """s3proxy alone (no Spark master or workers), serving the bucket `lakehouse` on a free port."""
    yield from _running(free_layout(tmp_path_factory.mktemp("s3"), spark=False))


def _running(layout: Layout) -> Iterator[RunningCluster]:
    messages: list[str] = []
    started = time.monotonic()
    try:
        local_cluster.up(layout, environ=KEYS, say=messages.append)
        pids = [component.pid for component in local_cluster._read_state(layout)]
        yield RunningCluster(layout, pids, messages, time.monotonic() - started)
    finally:
        local_cluster.down(layout, say=messages.append)  # idempotent: a test may have run it already
