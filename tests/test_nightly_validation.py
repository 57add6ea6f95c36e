"""The nightly full validation refuses what the hourly runs cannot see (its passing case runs end to end
in tests/dags/test_dags_end_to_end.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from jobs.config import load_settings
from jobs.marts import mart_module
from jobs.orchestration import LedgerUnbalanced, MartNotPublished, validate_published
from jobs.tables import LANDING_LEDGER, ensure_table
from jobs.validation import ValidationFailed


def settings_for(warehouse: str, marts: list[str]):
    return load_settings("ci", warehouse=warehouse, overrides={"marts": {"enabled": marts}})


def test_an_enabled_mart_never_published_fails_naming_it(spark, warehouse):
    with pytest.raises(MartNotPublished, match=r"\['basket_daily'\] have no published table"):
        validate_published(settings_for(warehouse, ["basket_daily"]), "nightly-test")


def test_a_published_mart_that_breaks_its_suite_fails_naming_the_mart(spark, warehouse):
    from pyspark.sql import functions as F

    contract = mart_module("basket_daily").CONTRACT
    # Two rows with the same (null) key: the key is neither unique nor complete.
    broken = spark.range(2).select(*(F.lit(None).cast(sql_type).alias(name) for name, sql_type in contract.columns))
    broken.write.format("delta").save(f"{warehouse}/gold/basket_daily")
    with pytest.raises(ValidationFailed, match="validation failed for basket_daily"):
        validate_published(settings_for(warehouse, ["basket_daily"]), "nightly-test")


def test_a_ledger_row_that_lost_lines_fails_naming_the_file(spark, warehouse):
    path = ensure_table(spark, LANDING_LEDGER, warehouse)
    now = datetime(2026, 1, 8, tzinfo=timezone.utc)
    rows = [
        ("run-1", "files", "good.ndjson", 10, 8, 1, 1, 0, 0, None, now),
        ("run-1", "files", "lost-a-line.ndjson", 10, 8, 1, 0, 0, 0, None, now),
    ]
    spark.createDataFrame(rows, LANDING_LEDGER.ddl).write.format("delta").mode("append").save(path)
    with pytest.raises(LedgerUnbalanced, match=r"for lost-a-line\.ndjson$"):
        validate_published(settings_for(warehouse, []), "nightly-test")
