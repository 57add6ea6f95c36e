"""Write-audit-publish end to end: a wrong projection (the injected bug) fails the real validation,
nothing of the run is published and the last good versions stay as they were; the log, major
versions beside old ones, rollback, status, and Data Docs readable offline."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs import pipeline, publications
from jobs.config import MartSettings, PublicationSettings
from jobs.failures import StepFailed
from jobs.marts import basket_daily, cart_abandonment_daily, orders
from jobs.tables import latest_version
from jobs.validation import ValidationFailed
from tests.histories import History, shop_history

# Every mart a reconciliation check reads.
MARTS = ("orders", "basket_daily", "cart_abandonment_daily", "marketing_kpis_daily")
SUPPORT_DAYS = 30


def wap_history() -> History:
    """The shop history plus carts: k1 added to twice, k2 once, and t2's k1 (cart ids repeat across tenants)."""
    h = shop_history()
    for tenant, cart, product, at in [("t1", "k1", "p1", "2026-01-05T08:00:00Z"), ("t1", "k1", "p2", "2026-01-05T08:05:00Z"),
                                      ("t1", "k2", "p2", "2026-01-05T11:00:00Z"), ("t2", "k1", "p9", "2026-01-05T16:00:00Z")]:
        h.add("CartItemAdded", f"cart-{cart}", {"cart_id": cart, "session_id": "s1", "customer_id": None, "product_id": product,
              "category": "misc", "quantity": 1, "unit_price_cents": 1000, "currency": "EUR" if tenant == "t1" else "GBP"},
              at, tenant_id=tenant, schema_version=2)
    return h


def late_order() -> History:
    """A later valid order o8 (t1, EUR), so a second run has something new to publish."""
    h = History()
    h.add("OrderCreated", "order-o8", {"order_id": "o8", "cart_id": None, "customer_id": "c8", "session_id": None,
          "items": [{"product_id": "p1", "category": "misc", "quantity": 1, "unit_price_cents": 700}],
          "total_cents": 700, "currency": "EUR", "order_source": "phone"}, "2026-01-07T10:00:00Z", schema_version=3, event_id="late-1")
    h.add("OrderConfirmed", "order-o8", {"order_id": "o8"}, "2026-01-07T10:01:00Z", event_id="late-2")
    return h


def _settings(settings, folder, marts):
    return dataclasses.replace(
        settings,
        warehouse=str(folder / "warehouse"),
        marts=MartSettings(enabled=marts),
        publication=PublicationSettings(major_version_support_days=SUPPORT_DAYS),
    )


def _first_run(settings, folder, marts=MARTS):
    """A published warehouse, with a later order waiting in the landing folder. A run on this
    machine's shared 2 cores takes minutes, so tests of versions and rollback publish orders only."""
    run_settings = _settings(settings, folder, marts)
    wap_history().write(folder / "landing" / "day1")
    pipeline.run(run_settings, folder / "landing", run_id="first")
    late_order().write(folder / "landing" / "day2")
    return run_settings, folder / "landing"


@pytest.fixture(scope="module")
def published(settings, tmp_path_factory):
    """One good run, its late order landed for the next run (read only)."""
    return _first_run(settings, tmp_path_factory.mktemp("wap"))


def _log(spark, run_settings):
    return publications.read_log(spark, run_settings.warehouse)


def _gold_state(spark, run_settings):
    """Per mart: the published table's version and its rows."""
    state = {}
    for mart in MARTS:
        path = pipeline.gold_path(run_settings, mart)
        state[mart] = (latest_version(spark, path), sorted(map(tuple, spark.read.format("delta").load(path).collect())))
    return state


# --- The gate ---------------------------------------------------------------------------------

def _without(correct, condition):
    return lambda sources, context: correct(sources, context).filter(~condition)


def test_wrong_projections_fail_reconciliation_naming_each_check_and_nothing_of_the_run_is_published(
    spark, published, monkeypatch
):
    """Three injected bugs in one run (each run costs minutes here); every mart's own suite still
    passes, so only the reconciliation catches them, each by its own check."""
    run_settings, _landing = published
    before = _gold_state(spark, run_settings)
    # orders loses the valid order o2; basket_daily the phone orders' group (o4); the carts t2's cart.
    monkeypatch.setattr(orders, "build", _without(orders.build, F.col("order_id") == "o2"))
    monkeypatch.setattr(basket_daily, "build", _without(basket_daily.build, F.col("order_source") == "phone"))
    monkeypatch.setattr(cart_abandonment_daily, "build", _without(cart_abandonment_daily.build, F.col("tenant_id") == "t2"))

    pipeline.build(run_settings, "wrong", full=True)  # in full: a restatement rebuilds only what is new
    with pytest.raises(ValidationFailed) as failure:
        pipeline.validate(run_settings, "wrong")

    lines = str(failure.value).splitlines()
    assert lines[0] == "validation failed for reconciliation:"
    failed = {line.split("(")[1].split(":")[0]: line for line in lines[1:]}
    assert set(failed) == {"orders_match_silver_events", "basket_daily_matches_orders", "cart_abandonment_counts_every_cart_once"}
    # Expected and observed, worked by hand: t1 has 4 valid orders in EUR (o1, o2, o4, o5), 3 once o2 is
    # lost; basket_daily then lacks o4 of those 3; t2 has one cart.
    assert "tenant_id='t1', currency='EUR', measure='valid_orders', expected=4, observed=3" in failed["orders_match_silver_events"]
    assert "tenant_id='t1', currency=null, measure='valid_orders', expected=3, observed=2" in failed["basket_daily_matches_orders"]
    assert "tenant_id='t2', currency=null, measure='carts', expected=1, observed=0" in failed["cart_abandonment_counts_every_cart_once"]
    with pytest.raises(pipeline.PublicationRefused, match="no passed validation"):
        pipeline.publish(run_settings, "wrong")
    assert _gold_state(spark, run_settings) == before
    assert {row["run_id"] for row in _log(spark, run_settings).collect()} == {"first"}
    page = (Path(run_settings.data_docs_dir) / "runs" / "wrong" / "index.html").read_text(encoding="utf-8")
    assert "reconciliation: <span class=\"verdict-failed\">FAILED</span>" in page


def test_a_good_run_passes_every_reconciliation_check(spark, published):
    run_settings, _landing = published
    results = {row["mart"]: row["validation_result"] for row in _log(spark, run_settings).collect()}

    assert set(results) == set(MARTS)
    assert all("\nreconciliation: passed" in result for result in results.values()), results


# --- The publication log ----------------------------------------------------------------------

def test_every_publication_is_logged_with_all_it_needs_to_be_traced(spark, published):
    run_settings, _landing = published
    rows = {row["mart"]: row for row in _log(spark, run_settings).collect()}

    order_log = rows["orders"]
    table = publications.published_table(run_settings, "orders", 1)
    assert (order_log["contract_version"], order_log["run_id"], order_log["action"]) == ("1.0", "first", "publish")
    assert (order_log["table_path"], order_log["sql_name"]) == (table.path, "gold.orders")
    assert order_log["table_version"] == latest_version(spark, table.path)
    assert order_log["row_count"] == spark.read.format("delta").load(table.path).count() == 7
    assert order_log["event_watermark"] == datetime(2026, 1, 6, 12)  # latest occurred_at (session-local time is UTC)
    assert order_log["validation_result"].startswith("orders: passed")
    assert abs(order_log["published_at"] - datetime.now()) < timedelta(hours=1)
    assert order_log["supported_until"] is None and order_log["restored_version"] is None


def test_a_runs_publications_are_one_commit_of_the_log(spark, published):
    run_settings, _landing = published
    log_path = publications.PUBLICATIONS.path(run_settings.warehouse)

    history = spark.sql(f"DESCRIBE HISTORY delta.`{log_path}`").orderBy("version").collect()

    assert [row["operation"] for row in history] == ["CREATE TABLE", "MERGE"]
    assert sorted(row["mart"] for row in _log(spark, run_settings).collect()) == sorted(MARTS)


def test_a_mart_that_fails_to_publish_leaves_those_before_it_logged_and_a_retry_publishes_the_rest(
    spark, settings, tmp_path
):
    run_settings = _settings(settings, tmp_path, ("orders", "basket_daily"))
    wap_history().write(tmp_path / "landing" / "day1")
    pipeline.land(run_settings, tmp_path / "landing", "r1")
    pipeline.build(run_settings, "r1")
    pipeline.validate(run_settings, "r1")
    # A plain file where basket_daily's table goes: its write fails, after orders was published.
    blocked = Path(pipeline.gold_path(run_settings, "basket_daily"))
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("not a table")

    with pytest.raises(StepFailed, match="^publish of mart basket_daily failed: "):
        pipeline.publish(run_settings, "r1")

    logged = [(row["mart"], row["table_version"]) for row in _log(spark, run_settings).collect()]
    assert logged == [("orders", 0)]
    assert latest_version(spark, pipeline.gold_path(run_settings, "orders")) == 0

    blocked.unlink()
    retried = pipeline.publish(run_settings, "r1")

    assert [publication.mart for publication in retried] == ["basket_daily"]
    logged = sorted((row["mart"], row["table_version"]) for row in _log(spark, run_settings).collect())
    assert logged == [("basket_daily", 0), ("orders", 0)]
    assert latest_version(spark, pipeline.gold_path(run_settings, "orders")) == 0


def test_a_log_written_before_major_versions_gets_the_new_columns(spark, tmp_path):
    from jobs.tables import quoted_path

    old = tmp_path / "meta" / "publications"
    spark.sql(f"CREATE TABLE {quoted_path(str(old))} (mart STRING, contract_version STRING) USING DELTA")

    publications.ensure_log(spark, str(tmp_path))

    assert {"sql_name", "supported_until", "restored_version"} <= set(spark.read.format("delta").load(str(old)).columns)


# --- Rollback and major versions --------------------------------------------------------------

MAJOR_2 = dataclasses.replace(orders.CONTRACT, version="2.0")


@pytest.fixture(scope="module")
def rolled_back(spark, settings, tmp_path_factory):
    """Two publications of orders (7 rows, then 8), orders rolled back to the first, then a third run
    with a breaking change of the orders contract (version 2.0, same columns for the test), published
    beside the old table: one warehouse for both stories, each run of it costs a minute here."""
    run_settings, landing = _first_run(settings, tmp_path_factory.mktemp("rollback"), marts=("orders",))
    path = pipeline.gold_path(run_settings, "orders")
    first_version = latest_version(spark, path)
    first_rows = sorted(map(tuple, spark.read.format("delta").load(path).collect()))
    pipeline.run(run_settings, landing, run_id="second")
    entry = publications.rollback(run_settings, "orders", first_version)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(orders, "CONTRACT", MAJOR_2)
        pipeline.run(run_settings, landing, run_id="third")
    return run_settings, first_version, first_rows, entry


def test_a_new_major_version_is_published_beside_the_old_table_which_gets_an_end_date(spark, rolled_back, monkeypatch):
    run_settings, _first_version, _rows, entry = rolled_back
    old = publications.published_table(run_settings, "orders", 1)
    monkeypatch.setattr(orders, "CONTRACT", MAJOR_2)

    new = publications.published_table(run_settings, "orders", 2)
    assert (new.path, new.sql_name) == (f"{run_settings.warehouse}/gold/orders_v2", "gold.orders_v2")
    assert spark.read.format("delta").load(new.path).count() == 8
    # The old table as the rollback left it: not written by the new major's run.
    assert latest_version(spark, old.path) == entry.table_version
    assert spark.read.format("delta").load(old.path).count() == 7
    log = _log(spark, run_settings).filter(F.col("mart") == "orders")
    (ended,) = log.filter(F.col("action") == "end_of_support").collect()
    assert (ended["table_path"], ended["contract_version"]) == (old.path, "1.0")
    expected_end = datetime.now() + timedelta(days=SUPPORT_DAYS)
    assert abs(ended["supported_until"] - expected_end) < timedelta(hours=1)
    (third,) = log.filter(F.col("run_id") == "third").filter(F.col("action") == "publish").collect()
    assert (third["contract_version"], third["table_path"]) == ("2.0", new.path)
    # Asked again (the next publication of major 2), the old table is not ended twice.
    assert publications.end_older_majors(spark, run_settings, {"orders": new}, print) == []
    assert _log(spark, run_settings).filter(F.col("action") == "end_of_support").count() == 1
    # Publishing major 1 again is refused: its table is out of support.
    publications.check_major_versions(spark, run_settings, {"orders": 2, "basket_daily": 1})
    with pytest.raises(publications.MajorVersionRefused, match=r"orders: contract major version 1 is older than the published major 2 \(gold.orders_v2\)"):
        publications.check_major_versions(spark, run_settings, {"basket_daily": 1, "orders": 1})
    # BI readers see both names until the old one's support ends, then only the new one.
    from jobs.bi.catalog import published_tables

    def exposed(now):
        return {table.sql_name: table.contract_version for table in published_tables(spark, run_settings, now)}

    assert exposed(None) == {"orders": "1.0", "orders_v2": "2.0"}
    assert exposed(ended["supported_until"].replace(tzinfo=timezone.utc) + timedelta(seconds=1)) == {"orders_v2": "2.0"}


def test_rollback_restores_the_rows_of_an_earlier_publication_as_a_new_version(spark, rolled_back):
    run_settings, first_version, first_rows, entry = rolled_back
    path = pipeline.gold_path(run_settings, "orders")

    assert sorted(map(tuple, spark.read.format("delta").load(path).collect())) == first_rows
    assert entry.table_version == latest_version(spark, path) > first_version
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").collect()[0]
    assert history["operation"] == "RESTORE"


def test_rollback_is_logged_with_the_version_it_restored(spark, rolled_back):
    run_settings, first_version, _rows, entry = rolled_back
    (row,) = _log(spark, run_settings).filter(F.col("action") == "rollback").collect()

    assert (row["mart"], row["table_version"], row["restored_version"]) == ("orders", entry.table_version, first_version)
    assert (row["run_id"], row["row_count"], row["contract_version"]) == ("first", 7, "1.0")


def test_rollback_to_a_version_that_was_never_published_is_refused(spark, rolled_back):
    from jobs.__main__ import main

    run_settings, _version, _rows, entry = rolled_back
    log_rows = _log(spark, run_settings).count()

    with pytest.raises(publications.RollbackRefused, match=r"gold\.orders .* version 99 is not a logged publication"):
        publications.rollback(run_settings, "orders", 99)
    code = main(["rollback", "orders", "--to", "99", "--env", "ci", "--warehouse", run_settings.warehouse])

    assert code == 1
    assert _log(spark, run_settings).count() == log_rows


def test_status_shows_publications_rollbacks_and_end_dates(rolled_back, capsys):
    from jobs.status import print_status

    run_settings, first_version, _rows, entry = rolled_back
    print_status(run_settings)

    out = capsys.readouterr().out
    assert "gold.orders" in out and "rollback" in out
    assert re.search(rf"orders\s*\|\s*gold\.orders\s*\|\s*{first_version}\s*\|\s*{entry.table_version}", out), out
    # The table the new major superseded, with its end of support; the new one, published by run third.
    published = out.split("Rollbacks", 1)[0]
    assert re.search(r"\|orders\s*\|gold\.orders\s*\|.*\|end_of_support\s*\|.*\|\d{4}-\d\d-\d\d", published), published
    assert re.search(r"\|orders\s*\|gold\.orders_v2\s*\|.*\|publish\s*\|", published), published


# --- Data Docs ----------------------------------------------------------------------------------

def test_data_docs_index_links_each_run_page_with_every_suite_and_no_network_reference(published):
    run_settings, _landing = published
    docs = run_settings.data_docs_dir

    index = (Path(docs) / "index.html").read_text(encoding="utf-8")
    page = (Path(docs) / "runs" / "first" / "index.html").read_text(encoding="utf-8")
    assert 'href="runs/first/index.html"' in index
    assert all(f"{suite}_v1" in page for suite in MARTS) and "reconciliation" in page
    assert "orders_match_silver_events" in page
    for html in Path(docs).rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        assert not re.search(r"<(script|link)\b[^>]*(src|href)\s*=\s*[\"']?(https?:)?//", text, re.IGNORECASE), html
        assert "<script" not in text, html
