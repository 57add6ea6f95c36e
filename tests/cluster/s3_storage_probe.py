"""Child process of test_s3_storage.py: a Spark driver of the `cluster` configuration with its warehouse on
`s3a://`, doing what the jobs do with warehouse files there (jobs/storage.py): a run's markers written,
read, listed and deleted; the erasure log's existence; `maintain` finding the tables and cleaning their
logs; Data Docs written. Prints what it saw as one JSON line.

The master is `local[1]`: these operations run in the driver, and its Delta writes still go to s3a;
executors on the cluster's workers (tests/cluster/test_s3_delta.py) would add only their start-up.
Keys come from the environment, as for any job of the cluster overlay.

    python -m tests.cluster.s3_storage_probe --s3-endpoint http://… --warehouse s3a://bucket/path
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone

from jobs import data_docs, storage
from jobs.config import load_settings
from jobs.maintenance import delta_tables, maintain
from jobs.privacy.erasure import ERASURE_LOG, _anyone_erased
from jobs.spark import get_spark
from jobs.tables import ensure_table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--s3-endpoint", required=True)
    parser.add_argument("--warehouse", required=True)
    args = parser.parse_args()
    warehouse = args.warehouse.rstrip("/")
    settings = load_settings("cluster", warehouse=warehouse, overrides={
        "spark": {"master": "local[1]", "extra_conf": {"spark.hadoop.fs.s3a.endpoint": args.s3_endpoint}},
    })
    spark = get_spark(settings)
    seen: dict = {}
    try:
        started = datetime.now(timezone.utc) - timedelta(seconds=5)  # the server's clock may lag a little
        run = f"{warehouse}/staging/run_1"
        marker = f"{run}/_validated.json"
        seen["nobody_erased_before"] = not _anyone_erased(spark, warehouse)
        seen["marker_before"] = storage.exists(spark, marker)
        storage.write_text(spark, marker, '{"validated": {}}')
        storage.write_text(spark, marker, '{"validated": {"orders_daily": 1}}')
        fs, path = storage._resolve(spark, marker)
        seen["single_put"] = bool(fs.hasPathCapability(path, storage._VISIBLE_ON_CLOSE))
        seen["marker_text"] = storage.read_text(spark, marker)
        seen["run_is_dir"], seen["marker_is_dir"] = storage.is_dir(spark, run), storage.is_dir(spark, marker)
        seen["staging"] = [[e.path, e.is_dir] for e in storage.list_dir(spark, f"{warehouse}/staging")]
        seen["run"] = [[e.name, e.is_dir, started <= e.modified_at <= datetime.now(timezone.utc) + timedelta(seconds=5)]
                       for e in storage.list_dir(spark, run)]

        # Three tables: two the warehouse keeps, one in a run's staging that `maintain` leaves alone.
        orders = f"{warehouse}/gold/orders_daily"
        for day in range(3):  # three commits: a checkpoint at version 2, and versions 0 and 1 to clean
            spark.createDataFrame([(f"2026-12-0{day + 1}", day)], "order_date STRING, orders INT").write.format("delta").mode("append").save(orders)
        spark.createDataFrame([(1,)], "n INT").write.format("delta").save(f"{run}/orders_daily")
        ensure_table(spark, ERASURE_LOG, warehouse)
        seen["anyone_erased_after"] = _anyone_erased(spark, warehouse)
        seen["delta_tables"] = delta_tables(spark, warehouse)
        done = maintain(settings, 0, force=True, progress=lambda _line: None)
        seen["maintained"] = {t.path: [t.log_files_deleted, t.earliest_version] for t in done}
        seen["log_after"] = sorted(e.name for e in storage.list_dir(spark, f"{orders}/_delta_log"))
        seen["orders_rows"] = spark.read.format("delta").load(orders).count()

        # Data Docs in their default folder, <warehouse>/data_docs: a run's page and the index.
        for suite, success in (("orders_daily_v1", True), ("reconciliation", False)):
            data_docs.record_validation(spark, settings.data_docs_dir, {
                "run_id": "run:1", "suite": suite, "success": success, "validated_at": "2026-12-02T00:00:00+00:00",
                "expectations": [{"expectation": "expect_column_values_to_not_be_null(order_date)", "success": success, "observed": "0 of 3"}],
            })
        seen["data_docs"] = sorted(e.name for e in storage.list_dir(spark, f"{warehouse}/data_docs"))
        seen["data_docs_run"] = sorted(e.name for e in storage.list_dir(spark, f"{warehouse}/data_docs/runs/run_1"))
        seen["data_docs_index"] = storage.read_text(spark, f"{warehouse}/data_docs/index.html")

        seen["deleted"] = storage.delete(spark, run)
        seen["deleted_again"] = storage.delete(spark, run)
        seen["marker_after"] = storage.exists(spark, marker)
        seen["staging_after"] = [e.name for e in storage.list_dir(spark, f"{warehouse}/staging")]
        try:
            storage.read_text(spark, marker)
            seen["read_missing"] = "read"
        except FileNotFoundError:
            seen["read_missing"] = "FileNotFoundError"
        print(json.dumps(seen))
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
