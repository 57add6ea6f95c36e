"""Marts are validated with Great Expectations before publication; failures say what and where."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from expectations.common import count_rows_meeting
from jobs.marts.basket_daily import CONTRACT as BASKET_DAILY
from jobs.marts.contract import MartContract
from jobs.marts.orders import CONTRACT as ORDERS
from jobs import data_docs
from jobs.validation import ValidationFailed, raise_for_failures, validate_mart


def an_order(**changes: Any) -> dict[str, Any]:
    order = {
        "tenant_id": "t1",
        "order_id": "o1",
        "customer_id": "c1",
        "cart_id": "k1",
        "session_id": "s1",
        "created_at": dt.datetime(2024, 3, 1, 9, 30),
        "order_date": dt.date(2024, 3, 1),
        "order_source": "web",
        "status": "paid",
        "is_valid": True,
        "is_first_valid_order": True,
        "currency": "EUR",
        "gross_cents": 10_000,
        "discount_cents": 1_000,
        "net_cents": 9_000,
        "refunded_cents": 0,
        "revenue_cents": 9_000,
        "items_count": 2,
        "units": 3,
        "channel_source": "google",
        "channel_medium": "cpc",
        "channel_campaign": "spring",
    }
    return {**order, **changes}


def some_orders() -> list[dict[str, Any]]:
    """A valid order, a cancelled one without session or customer, a partly refunded one."""
    return [
        an_order(),
        an_order(
            order_id="o2",
            customer_id=None,
            cart_id=None,
            session_id=None,
            order_source="unknown",
            status="cancelled",
            is_valid=False,
            is_first_valid_order=False,
            revenue_cents=0,
            channel_source="unknown",
            channel_medium="unknown",
            channel_campaign=None,
        ),
        an_order(order_id="o3", is_first_valid_order=False, refunded_cents=2_500, revenue_cents=6_500),
    ]


def a_basket_day(**changes: Any) -> dict[str, Any]:
    day = {
        "tenant_id": "t1",
        "order_date": dt.date(2024, 3, 1),
        "channel_source": "google",
        "order_source": "web",
        "currency": "EUR",
        "valid_orders": 3,
        "revenue_cents": 20_000,
        "net_cents": 25_000,
        "discount_cents": 500,
        "avg_basket_cents": 25_000 / 3,
        "avg_units_per_order": 1.5,
        "amounts_in_other_currencies": 0,
    }
    return {**day, **changes}


def mart_frame(spark: SparkSession, contract: MartContract, rows: list[dict[str, Any]]) -> DataFrame:
    schema = ", ".join(f"`{name}` {sql_type}" for name, sql_type in contract.columns)
    values = [tuple(row[name] for name in contract.column_names) for row in rows]
    return contract.conform(spark.createDataFrame(values, schema))


def failed_expectations(frame: DataFrame, contract: MartContract) -> list[str]:
    result = validate_mart(frame, contract, run_id="test")
    assert not result.success
    return [f"{failure.expectation} -> {failure.observed}" for failure in result.failed]


def test_a_correct_orders_frame_passes(spark: SparkSession) -> None:
    result = validate_mart(mart_frame(spark, ORDERS, some_orders()), ORDERS, run_id="test")

    assert result.success, result.summary()
    assert result.failed == ()
    # columns, key, 16 non-nullable columns, and the mart's own 11
    assert result.evaluated == 1 + 1 + 16 + 11


def test_a_correct_basket_daily_frame_passes_with_a_null_channel_source_in_its_key(spark: SparkSession) -> None:
    days = [
        a_basket_day(),
        a_basket_day(channel_source=None, valid_orders=1, net_cents=999, avg_basket_cents=999.0),
    ]

    result = validate_mart(mart_frame(spark, BASKET_DAILY, days), BASKET_DAILY, run_id="test")

    assert result.success, result.summary()


def test_a_duplicate_key_fails_naming_the_key_expectation(spark: SparkSession) -> None:
    rows = [*some_orders(), an_order(is_first_valid_order=False)]

    (failure,) = failed_expectations(mart_frame(spark, ORDERS, rows), ORDERS)

    assert failure.startswith("ExpectCompoundColumnsToBeUnique(column_list=['tenant_id', 'order_id'])")
    assert "2 of 4 rows unexpected, e.g. (tenant_id='t1', order_id='o1')" in failure


def test_a_null_in_a_non_nullable_column_fails(spark: SparkSession) -> None:
    rows = [*some_orders(), an_order(order_id="o4", is_first_valid_order=False, currency=None)]

    (failure,) = failed_expectations(mart_frame(spark, ORDERS, rows), ORDERS)

    assert failure == "ExpectColumnValuesToNotBeNull(column='currency') -> 1 of 4 rows unexpected, e.g. null"


def test_a_status_outside_the_spec_fails_naming_the_column_and_quoting_the_value(spark: SparkSession) -> None:
    rows = [*some_orders(), an_order(order_id="o4", is_first_valid_order=False, status="lost")]

    (failure,) = failed_expectations(mart_frame(spark, ORDERS, rows), ORDERS)

    assert failure.startswith("ExpectColumnValuesToBeInSet(column='status', value_set=['created',")
    assert failure.endswith("-> 1 of 4 rows unexpected, e.g. 'lost'")


def test_net_cents_other_than_gross_minus_discount_fails_quoting_the_row(spark: SparkSession) -> None:
    wrong_net = an_order(order_id="o4", is_first_valid_order=False, net_cents=9_500, revenue_cents=9_500)
    rows = [*some_orders(), wrong_net]

    (failure,) = failed_expectations(mart_frame(spark, ORDERS, rows), ORDERS)

    assert failure == (
        "ExpectRowsToSatisfy(net_cents = gross_cents - discount_cents) -> 1 row, e.g. "
        "(tenant_id='t1', order_id='o4', gross_cents=10000, discount_cents=1000, net_cents=9500)"
    )


def test_an_average_basket_other_than_net_per_order_fails(spark: SparkSession) -> None:
    days = [a_basket_day(avg_basket_cents=8_333.0)]

    (failure,) = failed_expectations(mart_frame(spark, BASKET_DAILY, days), BASKET_DAILY)

    assert failure.startswith("ExpectRowsToSatisfy(abs(avg_basket_cents - try_divide(net_cents, valid_orders))")
    assert failure.endswith("net_cents=25000, valid_orders=3, avg_basket_cents=8333.0)")


def test_an_extra_column_fails_naming_it(spark: SparkSession) -> None:
    frame = mart_frame(spark, ORDERS, some_orders()).withColumn("note", F.lit("x"))

    (failure,) = failed_expectations(frame, ORDERS)

    assert failure.startswith("ExpectTableColumnsToMatchOrderedList(column_list=['tenant_id', 'order_id',")
    assert failure.endswith("-> missing [], unexpected ['note']")


def test_a_missing_column_fails_naming_it(spark: SparkSession) -> None:
    frame = mart_frame(spark, ORDERS, some_orders()).drop("units")

    failures = failed_expectations(frame, ORDERS)

    assert any(failure.endswith("-> missing ['units'], unexpected []") for failure in failures), failures


def test_a_rule_naming_a_missing_column_fails_alone_and_the_other_rules_are_still_checked(spark: SparkSession) -> None:
    wrong_net = an_order(order_id="o4", is_first_valid_order=False, net_cents=9_500, revenue_cents=9_500)
    frame = mart_frame(spark, ORDERS, [*some_orders(), wrong_net]).drop("refunded_cents")

    failures = failed_expectations(frame, ORDERS)

    net, revenue = [failure for failure in failures if failure.startswith("ExpectRowsToSatisfy(")]
    assert net == (
        "ExpectRowsToSatisfy(net_cents = gross_cents - discount_cents) -> 1 row, e.g. "
        "(tenant_id='t1', order_id='o4', gross_cents=10000, discount_cents=1000, net_cents=9500)"
    )
    assert revenue.startswith(
        "ExpectRowsToSatisfy(revenue_cents = IF(is_valid, net_cents - refunded_cents, 0)) -> "
        "[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column, variable, or function parameter with name `refunded_cents` "
        "cannot be resolved."
    )


def test_the_rules_of_a_suite_are_counted_in_one_spark_job(spark: SparkSession) -> None:
    frame = spark.createDataFrame([(1, 2), (3, 1), (5, 5)], "a int, b int")
    tracker = spark.sparkContext.statusTracker()
    spark.sparkContext.setJobGroup("rules-in-one-job", "count_rows_meeting")
    try:
        counted = count_rows_meeting(frame, ["a > b", "a = b", "a + b > 5"])
    finally:
        spark.sparkContext.setJobGroup("", "")

    assert counted == {"counts": {"a > b": 1, "a = b": 1, "a + b > 5": 1}, "errors": {}}
    assert len(tracker.getJobIdsForGroup("rules-in-one-job")) == 1


def test_a_rule_that_raises_as_it_runs_is_reported_alone(spark: SparkSession) -> None:
    frame = spark.createDataFrame([(1, 2), (3, 3)], "a int, b int")

    counted = count_rows_meeting(frame, ["a < b", "a / (b - a) > 0"])

    assert counted["counts"] == {"a < b": 1}
    assert list(counted["errors"]) == ["a / (b - a) > 0"]
    assert counted["errors"]["a / (b - a) > 0"].startswith("[DIVIDE_BY_ZERO] Division by zero.")


def test_validation_failed_names_mart_expectation_and_observed_value(spark: SparkSession) -> None:
    passed = validate_mart(mart_frame(spark, BASKET_DAILY, [a_basket_day()]), BASKET_DAILY, run_id="test")
    rows = [*some_orders(), an_order(order_id="o4", is_first_valid_order=False, order_source="fax")]
    failed = validate_mart(mart_frame(spark, ORDERS, rows), ORDERS, run_id="test")

    with pytest.raises(ValidationFailed) as raised:
        raise_for_failures([passed, failed])

    assert raised.value.results == [passed, failed]
    assert str(raised.value).splitlines() == [
        "validation failed for orders:",
        "orders: ExpectColumnValuesToBeInSet(column='order_source', "
        "value_set=['web', 'mobile_app', 'marketplace', 'phone', 'unknown']): 1 of 4 rows unexpected, e.g. 'fax'",
    ]


def test_failures_quote_at_most_the_asked_number_of_examples(spark: SparkSession) -> None:
    rows = [an_order(order_id=f"o{n}", is_first_valid_order=False, status=f"odd{n}") for n in range(5)]

    result = validate_mart(mart_frame(spark, ORDERS, rows), ORDERS, run_id="test", max_failed_examples=2)

    (failure,) = result.failed
    assert failure.observed == "5 of 5 rows unexpected, e.g. 'odd0', 'odd1'"


def test_data_docs_index_lists_every_run_and_each_run_page_its_suites(spark: SparkSession, tmp_path) -> None:
    docs = tmp_path / "data_docs"
    for run_id in ("run-1", "run:2+00"):
        validate_mart(mart_frame(spark, ORDERS, some_orders()), ORDERS, run_id=run_id, data_docs_dir=str(docs))
    rows = [*some_orders(), an_order(order_id="o4", is_first_valid_order=False, order_source="fax")]
    validate_mart(mart_frame(spark, ORDERS, rows), ORDERS, run_id="run-3", data_docs_dir=str(docs))

    index = (docs / "index.html").read_text(encoding="utf-8")
    assert all(f'href="runs/{folder}/index.html"' in index for folder in ("run-1", "run_2_00", "run-3"))
    passed = (docs / "runs" / "run-1" / "index.html").read_text(encoding="utf-8")
    assert "orders_v1, contract 1.0:" in passed and "29 of 29 expectations met" in passed
    failed = (docs / "runs" / "run-3" / "index.html").read_text(encoding="utf-8")
    assert "28 of 29 expectations met" in failed
    assert "1 of 4 rows unexpected, e.g. &#x27;fax&#x27;" in failed


def test_validations_recorded_together_are_rendered_once_at_the_end_even_after_an_error(
    spark: SparkSession, tmp_path
) -> None:
    docs = tmp_path / "data_docs"

    with pytest.raises(RuntimeError, match="^stopped$"), data_docs.rendered_once(spark, str(docs)):
        validate_mart(mart_frame(spark, ORDERS, some_orders()), ORDERS, run_id="together", data_docs_dir=str(docs))
        assert not (docs / "index.html").exists()
        validate_mart(
            mart_frame(spark, BASKET_DAILY, [a_basket_day()]), BASKET_DAILY, run_id="together", data_docs_dir=str(docs)
        )
        raise RuntimeError("stopped")

    page = (docs / "runs" / "together" / "index.html").read_text(encoding="utf-8")
    assert "orders_v1, contract 1.0:" in page and "basket_daily_v1, contract 1.0:" in page
    index = (docs / "index.html").read_text(encoding="utf-8")
    assert 'href="runs/together/index.html"' in index and "orders_v1, basket_daily_v1" in index


def test_data_docs_pages_load_nothing_from_the_network(spark: SparkSession, tmp_path) -> None:
    docs = tmp_path / "data_docs"
    validate_mart(mart_frame(spark, ORDERS, some_orders()), ORDERS, run_id="offline", data_docs_dir=str(docs))

    pages = list(docs.rglob("*.html"))
    assert len(pages) == 2
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text, re.IGNORECASE), page
        assert "<script" not in text and "@import" not in text, page


def test_validation_leaves_the_frame_uncached_as_it_found_it(spark: SparkSession) -> None:
    frame = mart_frame(spark, ORDERS, some_orders())

    validate_mart(frame, ORDERS, run_id="test")

    assert not frame.is_cached
