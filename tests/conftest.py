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
