"""One Spark session for the whole test run (UI off, few shuffle partitions, Delta enabled)."""

from __future__ import annotations

import gc
import logging
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("LAKEHOUSE_ENV", "ci")
# pytest-xdist's workers (make test) run with a `__main__` that has neither a spec nor a file, which
# pyspark.sql.connect.utils takes for its own doctest runner: it then exits the process when Spark
# Connect's gRPC extras are missing. Give that module a file name so pyspark sees an ordinary program.
_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = "<pytest-xdist worker>"
# py4j logs at INFO from finalizers after pytest closed its capture streams ("Logging error").
logging.getLogger("py4j").setLevel(logging.WARNING)


# The modules that take several pipeline runs (minutes each on two cores), longest first (durations of
# `make test` on 2026-12-04). pytest-xdist hands whole files to its workers in the order collected
# (`make test` passes --no-loadscope-reorder: xdist's own order, most tests first, left these single
# long tests for last, one worker running them while the other idled); going first, they run side by
# side and the many short modules fill in around them. Only the order changes: every test still runs.
LONGEST_FIRST = (
    "tests/test_incremental.py",
    "tests/cluster/test_pipeline_on_cluster.py",
    "tests/bi/test_server.py",  # builds the marts every tests/bi module reads (tests/bi/conftest.py)
    "tests/test_restate_changed_orders.py",
    "tests/test_restate_by_difference.py",
    "tests/test_write_audit_publish.py",
    "tests/scenarios/test_run_and_backfill_at_once.py",
    "tests/scenarios/test_killed_before_publication.py",
    "tests/test_pipeline.py",
    "tests/scenarios/test_days_late_events.py",
    "tests/test_segments_pipeline.py",
    "tests/scenarios/test_erasure_after_publication.py",
    "tests/cluster/test_s3_delta.py",
    "tests/scenarios/test_disk_full.py",
    "tests/scenarios/test_stale_run.py",
    "tests/scenarios/test_projection_bug.py",
    "tests/cluster/test_s3_storage.py",
    "tests/test_silver_state.py",
    "tests/scenarios/test_killed_landing.py",
    "tests/scenarios/test_unknown_and_newer_events.py",
)


def pytest_collection_modifyitems(items):
    rank = {path: number for number, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(LONGEST_FIRST)))  # stable: the rest in order


@pytest.fixture(scope="session")
def spark_warehouse(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("warehouse")


@pytest.fixture(scope="session")
def settings(spark_warehouse):
    from jobs.config import load_settings

    return load_settings("ci", warehouse=str(spark_warehouse))


@pytest.fixture(scope="session")
def spark(settings):
    from jobs.spark import get_spark

    session = get_spark(settings)
    yield session
    session.stop()


@pytest.fixture(scope="module", autouse=True)
def _release_spark_memory():
    """After each module: drop what it cached in Spark and Delta's per-table logs, so that one
    session can run the whole suite (fixtures cache frames; every table read keeps its log cached)."""
    yield
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is None:
        return
    gc.collect()  # Python's references to JVM objects of the module's frames
    session.catalog.clearCache()
    session._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()


@pytest.fixture
def warehouse(tmp_path) -> str:
    """A fresh warehouse folder for one test (tables are addressed by path)."""
    path = tmp_path / "warehouse"
    path.mkdir()
    return str(path)
