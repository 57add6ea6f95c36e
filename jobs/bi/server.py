"""`python -m jobs serve`: a Spark Thrift Server (HiveServer2 protocol) over the published marts.

How it stays safe and current:
- Logins: hive.server2.authentication=CUSTOM with `lakehouse.bi.TenantPasswords`, which checks each
  user's password against the PBKDF2 hash in the BI logins file (jobs/bi/logins.py). The Thrift
  server's default, NONE, accepts any password; impersonation (hive.server2.proxy.user) is off.
- Tenants: the `marts` database holds only views. Each reads the unfiltered gold table (registered
  as an external Delta table in `internal_unfiltered`) semi-joined with `meta/bi_logins` on the
  session's `current_user()`, so a login sees its own tenant's rows and nothing else.
- Read-only: `lakehouse.bi.ReadOnlyGuard` (a Spark session extension) refuses, in every session but
  the server's own, any command other than SHOW/DESCRIBE/USE, SET of a value, script transforms,
  reflection calls and any read of `internal_unfiltered` other than through a view;
  spark.sql.runSQLOnFiles=false refuses queries by path (delta.`/path`).
- Current: a table registered on a gold path reads that path's latest Delta version, which is always
  the last validated publication (gold is written by publish only). Every `serve.refresh_seconds`
  the server reads meta/publications again and adds marts (or major versions) published since.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from jobs.bi.catalog import GOLD_NAME_PATTERN, PublishedTable, published_tables
from jobs.bi.jvm import compiled_classes
from jobs.bi.logins import Login, read_logins
from jobs.config import Settings
from jobs.spark import hadoop_secrets, set_hadoop_secrets, spark_conf
from jobs.tables import PUBLICATIONS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("jobs")
Progress = Callable[[str], None]

MARTS_DATABASE = "marts"
INTERNAL_DATABASE = "internal_unfiltered"  # also named in jvm/lakehouse/bi/ReadOnlyGuard.java
LOGINS_TABLE = "bi_logins"  # <warehouse>/meta/bi_logins: user name -> tenant (no secrets)


@dataclass
class RunningServer:
    spark: "SparkSession"
    thrift: object  # the JVM HiveThriftServer2
    settings: Settings
    exposed: dict[str, str] = field(default_factory=dict)  # sql name -> contract version

    def refresh(self, progress: Progress = log.info) -> list[str]:
        return expose_published(self.spark, self.settings, self.exposed, progress)

    def stop(self) -> None:
        try:
            self.thrift.stop()
        finally:
            self.spark.stop()


def server_spark_conf(settings: Settings) -> dict[str, str]:
    """The project's Spark settings plus the endpoint's: the guard, the port, the login check."""
    conf = spark_conf(settings)
    conf.update(
        {
            "spark.app.name": f"{settings.spark.app_name}-bi-endpoint",
            "spark.driver.memory": settings.serve.driver_memory,
            "spark.driver.extraClassPath": str(compiled_classes()),
            "spark.sql.extensions": conf["spark.sql.extensions"] + ",lakehouse.bi.ReadOnlyGuard",
            "spark.sql.runSQLOnFiles": "false",
            # One Spark session per connection, so one user's session state never serves another.
            "spark.sql.hive.thriftServer.singleSession": "false",
            "spark.hadoop.hive.server2.thrift.bind.host": settings.serve.host,
            "spark.hadoop.hive.server2.thrift.port": str(settings.serve.port),
            "spark.hadoop.hive.server2.transport.mode": "binary",
            "spark.hadoop.hive.server2.authentication": "CUSTOM",
            "spark.hadoop.hive.server2.custom.authentication.class": "lakehouse.bi.TenantPasswords",
            "spark.hadoop.hive.server2.allow.user.substitution": "false",
            "spark.hadoop.hive.server2.enable.doAs": "false",
        }
    )
    return conf


def start_server(settings: Settings, progress: Progress = log.info) -> RunningServer:
    """Start Spark, the views and the Thrift server in this process; return once it listens."""
    from pyspark.sql import SparkSession

    secrets = hadoop_secrets(settings)  # e.g. the S3 keys: a missing variable stops it before Spark starts
    logins = read_logins_for(settings)
    builder = SparkSession.builder
    for key, value in server_spark_conf(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    set_hadoop_secrets(spark, secrets)
    jvm = spark._jvm
    # Hive's CUSTOM provider reads its class name from a fresh HiveConf, which sees system properties.
    jvm.java.lang.System.setProperty("hive.server2.custom.authentication.class", "lakehouse.bi.TenantPasswords")
    for login in logins.values():
        jvm.lakehouse.bi.TenantPasswords.register(login.user, login.salt_hex, login.iterations, login.hash_hex)
    jvm.lakehouse.bi.TenantPasswords.seal()
    jvm.lakehouse.bi.ReadOnlyGuard.trust(spark._jsparkSession)

    spark.sql(f"CREATE DATABASE IF NOT EXISTS {MARTS_DATABASE} COMMENT 'Published marts, filtered to the login''s tenant'")
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {INTERNAL_DATABASE} COMMENT 'Unfiltered tables behind the marts views; not readable by BI logins'")
    _write_logins_table(spark, settings, logins)
    server = RunningServer(spark, None, settings)
    server.refresh(progress)
    server.thrift = jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2.startWithContext(
        spark._jsparkSession.sqlContext()
    )
    progress(f"serving {len(server.exposed)} published table(s) in database {MARTS_DATABASE} on {settings.serve.host}:{settings.serve.port}")
    return server


def serve(settings: Settings, progress: Progress = log.info) -> None:
    """Run until SIGTERM or Ctrl-C, exposing new publications every `serve.refresh_seconds`."""
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    server = start_server(settings, progress)
    print(f"ready: jdbc:hive2://{settings.serve.host}:{settings.serve.port}/{MARTS_DATABASE}", flush=True)
    try:
        while not stopping.wait(settings.serve.refresh_seconds):
            try:
                server.refresh(progress)
            except Exception as error:  # noqa: BLE001 - a failed refresh keeps serving what it had
                log.warning("could not read new publications (still serving the tables exposed before): %s", error)
    finally:
        progress("stopping the SQL endpoint")
        server.stop()


def read_logins_for(settings: Settings) -> dict[str, Login]:
    return read_logins(Path(settings.serve.credentials_file))


def expose_published(spark: "SparkSession", settings: Settings, exposed: dict[str, str], progress: Progress = log.info) -> list[str]:
    """Register every published table not exposed yet (or whose contract version changed), and
    withdraw those no longer published (an older major version past its end of support); return
    the names added or withdrawn."""
    changed = []
    tables = published_tables(spark, settings)
    for sql_name in sorted(set(exposed) - {table.sql_name for table in tables}):
        spark.sql(f"DROP VIEW IF EXISTS {MARTS_DATABASE}.`{sql_name}`")
        spark.sql(f"DROP TABLE IF EXISTS {INTERNAL_DATABASE}.`{sql_name}`")  # external: the data stays
        del exposed[sql_name]
        changed.append(sql_name)
        progress(f"withdrew {MARTS_DATABASE}.{sql_name}: its support has ended")
    for table in tables:
        if exposed.get(table.sql_name) == table.contract_version:
            continue
        from delta.tables import DeltaTable

        if not DeltaTable.isDeltaTable(spark, table.table_path):
            log.warning("not exposing %s: the log names it but %s holds no Delta table", table.sql_name, table.table_path)
            continue
        if "tenant_id" not in spark.read.format("delta").load(table.table_path).columns:
            log.warning("not exposing %s: it has no tenant_id column to filter by", table.sql_name)
            continue
        _expose(spark, table)
        exposed[table.sql_name] = table.contract_version
        changed.append(table.sql_name)
        progress(f"exposing {MARTS_DATABASE}.{table.sql_name} (contract {table.contract_version}, {table.table_path})")
    if tables:
        _expose_versions(spark, settings)
    return changed


def _expose(spark: "SparkSession", table: PublishedTable) -> None:
    internal = f"{INTERNAL_DATABASE}.`{table.sql_name}`"
    location = table.table_path.replace("'", "\\'")
    spark.sql(f"DROP TABLE IF EXISTS {internal}")  # external: drops the name, never the data
    spark.sql(f"CREATE TABLE {internal} USING DELTA LOCATION '{location}'")
    spark.sql(
        f"CREATE OR REPLACE VIEW {MARTS_DATABASE}.`{table.sql_name}` "
        f"COMMENT 'mart {table.mart}, contract {table.contract_version}: your tenant''s rows' AS "
        f"SELECT m.* FROM {internal} m LEFT SEMI JOIN {INTERNAL_DATABASE}.{LOGINS_TABLE} l "
        "ON m.tenant_id = l.tenant_id AND l.user_name = current_user()"
    )


def _expose_versions(spark: "SparkSession", settings: Settings) -> None:
    """`marts.mart_versions`: every publication of the exposed tables, the current one flagged."""
    log_path = PUBLICATIONS.path(settings.warehouse).replace("'", "\\'")
    spark.sql(f"CREATE TABLE IF NOT EXISTS {INTERNAL_DATABASE}.publications USING DELTA LOCATION '{log_path}'")
    # Only what says which version a table shows: no row counts or validation details (other tenants' data).
    spark.sql(
        f"CREATE OR REPLACE VIEW {MARTS_DATABASE}.mart_versions "
        "COMMENT 'Which version of each mart the tables show: one row per publication' AS "
        "SELECT table_name, mart, contract_version, table_version, run_id, event_watermark, published_at, action, "
        "row_number() OVER (PARTITION BY table_name ORDER BY published_at DESC, table_version DESC) = 1 AS is_current "
        f"FROM (SELECT *, regexp_extract(table_path, '{GOLD_NAME_PATTERN}', 1) AS table_name FROM {INTERNAL_DATABASE}.publications) "
        "WHERE table_name != ''"
    )


def _write_logins_table(spark: "SparkSession", settings: Settings, logins: dict[str, Login]) -> None:
    path = settings.table_path("meta", LOGINS_TABLE)
    rows = [(login.user, login.tenant_id) for login in logins.values()]
    frame = spark.createDataFrame(rows, "user_name string, tenant_id string")
    frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)
    spark.sql(f"DROP TABLE IF EXISTS {INTERNAL_DATABASE}.{LOGINS_TABLE}")
    spark.sql(f"CREATE TABLE {INTERNAL_DATABASE}.{LOGINS_TABLE} USING DELTA LOCATION '{path}'")


def wait_until_listening(host: str, port: int, timeout: float) -> None:
    """For callers that started the server in another process."""
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s")
            time.sleep(0.5)
