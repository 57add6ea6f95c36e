"""Warehouse files on `s3a://` (jobs/storage.py), on the local cluster's s3proxy: a run's markers, the
erasure log's existence, `maintain`'s search and log cleanup, and the Data Docs act on the object store, not on a local
`s3a:/…` folder (docs/scale-out.md, issue #13). The same operations on a local folder: tests/test_storage.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from scale_out.local_cluster import PROJECT_ROOT
from tests.cluster.support import KEYS

PROBE_TIMEOUT_S = 300


def test_markers_erasure_log_maintenance_and_data_docs_act_on_the_object_store(s3_server, tmp_path):
    layout = s3_server.layout  # s3proxy alone: the probe's Spark is local[1] (its operations run in the driver)
    warehouse = f"s3a://{layout.bucket}/storage-probe/warehouse"
    environ = {**os.environ, **KEYS}
    environ.pop("LAKEHOUSE_WAREHOUSE", None)

    probe = subprocess.run(
        [sys.executable, "-m", "tests.cluster.s3_storage_probe", "--s3-endpoint", layout.s3_endpoint, "--warehouse", warehouse],
        cwd=tmp_path, env={**environ, "PYTHONPATH": str(PROJECT_ROOT)}, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
    )
    assert probe.returncode == 0, probe.stderr[-4000:]
    seen = json.loads(probe.stdout.strip().splitlines()[-1])
    on_disk = layout.s3_data / layout.bucket / "storage-probe" / "warehouse"  # s3proxy's filesystem backend

    assert seen["nobody_erased_before"] and seen["anyone_erased_after"]
    assert not seen["marker_before"] and seen["single_put"]
    assert seen["marker_text"] == '{"validated": {"orders_daily": 1}}'
    assert seen["run_is_dir"] and not seen["marker_is_dir"]
    assert seen["staging"] == [[f"{warehouse}/staging/run_1", True]]
    assert seen["run"] == [["_validated.json", False, True]]  # no temporary object beside it
    assert seen["delta_tables"] == [f"{warehouse}/gold/orders_daily", f"{warehouse}/meta/erasure_log"]
    assert sorted(seen["maintained"]) == seen["delta_tables"]
    log_deleted, earliest = seen["maintained"][f"{warehouse}/gold/orders_daily"]
    assert log_deleted >= 2 and earliest >= 2  # commits 0 and 1 (and their .crc) went with the cleanup
    assert "00000000000000000000.json" not in seen["log_after"]
    assert not (on_disk / "gold" / "orders_daily" / "_delta_log" / "00000000000000000000.json").exists()
    assert seen["orders_rows"] == 3
    assert seen["data_docs"] == ["index.html", "runs", "runs.json"]
    assert seen["data_docs_run"] == ["index.html", "orders_daily_v1.json", "reconciliation.json"]
    assert 'href="runs/run_1/index.html"' in seen["data_docs_index"] and "reconciliation (FAILED)" in seen["data_docs_index"]
    assert (on_disk / "data_docs" / "runs" / "run_1" / "index.html").is_file()
    assert seen["deleted"] and not seen["deleted_again"] and not seen["marker_after"]
    assert seen["staging_after"] == [] and seen["read_missing"] == "FileNotFoundError"
    assert not (on_disk / "staging" / "run_1").exists()
    # Nothing went to a local `s3a:/…` folder beside the process, as pathlib would have done.
    assert not (tmp_path / "s3a:").exists()
