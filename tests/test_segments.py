"""Segment definitions are checked before any job runs: at config load without Spark, then by Spark's analyzer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from jobs.config import DEFAULT_CONF_DIR, ConfigError, load_segments, load_settings
from jobs.segments import Segment, SegmentError, checked_sql, contract_columns, parse_definitions


@pytest.fixture
def conf_dir(tmp_path) -> Path:
    copy = tmp_path / "conf"
    shutil.copytree(DEFAULT_CONF_DIR, copy)
    return copy


def _define(conf_dir: Path, **segments) -> None:
    (conf_dir / "segments.yaml").write_text(yaml.safe_dump({"segments": segments}), encoding="utf-8")


def _segment(expression: str, **extra) -> dict:
    return {"expression": expression, "description": "for a test", "owner": "qa", **extra}


def _refusal(expression: str) -> str:
    with pytest.raises(SegmentError) as refused:
        parse_definitions({"segments": {"probe": _segment(expression)}}, contract_columns())
    message = str(refused.value)
    assert message.startswith("segment 'probe': "), message
    return message


def test_the_shipped_segments_load_with_their_description_owner_and_channel():
    segments = {segment.name: segment for segment in load_settings("ci").segments}
    assert segments["frequent_buyers_90d"].expression == "valid_orders_90d > 5"
    assert segments["frequent_buyers_90d"].channel is None
    assert segments["vip_email"].channel == "email" and segments["vip_email"].owner == "crm"


def test_an_unknown_column_is_refused_at_config_load_naming_segment_column_and_file(conf_dir):
    _define(conf_dir, big_spenders=_segment("valid_orders_9Od > 5"))
    with pytest.raises(ConfigError, match=r"segment 'big_spenders': unknown column 'valid_orders_9Od'.*did you mean valid_orders_90d\?.*segments\.yaml"):
        load_settings("ci", conf_dir=conf_dir)


def test_a_syntax_error_is_refused_with_where_it_is():
    assert "syntax error at line 1, column" in _refusal("valid_orders >")


@pytest.mark.parametrize("expression", ["valid_orders_90d + 1", "country", "IF(valid_orders > 1, 'yes', 'no')", "NULL"])
def test_a_non_boolean_expression_is_refused(expression):
    assert "not boolean" in _refusal(expression)


def test_a_boolean_operator_over_a_non_boolean_column_is_refused():
    assert "NOT needs boolean operands" in _refusal("NOT country")


@pytest.mark.parametrize(
    "expression, reason",
    [
        ("valid_orders > (SELECT count(*) FROM delta.`/warehouse/gold/orders`)", "subqueries are not allowed"),
        ("customer_id IN (SELECT customer_id FROM other_tenant)", "subqueries are not allowed"),
        ("EXISTS (SELECT 1)", "subqueries are not allowed"),
        ("valid_orders > 1; DROP TABLE customer_360", "`;` is not allowed"),
        ("DROP TABLE customer_360", "is a statement"),
        ("reflect('java.lang.Runtime', 'getRuntime') IS NOT NULL", "function reflect() is not allowed"),
        ("java_method('java.lang.System', 'exit', 0) = 1", "function java_method() is not allowed"),
        ("valid_orders > 0 OR rand() < 0.5", "function rand() is not allowed"),
        ("registered_at < current_date()", "function current_date() is not allowed"),
        ("valid_orders > avg(valid_orders) OVER ()", "window functions (OVER) are not allowed"),
        ("count(*) > 1", "aggregate COUNT(*) is not allowed"),
        ("c.valid_orders > 1", "names a table"),
        ("valid_orders > ${limit}", "is not allowed"),
        ("valid_orders > 1 -- AND is_erased", "comments are not allowed"),
    ],
)
def test_injection_like_expressions_are_refused(expression, reason):
    assert reason in _refusal(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "valid_orders_90d > 5",
        "email_consent",
        "country IN ('DE', 'AT') AND NOT is_erased",
        "days_since_last_order BETWEEN 30 AND 90",
        "registered_at >= DATE '2026-01-01'",
        "coalesce(recency_score, 0) >= 4",
        "lower(acquisition_source) LIKE 'goo%'",
        "CASE WHEN valid_orders > 1 THEN TRUE ELSE FALSE END",
        "Valid_Orders > 1",
    ],
)
def test_ordinary_segment_expressions_are_accepted(expression):
    parse_definitions({"segments": {"probe": _segment(expression)}}, contract_columns())


def test_description_and_owner_are_required_and_the_channel_is_known(conf_dir):
    with pytest.raises(SegmentError, match=r"segment 'x': `owner` is required"):
        parse_definitions({"segments": {"x": {"expression": "valid_orders > 1", "description": "d"}}}, contract_columns())
    with pytest.raises(SegmentError, match=r"segment 'x': channel 'fax' is unknown"):
        parse_definitions({"segments": {"x": _segment("valid_orders > 1", channel="fax")}}, contract_columns())
    with pytest.raises(SegmentError, match=r"segment 'x': unknown key 'expresion'"):
        parse_definitions({"segments": {"x": {"expresion": "a", "description": "d", "owner": "o"}}}, contract_columns())


def test_a_missing_segments_file_is_a_configuration_error(conf_dir):
    (conf_dir / "segments.yaml").unlink()
    with pytest.raises(ConfigError, match="segments.yaml is missing"):
        load_segments(conf_dir)


def test_the_cli_refuses_a_bad_segment_with_exit_code_2_before_anything_runs(conf_dir, monkeypatch, capsys, tmp_path):
    from jobs.__main__ import main

    _define(conf_dir, lapsed=_segment("days_since_last_order >"))
    monkeypatch.setenv("LAKEHOUSE_CONF_DIR", str(conf_dir))
    assert main(["status", "--warehouse", str(tmp_path / "nothing-here")]) == 2
    assert "segment 'lapsed': syntax error" in capsys.readouterr().err
    assert not (tmp_path / "nothing-here").exists()


def test_only_the_checked_parse_tree_reaches_spark():
    assert checked_sql("registered_at IS NOT NULL and valid_orders=0", contract_columns()) == (
        "NOT registered_at IS NULL AND valid_orders = 0"
    )


def test_spark_analyzer_accepts_the_shipped_segments(spark):
    from jobs.segments import check_with_spark

    check_with_spark(spark, load_settings("ci").segments)


def test_spark_analyzer_refuses_what_it_cannot_resolve_naming_the_segment(spark):
    from jobs.segments import check_with_spark

    # Passes the parse-tree check (a boolean comparison of known columns), but Spark has no
    # comparison of a date with a boolean.
    wrong = Segment("odd", "first_valid_order_date > is_erased", "d", "o", None, "first_valid_order_date > is_erased")
    with pytest.raises(ConfigError, match=r"segment 'odd': Spark refuses 'first_valid_order_date > is_erased'"):
        check_with_spark(spark, [wrong])


def test_a_bad_segment_is_an_import_error_of_the_dag_naming_it(conf_dir, tmp_path_factory):
    from jobs.airflow_env import DAGS_FOLDER, airflow_environ

    _define(conf_dir, vip=_segment("monetary_score = 5 AND frequency_scor >= 4"))
    environ = airflow_environ(tmp_path_factory.mktemp("airflow_home"))
    with pytest.MonkeyPatch.context() as patch:
        for key, value in environ.items():
            if key.startswith("AIRFLOW"):
                patch.setenv(key, value)
        patch.setenv("LAKEHOUSE_CONF_DIR", str(conf_dir))
        from airflow.dag_processing.dagbag import DagBag

        errors = DagBag(dag_folder=str(DAGS_FOLDER)).import_errors
    assert any("segment 'vip': unknown column 'frequency_scor'" in message for message in errors.values()), errors
