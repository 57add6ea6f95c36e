"""The pipeline end to end on the local cluster (issue #13, point 3): `python -m jobs run` with the `cluster`
configuration (a Spark standalone master with two workers, the warehouse on `s3a://` on s3proxy) publishes
the same marts as a local run of the same events, and delta-rs reads them back from the S3 server.

The cluster run is the operator's command in a process of its own, with a copy of `conf/` whose
`cluster.yaml` names this test's ports (what an operator edits for real machines), and `LAKEHOUSE_ENV` /
`LAKEHOUSE_WAREHOUSE`. The local run reads the same copy with the CI configuration and runs in the test's
own Spark session (`jobs.pipeline.run`, what `python -m jobs run` calls): a process of its own would pay
the JVM's warm-up again, two minutes of the test's time, for nothing this test is about. The marts are
compared through delta-rs on both sides, rows sorted, floating-point values to 9 decimals (sums may be
added in another order on another layout).

`make test` runs it with three marts (`orders`, `basket_daily`, `customer_360`: upcasting, silver,
daily aggregates and the per-customer view with its decrypted personal fields), about 5 minutes on two
cores; every enabled mart is the `slow` variant (`make test-slow`; its cluster run took 7 minutes).
Also `slow`, on the three-mart history: the other commands and `serve` on the warehouse the cluster run
left on S3, and the landing and marts DAGs run on the cluster.
"""

from __future__ import annotations

import base64
import math
import os
import re
import secrets
import subprocess
import sys
import time
from datetime import date, datetime
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from jobs import pipeline
from jobs.bi.protocol import check_reader_protocol
from jobs.config import PROJECT_ROOT, load_settings
from jobs.storage import delta_rs_location
from tests.bi.serving import serving
from tests.cluster.support import KEYS, cluster_conf

RUN_TIMEOUT_S = 1500
EVERY_MART = None  # the configuration's own list
MART_SETS = [
    pytest.param(("orders", "basket_daily", "customer_360"), id="three-marts"),
    pytest.param(EVERY_MART, id="every-mart", marks=pytest.mark.slow),
]
MASTER_KEY = base64.b64encode(secrets.token_bytes(32)).decode()  # wraps the customers' keys at landing


@pytest.fixture(scope="module", params=MART_SETS)
def runs(request, cluster, spark, tmp_path_factory):
    """One simulated history, landed and published twice: on the cluster with its warehouse on S3, and
    locally with the CI configuration."""
    layout = cluster.layout
    root = tmp_path_factory.mktemp("pipeline_on_cluster")
    conf = cluster_conf(root / "conf", layout, request.param)
    base = {key: value for key, value in os.environ.items() if not key.startswith("LAKEHOUSE_")}
    base |= {"LAKEHOUSE_CONF_DIR": str(conf), "LAKEHOUSE_MASTER_KEY": MASTER_KEY, "PYTHONPATH": str(PROJECT_ROOT)}
    landing = root / "landing"
    command = [sys.executable, "-m", "jobs", "simulate", "--out", str(landing), "--days", "3", "--tenants", "1", "--seed", "3"]
    subprocess.run(command, env={**base, "LAKEHOUSE_ENV": "ci"}, cwd=root, check=True, capture_output=True, text=True)

    on_cluster = {**base, **KEYS, "LAKEHOUSE_ENV": "cluster",
                  "LAKEHOUSE_WAREHOUSE": f"s3a://{layout.bucket}/{root.name}/warehouse"}
    local = {**base, "LAKEHOUSE_ENV": "ci", "LAKEHOUSE_WAREHOUSE": str(root / "local-warehouse")}
    result = {"root": root, "conf": conf, "marts": request.param, "environ": {"cluster": on_cluster, "local": local}}
    workdir = root / "cwd-cluster"
    workdir.mkdir()
    started = time.monotonic()
    result["cluster"] = subprocess.run(
        [sys.executable, "-m", "jobs", "run", "--landing", str(landing), "--run-id", "e2e-cluster"],
        env=on_cluster, cwd=workdir, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )
    print(f"cluster run: {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_MASTER_KEY", MASTER_KEY)  # what landing wraps the customers' keys with
        pipeline.run(load_settings("ci", conf_dir=conf, environ=local), landing, run_id="e2e-local")
    print(f"local run: {time.monotonic() - started:.0f} s")
    return result


def test_the_run_on_the_cluster_publishes_every_mart_to_s3_as_the_local_run_does(runs, cluster):
    cluster_run = runs["cluster"]
    assert cluster_run.returncode == 0, f"cluster run failed:\n{(cluster_run.stdout + cluster_run.stderr)[-6000:]}"
    layout = cluster.layout
    cluster_settings = load_settings("cluster", conf_dir=runs["conf"], environ=runs["environ"]["cluster"])
    local_settings = load_settings("ci", conf_dir=runs["conf"], environ=runs["environ"]["local"])
    assert cluster_settings.warehouse.startswith("s3a://") and cluster_settings.spark.master == layout.master_url
    assert cluster_settings.marts.enabled == local_settings.marts.enabled
    assert runs["marts"] in (EVERY_MART, local_settings.marts.enabled)
    differing = []
    for mart in local_settings.marts.enabled:
        published = _on_s3(cluster_settings, mart, runs["environ"]["cluster"])
        local = DeltaTable(pipeline.gold_path(local_settings, mart))
        expected = rows_of(local)
        if rows_of(published) != expected:
            differing.append(mart)
        assert published.schema().to_arrow() == local.schema().to_arrow(), mart
        # On S3 too, a protocol the BI readers (delta-rs, Power BI) open.
        check_reader_protocol(*delta_rs_location(cluster_settings, pipeline.gold_path(cluster_settings, mart),
                                                 runs["environ"]["cluster"]))
        assert expected, f"{mart}: the local run published no rows, so the comparison would prove nothing"
    assert differing == []

    # The tables are on the S3 server (its filesystem backend), nothing beside the cluster's driver.
    on_disk = layout.s3_data / layout.bucket / runs["root"].name / "warehouse"
    assert (on_disk / "gold" / "orders" / "_delta_log").is_dir()
    assert list((runs["root"] / "cwd-cluster").iterdir()) == []


def _on_s3(settings, mart: str, environ) -> DeltaTable:
    """The published mart read from the S3 server by delta-rs, with the cluster configuration's connection."""
    location, storage_options = delta_rs_location(settings, pipeline.gold_path(settings, mart), environ)
    return DeltaTable(location, storage_options=storage_options)


def rows_of(table: DeltaTable) -> list[tuple]:
    """The table's rows as sorted tuples of comparable values."""
    return sorted((tuple(_comparable(value) for value in row.values()) for row in table.to_pyarrow_table().to_pylist()), key=repr)


def _comparable(value):
    if isinstance(value, float):
        return "nan" if math.isnan(value) else round(value, 9)
    if isinstance(value, (list, tuple)):
        return tuple(_comparable(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, _comparable(item)) for key, item in value.items()))
    if isinstance(value, (Decimal, date, datetime, str, int, bool)) or value is None:
        return value
    return repr(value)


@pytest.mark.slow
def test_the_other_commands_and_the_sql_endpoint_work_on_the_cluster_warehouse(runs, cluster, tmp_path):
    """Issue #13, point 1: backfill, replay, rollback, export, erase, maintain, status and serve, each the
    operator's command in a process of its own, on the warehouse the cluster run left on S3."""
    if runs["marts"] is EVERY_MART:
        pytest.skip("the commands run once, on the three-mart warehouse")
    assert runs["cluster"].returncode == 0, runs["cluster"].stderr[-4000:]
    environ = runs["environ"]["cluster"]
    settings = load_settings("cluster", conf_dir=runs["conf"], environ=environ)
    local_settings = load_settings("ci", conf_dir=runs["conf"], environ=runs["environ"]["local"])
    local_orders = DeltaTable(pipeline.gold_path(local_settings, "orders")).to_pyarrow_table().to_pylist()
    tenant = local_orders[0]["tenant_id"]
    customer = next(row["customer_id"] for row in local_orders if row["customer_id"])
    tenant_orders = sum(1 for row in local_orders if row["tenant_id"] == tenant)
    orders_before = _on_s3(settings, "orders", environ)
    workdir = tmp_path / "cwd"
    workdir.mkdir()

    def command(*argv: str) -> str:
        process = subprocess.run([sys.executable, "-m", "jobs", *argv], env=environ, cwd=workdir,
                                 capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        assert process.returncode == 0, f"{argv}: {process.stderr[-6000:]}"
        return process.stdout

    command("backfill", "--start", "2026-01-06", "--end", "2026-01-06", "--marts", "orders", "--run-id", "backfill-on-s3")
    assert _on_s3(settings, "orders", environ).version() > orders_before.version()
    replayed = command("replay", "--as-of", "2026-01-06T12:00:00+00:00")
    assert "orders: s3a://" in replayed, replayed
    command("rollback", "orders", "--to", str(orders_before.version()))
    assert rows_of(_on_s3(settings, "orders", environ)) == rows_of(orders_before), "restored to the first publication"
    command("export", "orders", "--format", "parquet", "--tenant", tenant, "--out", str(tmp_path / "extracts"))
    extract = pq.read_table(next((tmp_path / "extracts").glob("*.parquet")))
    assert extract.num_rows == tenant_orders and set(extract.column("tenant_id").to_pylist()) == {tenant}
    command("erase", "--tenant", tenant, "--customer", customer)
    command("maintain")
    status = command("status")
    rollbacks = status.split("Rollbacks", 1)[1]
    assert re.search(rf"\|orders\s*\|.*\|{orders_before.version()}\s*\|", rollbacks), rollbacks
    erasures = re.search(r"Erasures: (\d+) physical, (\d+) pending", status)
    assert erasures and int(erasures[1]) + int(erasures[2]) == 1, status
    on_disk = cluster.layout.s3_data / cluster.layout.bucket / runs["root"].name / "warehouse"
    assert (on_disk / "replays").is_dir()

    served = _served(environ, tmp_path, tenant, "SELECT count(*), count(DISTINCT tenant_id) FROM marts.orders")
    assert served == [(tenant_orders, 1)]


def _served(environ, folder, tenant: str, sql: str) -> list[tuple]:
    """`python -m jobs serve` on the cluster configuration, one BI login for `tenant`, `sql` over HiveServer2."""
    from impala.dbapi import connect

    from jobs.bi.logins import hash_password, write_login

    credentials = folder / "bi_logins.yaml"
    password = secrets.token_urlsafe(16)
    write_login(credentials, hash_password("bi", tenant, password, iterations=20_000))
    workdir = folder / "cwd-serve"
    workdir.mkdir()
    with serving({**environ, "LAKEHOUSE_BI_CREDENTIALS": str(credentials)}, folder, cwd=workdir, timeout=300) as server:
        connection = connect(host="127.0.0.1", port=server["port"], auth_mechanism="PLAIN", user="bi",
                             password=password, timeout=120)
        try:
            cursor = connection.cursor()
            cursor.execute(sql)
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            connection.close()


@pytest.mark.slow
def test_the_landing_and_marts_dags_send_their_spark_work_to_the_cluster_and_publish_the_same_marts(
    runs, cluster, tmp_path
):
    """Issue #13, points 1 and 5: the project's own DAGs (`airflow dags test`, every task in one process,
    as on an Airflow worker) with `LAKEHOUSE_ENV=cluster` in the environment and nothing else changed:
    their Spark sessions are applications of the cluster's master, and the marts they publish on S3 are
    those of the local run of the same events."""
    from jobs.airflow_env import airflow_environ, dags_test, migrate_db

    if runs["marts"] is EVERY_MART:
        pytest.skip("the DAGs run once, with three marts")
    layout = cluster.layout
    warehouse = f"s3a://{layout.bucket}/{runs['root'].name}/dags-warehouse"
    environ = airflow_environ(tmp_path / "airflow_home", base={**runs["environ"]["cluster"], "LAKEHOUSE_WAREHOUSE": warehouse})
    migrate_db(environ)
    applications_before = _applications(layout)

    for dag_id, logical_date, conf in (
        ("lakehouse_landing", "2026-01-08T00:00:00+00:00", {"landing": str(runs["root"] / "landing")}),
        ("lakehouse_marts", "2026-01-08T00:30:00+00:00", {}),
    ):
        done = dags_test(dag_id, logical_date, conf, environ, timeout=RUN_TIMEOUT_S, fail_fast=True)
        assert done.returncode == 0, f"{dag_id}:\n{(done.stdout + done.stderr)[-6000:]}"

    # Each `dags test` process held one Spark session: one application of the cluster's master each.
    assert _applications(layout) == applications_before + 2
    settings = load_settings("cluster", conf_dir=runs["conf"], environ=environ)
    local_settings = load_settings("ci", conf_dir=runs["conf"], environ=runs["environ"]["local"])
    assert settings.warehouse == warehouse and settings.spark.master == layout.master_url
    for mart in local_settings.marts.enabled:
        local = rows_of(DeltaTable(pipeline.gold_path(local_settings, mart)))
        assert local and rows_of(_on_s3(settings, mart, environ)) == local, mart


def _applications(layout) -> int:
    """How many applications (Spark drivers) the master has seen: running or ended."""
    from scale_out.local_cluster import master_status

    status = master_status(layout)
    return len(status["activeapps"]) + len(status["completedapps"])
