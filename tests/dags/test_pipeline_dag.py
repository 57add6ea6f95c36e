"""The pipeline DAG end to end, through `airflow dags test`, on a small history of three days.

One DAG run for the whole module (Airflow and Spark start once there); the tests read what it left:
the Airflow DB of its own AIRFLOW_HOME, and the warehouse's Delta tables.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobs.airflow_env import airflow_environ, dags_test, migrate_db
from jobs.config import PROJECT_ROOT, load_settings

DAG_ID = "lakehouse_pipeline"
LOGICAL_DATE = "2026-01-08T00:00:00+00:00"


@dataclass(frozen=True)
class DagRun:
    process: subprocess.CompletedProcess[str]
    airflow_db: Path
    warehouse: str
    seconds: dict[str, float]

    def output_tail(self) -> str:
        return (self.process.stdout + self.process.stderr)[-6000:]


@pytest.fixture(scope="module")
def dag_run(tmp_path_factory) -> DagRun:
    root = tmp_path_factory.mktemp("pipeline_dag")
    landing, warehouse = root / "landing", root / "warehouse"
    environ = airflow_environ(root / "airflow_home", overrides={"LAKEHOUSE_ENV": "ci"})
    seconds = {}

    started = time.monotonic()
    write_history(landing, environ)
    seconds["history"] = time.monotonic() - started

    started = time.monotonic()
    migrate_db(environ)
    seconds["db_migrate"] = time.monotonic() - started

    started = time.monotonic()
    conf = {"landing": str(landing), "warehouse": str(warehouse)}
    process = dags_test(DAG_ID, LOGICAL_DATE, conf, environ, timeout=900, fail_fast=True)
    seconds["dags_test"] = time.monotonic() - started
    run = DagRun(process, root / "airflow_home" / "airflow.db", str(warehouse), seconds)
    tasks = airflow_rows(run, "SELECT task_id, duration FROM task_instance WHERE dag_id = ? ORDER BY start_date", DAG_ID)
    seconds.update((f"task {task_id}", duration or 0.0) for task_id, duration in tasks)
    print(f"\n{DAG_ID} end to end, seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    return run


@pytest.fixture(scope="module")
def spark(dag_run):
    from jobs.spark import get_spark

    return get_spark(load_settings("ci", warehouse=dag_run.warehouse))


@pytest.fixture(scope="module")
def events(dag_run, spark):
    """Bronze events the marts can see, read once for the tests below."""
    frame = projectable_events(spark, dag_run).cache()
    yield frame
    frame.unpersist()


def airflow_rows(dag_run: DagRun, query: str, *args) -> list[tuple]:
    with closing(sqlite3.connect(dag_run.airflow_db)) as db:
        return db.execute(query, args).fetchall()


def test_the_dag_run_succeeds(dag_run):
    assert dag_run.process.returncode == 0, dag_run.output_tail()
    assert airflow_rows(dag_run, "SELECT state FROM dag_run WHERE dag_id = ?", DAG_ID) == [("success",)]


def test_every_task_instance_succeeds(dag_run):
    states = dict(airflow_rows(dag_run, "SELECT task_id, state FROM task_instance WHERE dag_id = ?", DAG_ID))
    assert states == dict.fromkeys(("land", "build", "validate", "publish"), "success"), dag_run.output_tail()


def test_orders_has_one_row_per_order_created_in_bronze(dag_run, spark, events):
    from pyspark.sql import functions as F

    created = events.filter(F.col("event_type") == "OrderCreated").select(
        "tenant_id", F.get_json_object("data", "$.order_id").alias("order_id")
    )
    orders = delta(spark, dag_run, "gold/orders")
    assert orders.count() == created.distinct().count() > 0
    assert rows(orders.select("tenant_id", "order_id")) == rows(created.distinct())


def test_orders_are_valid_exactly_when_bronze_has_a_confirmation_and_no_cancellation(dag_run, spark, events):
    valid = valid_orders_from_bronze(events)
    orders = delta(spark, dag_run, "gold/orders")
    assert rows(orders.filter("is_valid").select("tenant_id", "order_id")) == rows(valid.select("tenant_id", "order_id"))


def test_basket_daily_counts_the_valid_orders_bronze_implies_per_day(dag_run, spark, events):
    from pyspark.sql import functions as F

    expected = valid_orders_from_bronze(events).groupBy("tenant_id", "order_date").agg(
        F.count(F.lit(1)).alias("valid_orders"), F.sum("net_cents").alias("net_cents")
    )
    basket = delta(spark, dag_run, "gold/basket_daily").groupBy("tenant_id", "order_date").agg(
        F.sum("valid_orders").alias("valid_orders"), F.sum("net_cents").alias("net_cents")
    )
    assert expected.count() > 0
    assert rows(basket) == rows(expected)


def test_each_enabled_mart_is_published_once_by_the_airflow_run(dag_run, spark):
    run_ids = [run_id for (run_id,) in airflow_rows(dag_run, "SELECT run_id FROM dag_run WHERE dag_id = ?", DAG_ID)]
    publications = delta(spark, dag_run, "meta/publications").collect()
    enabled = load_settings("ci", warehouse=dag_run.warehouse).marts.enabled
    assert sorted(row["mart"] for row in publications) == sorted(enabled)
    assert {row["run_id"] for row in publications} == set(run_ids)
    for row in publications:
        assert row["row_count"] == delta(spark, dag_run, f"gold/{row['mart']}").count()


# --- what bronze implies, computed here independently of jobs/ -------------------------------------


def delta(spark, dag_run: DagRun, table: str):
    return spark.read.format("delta").load(f"{dag_run.warehouse}/{table}")


def projectable_events(spark, dag_run: DagRun):
    """Bronze, less the events silver reports it set aside (newer schema versions, invalid payloads)."""
    set_aside = delta(spark, dag_run, "silver/held_back").select("event_id").unionByName(
        delta(spark, dag_run, "silver/invalid_payloads").select("event_id")
    )
    return delta(spark, dag_run, "bronze/events").join(set_aside, on="event_id", how="left_anti")


def rows(frame) -> list[tuple]:
    return sorted(tuple(row) for row in frame.collect())


def valid_orders_from_bronze(bronze):
    """Per valid order (confirmed, never cancelled): its UTC creation date and net cents."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order_id = F.get_json_object("data", "$.order_id").alias("order_id")
    first = Window.partitionBy("tenant_id", "order_id").orderBy("stream_version")
    # v1 totals are decimal euros, rounded to the nearest cent; v2 and later carry cents.
    gross = F.coalesce(
        F.get_json_object("data", "$.total_cents").cast("bigint"),
        F.round(F.get_json_object("data", "$.total").cast("decimal(38,10)") * 100).cast("bigint"),
    )
    created = (
        bronze.filter(F.col("event_type") == "OrderCreated")
        .select("tenant_id", order_id, "stream_version", F.to_date("occurred_at").alias("order_date"), gross.alias("gross"))
        .withColumn("_rank", F.row_number().over(first))
        .filter("_rank = 1")
    )

    def orders_with(event_type: str):
        return bronze.filter(F.col("event_type") == event_type).select("tenant_id", order_id)

    discounts = (
        bronze.filter(F.col("event_type") == "PromotionApplied")
        .select("tenant_id", order_id, F.get_json_object("data", "$.discount_cents").cast("bigint").alias("discount"))
        .groupBy("tenant_id", "order_id")
        .agg(F.sum("discount").alias("discount"))
    )
    return (
        created.join(orders_with("OrderConfirmed").distinct(), on=["tenant_id", "order_id"], how="left_semi")
        .join(orders_with("OrderCancelled"), on=["tenant_id", "order_id"], how="left_anti")
        .join(discounts, on=["tenant_id", "order_id"], how="left")
        .withColumn("net_cents", F.col("gross") - F.coalesce("discount", F.lit(0)))
        .select("tenant_id", "order_id", "order_date", "net_cents")
    )


# --- the history --------------------------------------------------------------------------------


def write_history(landing: Path, environ: dict[str, str]) -> None:
    """Three simulated days of one tenant (about 2,400 events in hourly files, anomalies included)."""
    command = [sys.executable, "-m", "jobs", "simulate", "--out", str(landing)]
    command += ["--days", "3", "--tenants", "1", "--seed", "1"]
    subprocess.run(command, env=environ, cwd=PROJECT_ROOT, check=True, capture_output=True, text=True)
