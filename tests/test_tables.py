"""A Delta table's latest version and the metrics of a write's commit, read from the transaction log
(jobs/tables.py), against what Delta's own DESCRIBE HISTORY says."""

from __future__ import annotations

import pytest
from deltalake import write_deltalake

from jobs.tables import Commit, commit, commit_metrics, latest_version, quoted_path


def _history(spark, path):
    return {row["version"]: row for row in spark.sql(f"DESCRIBE HISTORY {quoted_path(path)}").collect()}


def test_each_write_reports_the_version_and_rows_it_committed_and_an_append_of_nothing_no_commit(spark, tmp_path):
    path = str(tmp_path / "table")
    rows = spark.createDataFrame([(n, f"r{n}") for n in range(5)], "id long, name string")

    written = [
        commit(spark, rows, path, "overwrite"),
        commit(spark, rows.limit(2), path, "append"),
        commit(spark, rows.limit(0), path, "append"),
        commit(spark, rows.limit(3), path, "overwrite"),
    ]

    history = _history(spark, path)
    assert written == [Commit(0, 5), Commit(1, 2), Commit(None, 0), Commit(2, 3)]
    assert latest_version(spark, path) == max(history) == 2
    for version, row in history.items():
        assert commit_metrics(spark, path, version) == dict(row["operationMetrics"])


def test_the_latest_version_includes_a_commit_made_by_another_writer(spark, tmp_path):
    path = str(tmp_path / "table")
    commit(spark, spark.createDataFrame([(1,)], "id long"), path, "overwrite")
    assert latest_version(spark, path) == 0

    # delta-rs, in this process but outside Spark: Spark's cached view of the log is now behind.
    import pyarrow as pa

    write_deltalake(path, pa.table({"id": pa.array([2], pa.int64())}), mode="append")

    assert latest_version(spark, path) == 1 == max(_history(spark, path))


def test_a_folder_without_a_table_has_no_version(spark, tmp_path):
    with pytest.raises(FileNotFoundError, match="no Delta table at"):
        latest_version(spark, str(tmp_path / "nothing"))
