"""`serve`: the Thrift server over the published marts, reached with a real HiveServer2 client (impyla)
over its port; one server per module, stopped by pid whatever the tests did (tests/bi/serving.py)."""

from __future__ import annotations

import os

import psutil
import pytest

from jobs.bi.logins import hash_password, write_login
from jobs.pipeline import gold_path
from tests.bi.serving import serving

PASSWORDS = {"shop_one_bi": "correct horse battery one", "shop_two_bi": "correct horse battery two"}
TENANT_OF = {"shop_one_bi": "t1", "shop_two_bi": "t2"}
# Column summed per mart to compare aggregates (a count is compared for every mart).
SUMMED = {"orders": "revenue_cents", "basket_daily": "net_cents", "cart_abandonment_daily": "carts",
          "product_sales_daily": "views", "funnel_daily": "sessions"}


@pytest.fixture(scope="module")
def endpoint(published, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    credentials = folder / "bi_logins.yaml"
    for user, password in PASSWORDS.items():
        # Fewer PBKDF2 rounds than the default keep a login quick on 2 busy cores; the check is the same.
        write_login(credentials, hash_password(user, TENANT_OF[user], password, iterations=20_000))
    environment = {**os.environ, "LAKEHOUSE_BI_CREDENTIALS": str(credentials), "LAKEHOUSE_ENV": "ci"}
    with serving(environment, folder, "--warehouse", published.settings.warehouse) as server:
        yield server


def _connect(endpoint, user, password=None):
    from impala.dbapi import connect

    return connect(host="127.0.0.1", port=endpoint["port"], auth_mechanism="PLAIN", user=user,
                   password=PASSWORDS.get(user) if password is None else password, timeout=120)


def _query(endpoint, user, sql, configuration=None):
    connection = _connect(endpoint, user)
    try:
        cursor = connection.cursor(configuration=configuration)
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        connection.close()


def test_the_marts_database_lists_the_published_marts_and_their_versions_only(endpoint, published):
    tables = {row[1] for row in _query(endpoint, "shop_one_bi", "SHOW TABLES IN marts")}
    databases = {row[0] for row in _query(endpoint, "shop_one_bi", "SHOW DATABASES")}

    assert tables == set(published.settings.marts.enabled) | {"mart_versions"}
    assert "staging" not in databases and not {"bronze", "silver", "replays"} & databases


@pytest.mark.parametrize("user", sorted(PASSWORDS))
def test_aggregates_over_the_endpoint_equal_the_published_tables_for_the_logins_tenant(spark, endpoint, published, user):
    from pyspark.sql import functions as F

    tenant = TENANT_OF[user]
    for mart, column in SUMMED.items():
        (served,) = _query(endpoint, user, f"SELECT count(*), sum({column}), count(DISTINCT tenant_id) FROM marts.{mart}")
        gold = spark.read.format("delta").load(gold_path(published.settings, mart)).filter(F.col("tenant_id") == tenant)
        expected = gold.agg(F.count(F.lit(1)), F.sum(column)).collect()[0]
        assert (served[0], served[1]) == (expected[0], expected[1]), mart
        assert served[2] == (1 if expected[0] else 0), mart


def test_mart_versions_says_which_publication_each_table_shows(endpoint, published):
    rows = _query(endpoint, "shop_two_bi", "SELECT table_name, table_version, run_id FROM marts.mart_versions WHERE is_current")
    assert {name: version for name, version, _run in rows} == published.latest_versions
    # The second run published orders alone (tests/bi/conftest.py); every other table shows the first's.
    assert {name: run for name, _version, run in rows} == {
        name: "second" if name == "orders" else "first" for name in published.latest_versions
    }


@pytest.mark.parametrize("user, password", [("shop_one_bi", "correct horse battery two"), ("nobody", "correct horse battery one"), ("shop_one_bi", "")])
def test_a_wrong_password_or_unknown_user_is_refused(endpoint, user, password):
    with pytest.raises(Exception, match="Error validating the login"):
        _connect(endpoint, user, password).cursor()


def test_one_tenant_asking_for_anothers_rows_gets_none(endpoint):
    (row,) = _query(endpoint, "shop_one_bi", "SELECT count(*) FROM marts.orders WHERE tenant_id = 't2'")
    assert row[0] == 0


@pytest.mark.parametrize(
    "sql, refusal",
    [
        ("SELECT * FROM delta.`{gold}/orders`", "TABLE_OR_VIEW_NOT_FOUND"),
        ("SELECT * FROM parquet.`{gold}/orders`", "TABLE_OR_VIEW_NOT_FOUND"),
        ("SET spark.sql.runSQLOnFiles=true", "settings cannot be changed"),
        ("SELECT * FROM internal_unfiltered.orders", "only the views of the marts database can be read"),
        ("SELECT * FROM internal_unfiltered.orders VERSION AS OF 0", "only the views of the marts database"),
        ("SELECT count(*) FROM marts.orders WHERE order_id IN (SELECT order_id FROM internal_unfiltered.orders)", "only the views of the marts database"),
        ("CREATE TABLE mine USING delta LOCATION '{gold}/orders'", "read-only"),
        ("CREATE TEMPORARY VIEW mine USING parquet OPTIONS (path '{gold}/orders')", "read-only"),
        ("CREATE OR REPLACE VIEW marts.orders AS SELECT * FROM internal_unfiltered.orders", "read-only"),
        ("DROP VIEW marts.orders", "read-only"),
        ("SELECT reflect('java.lang.System', 'getProperty', 'user.dir')", "does not call Java methods"),
        ("SELECT TRANSFORM(order_id) USING 'cat' AS (x) FROM marts.orders", "does not run scripts"),
    ],
)
def test_bypasses_as_one_tenant_are_refused(endpoint, published, sql, refusal):
    gold = published.settings.table_path("gold", "").rstrip("/")
    with pytest.raises(Exception, match=refusal):
        _query(endpoint, "shop_one_bi", sql.format(gold=gold))


def test_impersonating_another_login_is_refused(endpoint):
    with pytest.raises(Exception, match="Proxy user substitution is not allowed"):
        _query(endpoint, "shop_one_bi", "SELECT count(*) FROM marts.orders", configuration={"hive.server2.proxy.user": "shop_two_bi"})


def test_changing_settings_when_opening_a_session_is_refused(endpoint, published):
    gold = published.settings.table_path("gold", "orders")
    with pytest.raises(Exception, match="changed the setting spark.sql.runSQLOnFiles"):
        _query(endpoint, "shop_one_bi", f"SELECT count(*) FROM delta.`{gold}`",
               configuration={"set:hiveconf:spark.sql.runSQLOnFiles": "true"})


def test_the_endpoint_listens_on_localhost_only(endpoint):
    listening = [c for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port == endpoint["port"]]
    assert listening and {c.laddr.ip for c in listening} <= {"127.0.0.1", "::ffff:127.0.0.1"}


def test_the_endpoint_of_the_cluster_configuration_refuses_to_start_without_the_s3_keys(monkeypatch, tmp_path):
    from jobs.bi.server import start_server
    from jobs.config import ConfigError, load_settings

    for name in ("LAKEHOUSE_S3_ACCESS_KEY", "LAKEHOUSE_S3_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings("cluster", warehouse=str(tmp_path / "warehouse"), environ={})

    # Read before Spark starts, as get_spark does, and set on the endpoint's session (jobs/spark.py):
    # without them it could not read an s3a:// warehouse.
    with pytest.raises(ConfigError, match="LAKEHOUSE_S3_ACCESS_KEY is not set"):
        start_server(settings)
