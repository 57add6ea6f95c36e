"""Warehouse file operations through Hadoop's FileSystem API (jobs/storage.py), on a local folder; the
same operations on `s3a://` are in tests/cluster/test_s3_storage.py."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest

from jobs import storage


def test_a_text_written_twice_reads_back_as_the_second_with_no_temporary_file_left(spark, tmp_path):
    marker = f"{tmp_path}/staging/run_1/_build.json"  # parent folders do not exist yet

    storage.write_text(spark, marker, '{"run_id": "run_1"}')
    storage.write_text(spark, marker, '{"run_id": "run_1", "validated": {"orders_daily": 3}}')

    assert storage.read_text(spark, marker) == '{"run_id": "run_1", "validated": {"orders_daily": 3}}'
    assert (tmp_path / "staging" / "run_1" / "_build.json").read_text() == storage.read_text(spark, marker)
    assert not [name for name in os.listdir(tmp_path / "staging" / "run_1") if name.endswith(".tmp")]


def test_a_plain_path_a_relative_path_and_a_file_uri_name_the_same_file(spark, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wh").mkdir()
    (tmp_path / "wh" / "é name.json").write_text("ünïcode\n", encoding="utf-8")

    seen = [storage.read_text(spark, path) for path in (f"{tmp_path}/wh/é name.json", "wh/é name.json", f"file:{tmp_path}/wh/é name.json")]

    assert seen == ["ünïcode\n"] * 3
    assert storage.is_dir(spark, "wh") and not storage.is_dir(spark, "wh/é name.json")


def test_a_listing_gives_each_child_in_the_callers_form_with_its_kind_and_modification_time(spark, tmp_path):
    log_dir = tmp_path / "_delta_log"
    (log_dir / "_staged_commits").mkdir(parents=True)
    commit = log_dir / "00000000000000000000.json"
    commit.write_text("{}\n")
    os.utime(commit, (1_767_225_600, 1_767_225_600))  # 2026-01-01T00:00:00Z

    entries = storage.list_dir(spark, f"{log_dir}/")

    assert [(e.path, e.name, e.is_dir) for e in entries] == [
        (f"{log_dir}/00000000000000000000.json", "00000000000000000000.json", False),
        (f"{log_dir}/_staged_commits", "_staged_commits", True),
    ]
    assert entries[0].modified_at == datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_a_missing_path_does_not_exist_lists_nothing_deletes_nothing_and_cannot_be_read(spark, tmp_path):
    missing = f"{tmp_path}/staging/no_such_run"

    assert not storage.exists(spark, missing) and not storage.is_dir(spark, missing)
    assert storage.list_dir(spark, missing) == []
    assert storage.delete(spark, missing) is False
    with pytest.raises(FileNotFoundError, match="no_such_run"):
        storage.read_text(spark, f"{missing}/_validated.json")


def test_deleting_a_folder_removes_everything_under_it_and_leaves_its_siblings(spark, tmp_path):
    for run in ("run_1", "run_2"):
        storage.write_text(spark, f"{tmp_path}/staging/{run}/orders_daily/part-0.json", "{}")

    assert storage.delete(spark, f"{tmp_path}/staging/run_1") is True

    assert not (tmp_path / "staging" / "run_1").exists()
    assert [e.name for e in storage.list_dir(spark, f"{tmp_path}/staging")] == ["run_2"]


KEYS = {"LAKEHOUSE_S3_ACCESS_KEY": "key-id", "LAKEHOUSE_S3_SECRET_KEY": "key-secret"}


def test_delta_rs_opens_an_s3a_table_as_s3_with_the_connection_spark_is_given():
    from jobs.config import load_settings

    settings = load_settings("cluster", warehouse="s3a://lakehouse/warehouse")
    location, options = storage.delta_rs_location(settings, "s3a://lakehouse/warehouse/bronze/events", KEYS)
    assert location == "s3://lakehouse/warehouse/bronze/events"
    # conf/cluster.yaml: http://127.0.0.1:9000, path-style, keys from the variables it names.
    assert options == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false", "AWS_ACCESS_KEY_ID": "key-id", "AWS_SECRET_ACCESS_KEY": "key-secret",
    }


def test_delta_rs_reaches_aws_itself_over_tls_with_its_own_credential_chain_when_nothing_is_configured():
    from jobs.config import load_settings

    settings = load_settings("ci", warehouse="s3a://bucket/w", overrides={"spark": {"extra_conf": {}, "hadoop_conf_from_env": {}}})
    location, options = storage.delta_rs_location(settings, "s3a://bucket/w/gold/orders", environ={})
    assert location == "s3://bucket/w/gold/orders"
    assert options == {"AWS_REGION": "us-east-1", "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "true"}


def test_delta_rs_is_given_a_local_table_as_it_is_and_no_other_scheme():
    from jobs.config import load_settings

    settings = load_settings("ci", warehouse="/tmp/warehouse")
    assert storage.delta_rs_location(settings, "/tmp/warehouse/gold/orders") == ("/tmp/warehouse/gold/orders", {})
    assert storage.delta_rs_location(settings, "file:/tmp/warehouse/gold/orders") == ("file:/tmp/warehouse/gold/orders", {})
    with pytest.raises(ValueError, match="gs://bucket/w: delta-rs is given local paths and s3a:// ones here"):
        storage.delta_rs_location(settings, "gs://bucket/w")
