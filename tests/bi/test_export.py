"""`export`: Hyper, Parquet and CSV snapshots of a published version, read back and compared with the mart."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from jobs.__main__ import main
from jobs.bi.export import ExportError, export
from jobs.pipeline import gold_path
from tests.bi.rows import same_rows


def _mart(spark, published, mart, version=None, tenant=None) -> pa.Table:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    frame = reader.load(gold_path(published.settings, mart))
    if tenant is not None:
        frame = frame.filter(frame.tenant_id == tenant)
    return frame.toArrow()


def _read_hyper(path) -> pa.Table:
    from tableauhyperapi import Connection, HyperProcess, TableName, Telemetry

    with HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_dir": str(path.parent)}) as hyper:
        with Connection(hyper.endpoint, str(path)) as connection:
            definition = connection.catalog.get_table_definition(TableName("Extract", "Extract"))
            names = [column.name.unescaped for column in definition.columns]
            rows = connection.execute_list_query('SELECT * FROM "Extract"."Extract"')
    columns = {name: [_python(row[i]) for row in rows] for i, name in enumerate(names)}
    return pa.table(columns)


def _python(value):
    for method in ("to_datetime", "to_date"):  # a Timestamp has both; its to_date() drops the time
        if hasattr(value, method):
            return getattr(value, method)()
    return value


def test_a_parquet_snapshot_of_the_latest_publication_holds_the_mart(spark, published, tmp_path):
    extracts = export(published.settings, ["orders", "basket_daily"], "parquet", tmp_path)

    for extract in extracts:
        assert extract.table_version == published.latest_versions[extract.table]
        same_rows(pq.read_table(tmp_path / extract.file), _mart(spark, published, extract.table))
    manifest = json.loads((tmp_path / "export.json").read_text())
    assert [entry["file"] for entry in manifest] == ["orders-v%d.parquet" % published.latest_versions["orders"],
                                                     "basket_daily-v%d.parquet" % published.latest_versions["basket_daily"]]


def test_a_csv_snapshot_of_one_tenant_holds_only_that_tenants_rows(spark, published, tmp_path):
    (extract,) = export(published.settings, ["orders"], "csv", tmp_path, tenant="t2")

    expected = _mart(spark, published, "orders", tenant="t2")
    # CSV has no null: an empty field stands for one.
    options = pcsv.ConvertOptions(column_types=expected.schema, strings_can_be_null=True)
    read = pcsv.read_csv(tmp_path / extract.file, convert_options=options)
    assert set(read.column("tenant_id").to_pylist()) == {"t2"}
    same_rows(read.cast(expected.schema), expected)


def test_a_hyper_extract_of_an_earlier_version_is_that_publication(spark, published, tmp_path):
    first = published.first_versions["orders"]
    (extract,) = export(published.settings, ["orders"], "hyper", tmp_path, tenant="t1", version=first)

    from_hyper = _read_hyper(tmp_path / extract.file)
    expected = _mart(spark, published, "orders", version=first, tenant="t1")
    assert "o8" not in from_hyper.column("order_id").to_pylist()  # added by the second publication
    assert extract.file == f"orders-v{first}-tenant-t1.hyper"
    same_rows(from_hyper, expected)


def test_the_cli_exports_and_names_the_files(published, tmp_path, capsys):
    code = main(["export", "funnel_daily", "--format", "parquet", "--out", str(tmp_path), "--warehouse", published.settings.warehouse, "--env", "ci"])
    assert code == 0
    assert f"funnel_daily-v{published.latest_versions['funnel_daily']}.parquet" in capsys.readouterr().out


@pytest.mark.parametrize(
    "marts, options, message",
    [
        (["no_such_mart"], {}, "no published mart named no_such_mart"),
        (["orders"], {"tenant": "t9"}, "tenant 't9' has no rows"),
        (["orders"], {"version": 999}, "orders has no published version 999; published versions: "),
        (["orders", "basket_daily"], {"version": 1}, "export one mart at a time"),
    ],
)
def test_unknown_marts_tenants_and_versions_are_refused_by_name(published, tmp_path, marts, options, message):
    with pytest.raises(ExportError, match=message):
        export(published.settings, marts, "parquet", tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()
