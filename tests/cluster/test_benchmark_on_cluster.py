"""The benchmark harness on the `cluster` overlay (issue #13, point 6): `python -m benchmarks --env cluster`
runs the driver against the local cluster's master, keeps each size's warehouse on its S3 server (beside
the configured warehouse, which it never touches), reads bronze from S3 for the DuckDB reference, samples
the cluster's processes' memory with the driver's, and reports the same figures as a local run.

No timing is asserted. One size of 5,000 events from one tenant, the three marts DuckDB computes, one
hourly run (the local harness test covers several runs and their median): about 8 minutes on two cores
(`slow`), most of it Spark on two one-core executors through S3.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys

import pytest

from jobs.config import PROJECT_ROOT
from tests.cluster.support import KEYS, cluster_conf

pytestmark = pytest.mark.slow

SIZE = 5_000
THREE_MARTS = ("orders", "basket_daily", "customer_360")


@pytest.fixture(scope="module")
def results(cluster, tmp_path_factory) -> dict:
    layout = cluster.layout
    folder = tmp_path_factory.mktemp("bench_on_cluster")
    conf = cluster_conf(folder / "conf", layout, None)
    out = folder / "bench.json"
    environ = {key: value for key, value in os.environ.items() if not key.startswith("LAKEHOUSE_")}
    environ |= KEYS | {"LAKEHOUSE_CONF_DIR": str(conf), "PYTHONUNBUFFERED": "1",
                       "LAKEHOUSE_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode()}
    command = [
        sys.executable, "-m", "benchmarks", "--env", "cluster",
        "--sizes", str(SIZE), "--hourly-fraction", "0.01", "--hourly-runs", "1", "--tenants", "1",
        "--marts", ",".join(THREE_MARTS),
        "--workdir", str(folder / "work"), "--out", str(out), "--cluster-state", str(layout.state_dir),
    ]
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=environ, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, f"the harness failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return {"document": json.loads(out.read_text()), "layout": layout, "stdout": done.stdout}


def test_each_size_runs_on_the_cluster_with_its_warehouse_on_s3_and_is_deleted_after(results):
    document, layout = results["document"], results["layout"]
    assert document["complete"] is True
    configuration = document["configuration"]
    assert configuration["env"] == "cluster" and configuration["spark"]["spark.master"] == layout.master_url
    root = f"s3a://{layout.bucket}/warehouse-bench"
    assert configuration["warehouse_root"] == root, "beside the configured s3a://lakehouse/warehouse"
    (size,) = document["sizes"]
    assert size["warehouse"] == f"{root}/size-{SIZE}/warehouse"
    assert size["history"]["lines"] == SIZE and size["history"]["events_landed"] > 0.95 * SIZE
    left = [path for path in (layout.s3_data / layout.bucket).rglob("*") if path.is_file()]
    assert left == [], "each size's warehouse is deleted from the bucket after it"
    assert not (layout.s3_data / layout.bucket / "warehouse").exists(), "the configured warehouse is not touched"


def test_the_cluster_run_reports_every_figure_a_local_run_reports(results):
    document = results["document"]
    figures = dict(document["figures"])
    assert figures.pop("hourly_growth") is None  # one size
    assert all(value is not None and value > 0 for value in figures.values()), figures
    (size,) = document["sizes"]
    for section, key in (("land_history", "seconds"), ("full_rebuild", "total_seconds"), ("duckdb", "total_seconds"),
                         ("hourly", "total_seconds")):
        assert size[section][key] > 0, f"{section}.{key}"
    assert size["hourly"]["marts"]["orders"]["mode"] == "restated", "the hourly run is incremental on S3 too"


def test_duckdb_reads_bronze_from_s3_and_counts_what_spark_publishes(results):
    (size,) = results["document"]["sizes"]
    assert size["duckdb"]["events_read"] > 0
    differing = {name: c for name, c in size["marts_compared"].items() if not c["equal"]}
    assert differing == {}
    assert size["marts_compared"]["orders_rows"]["spark"] == size["full_rebuild"]["rows"]["orders"] > 0


def test_the_memory_of_the_cluster_processes_counts_with_the_driver(results):
    document = results["document"]
    sampled = " ".join(document["configuration"]["memory_sampled"])
    # The executors are the workers' children: sampled with them (tests/test_benchmark_parts.py shows
    # that processes named beside the driver add up).
    for name in ("master", "worker-1", "worker-2", "s3proxy"):
        assert f"{name} (pid" in sampled, sampled
