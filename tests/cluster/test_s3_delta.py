"""The `cluster` configuration on the local cluster: a Spark driver with executors on both workers
writes a Delta table to `s3a://` on s3proxy, and delta-rs reads the same table back as `s3://` (issue #13).

The first run fetches hadoop-aws and the AWS SDK modules (about 13 MB) into `.cache/ivy/`.

`slow` (`make test-slow`): what it shows is part of tests/cluster/test_pipeline_on_cluster.py, which
`make test` runs (the cluster writes the marts to S3 and delta-rs reads them back); this probe, two
minutes of a cluster of its own, is the first thing to run when that test fails for want of S3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from deltalake import DeltaTable

from scale_out.local_cluster import PROJECT_ROOT, master_status
from jobs.storage import delta_rs_location
from tests.cluster.support import KEYS, settings_on

PROBE_TIMEOUT_S = 300
pytestmark = pytest.mark.slow


def test_a_delta_table_written_by_the_cluster_to_s3_reads_back_with_deltalake(cluster):
    layout = cluster.layout
    table = f"{layout.bucket}/probe/orders"
    environ = {**os.environ, **KEYS}
    environ.pop("LAKEHOUSE_WAREHOUSE", None)

    probe = subprocess.run(
        [sys.executable, "-m", "tests.cluster.s3_delta_probe", "--master", layout.master_url,
         "--s3-endpoint", layout.s3_endpoint, "--table", f"s3a://{table}"],
        cwd=PROJECT_ROOT, env=environ, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
    )
    assert probe.returncode == 0, probe.stderr[-4000:]
    seen = json.loads(probe.stdout.strip().splitlines()[-1])
    # What the benchmark's DuckDB reference does to read bronze: the cluster configuration's own s3a settings.
    location, storage_options = delta_rs_location(settings_on(cluster, f"s3a://{layout.bucket}"), f"s3a://{table}", KEYS)
    assert location == f"s3://{table}"
    read_by_delta_rs = DeltaTable(location, storage_options=storage_options)

    assert seen["master"] == layout.master_url and seen["executors"] == 2
    assert seen["rows"] == [["e1", 1250], ["e2", None], ["e3", 80]]
    rows = read_by_delta_rs.to_pyarrow_table(columns=["event_id", "tenant_id", "amount_cents"]).to_pylist()
    assert sorted(rows, key=lambda r: r["event_id"]) == [
        {"event_id": "e1", "tenant_id": "shop-a", "amount_cents": 1250},
        {"event_id": "e2", "tenant_id": "shop-a", "amount_cents": None},
        {"event_id": "e3", "tenant_id": "shop-b", "amount_cents": 80},
    ]
    assert read_by_delta_rs.version() == seen["version"] == 0
    assert (layout.s3_data / layout.bucket / "probe" / "orders" / "_delta_log").is_dir()
    assert [app["state"] for app in master_status(layout)["completedapps"]] == ["FINISHED"]
