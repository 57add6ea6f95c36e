"""Child process of test_s3_delta.py: a Spark driver of the `cluster` configuration, on the test's local
cluster, writes a small Delta table to S3 and reads it back; prints what it saw as one JSON line.

A process of its own, so that its Spark session (a standalone master, the s3a packages) is not the test
run's local one. Keys come from the environment, as for any job of the cluster overlay.

    python -m tests.cluster.s3_delta_probe --master spark://… --s3-endpoint http://… --table s3a://bucket/path
"""

from __future__ import annotations

import argparse
import datetime as dt
import json

from pyspark.sql import Row

from jobs.config import load_settings
from jobs.spark import get_spark

ROWS = [
    Row(event_id="e1", tenant_id="shop-a", amount_cents=1250, occurred_at=dt.datetime(2026, 11, 30, 23, 59)),
    Row(event_id="e2", tenant_id="shop-a", amount_cents=None, occurred_at=dt.datetime(2026, 12, 1, 0, 0)),
    Row(event_id="e3", tenant_id="shop-b", amount_cents=80, occurred_at=dt.datetime(2026, 12, 1, 8, 30)),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--master", required=True)
    parser.add_argument("--s3-endpoint", required=True)
    parser.add_argument("--table", required=True)
    args = parser.parse_args()
    settings = load_settings("cluster", overrides={
        "spark": {"master": args.master, "extra_conf": {"spark.hadoop.fs.s3a.endpoint": args.s3_endpoint}},
    })
    spark = get_spark(settings)
    try:
        frame = spark.createDataFrame(ROWS).repartition(2)  # two tasks: one per executor
        frame.write.format("delta").partitionBy("tenant_id").save(args.table)
        read_back = spark.read.format("delta").load(args.table)
        executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1  # minus the driver
        print(json.dumps({
            "master": spark.sparkContext.master,
            "executors": executors,
            "rows": sorted(read_back.select("event_id", "amount_cents").collect()),
            "version": spark.sql(f"DESCRIBE HISTORY delta.`{args.table}`").agg({"version": "max"}).first()[0],
        }))
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
