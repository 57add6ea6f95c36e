"""Every published mart reads the same through delta-rs (the `deltalake` package, the family of
reader Power BI's Delta connector belongs to) as through Spark, at a protocol such readers support."""

from __future__ import annotations

import pyarrow as pa
import pytest

from jobs.bi.protocol import MAX_READER_VERSION, MAX_WRITER_VERSION, check_reader_protocol
from jobs.marts import MART_NAMES
from jobs.pipeline import gold_path
from tests.bi.rows import same_rows

MARTS = MART_NAMES


def test_every_mart_is_enabled_and_checked_here(published):
    assert set(published.settings.marts.enabled) == set(MARTS)


@pytest.mark.parametrize("mart", MARTS)
def test_delta_rs_reads_the_published_mart_as_spark_does(spark, published, mart):
    from deltalake import DeltaTable, QueryBuilder

    path = gold_path(published.settings, mart)
    table = DeltaTable(path)
    # QueryBuilder rather than to_pyarrow_table(): the latter can abort the interpreter at exit (delta-rs #2184).
    by_delta_rs = pa.table(QueryBuilder().register("mart", table).execute("SELECT * FROM mart"))
    by_spark = spark.read.format("delta").load(path).toArrow()

    assert table.version() == published.latest_versions[mart]
    assert by_delta_rs.num_rows == by_spark.num_rows > 0
    same_rows(by_delta_rs, by_spark)


@pytest.mark.parametrize("mart", MARTS)
def test_each_mart_keeps_a_protocol_without_table_features(published, mart):
    protocol = check_reader_protocol(gold_path(published.settings, mart))
    assert protocol.min_reader_version <= MAX_READER_VERSION and protocol.min_writer_version <= MAX_WRITER_VERSION
    assert protocol.reader_features == () and protocol.writer_features == ()
