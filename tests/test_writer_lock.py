"""One writer per table: the warehouse leases, with real processes and real files (no Spark).

The cases that take `new_locks` run again against a real S3 server in
tests/cluster/test_s3_writer_lock.py, which gives `new_locks` a warehouse on `s3a://`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone

import pytest

from jobs.config import PROJECT_ROOT, ConfigError, load_settings
from jobs.lease_store import s3_connection
from jobs.writer_lock import (
    LeaseLost,
    WarehouseBusy,
    WriterLocks,
    WriterLockUnsupported,
    holding,
    process_owner,
)

HOUR = timedelta(hours=1)


@pytest.fixture
def new_locks(tmp_path):
    """WriterLocks of a fresh warehouse, here a local folder."""
    return lambda **options: WriterLocks(str(tmp_path), **options)


def test_a_free_lease_is_taken_and_released(new_locks):
    locks = new_locks(lease=HOUR)
    lease = locks.acquire("marts", "run-a", wait=timedelta(0), process_bound=False)
    assert locks.holder("marts") == lease and lease.owner == "run-a"
    assert locks.release("marts", "run-a") is True
    assert locks.holder("marts") is None


def test_another_owner_fails_after_waiting_naming_the_holder(new_locks):
    locks = new_locks(lease=HOUR, poll_seconds=0.05)
    locks.acquire("marts", "airflow:lakehouse_marts:run-a", wait=timedelta(0), process_bound=False)
    started = time.monotonic()
    with pytest.raises(WarehouseBusy, match="marts tables are being written by airflow:lakehouse_marts:run-a"):
        locks.acquire("marts", "run-b", wait=timedelta(seconds=0.3), process_bound=False)
    assert time.monotonic() - started >= 0.3
    assert locks.holder("marts").owner == "airflow:lakehouse_marts:run-a"


def test_the_same_owner_takes_its_lease_again_and_extends_it(new_locks):
    now = [datetime(2026, 1, 5, 12, tzinfo=timezone.utc)]
    locks = new_locks(lease=HOUR, clock=lambda: now[0])
    first = locks.acquire("marts", "run-a", wait=timedelta(0), process_bound=False)
    now[0] += timedelta(minutes=50)
    again = locks.acquire("marts", "run-a", wait=timedelta(0), process_bound=False)
    assert again.acquired_at == first.acquired_at
    assert datetime.fromisoformat(again.expires_at) == now[0] + HOUR


def test_an_expired_lease_is_taken_over(new_locks):
    now = [datetime(2026, 1, 5, 12, tzinfo=timezone.utc)]
    locks = new_locks(lease=HOUR, clock=lambda: now[0])
    locks.acquire("marts", "run-a", wait=timedelta(0), process_bound=False)
    now[0] += HOUR
    assert locks.acquire("marts", "run-b", wait=timedelta(0), process_bound=False).owner == "run-b"
    with pytest.raises(LeaseLost, match="held by run-b"):
        locks.release("marts", "run-a")


def test_a_lease_of_a_command_whose_process_is_gone_is_free_at_once(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    locks = WriterLocks(str(tmp_path), lease=HOUR)
    locks.acquire("bronze", "command:dead", wait=timedelta(0), process_bound=True)
    path = locks.path("bronze")
    path.write_text(json.dumps({**json.loads(path.read_text()), "pid": int(gone.stdout)}))
    assert locks.acquire("bronze", "command:alive", wait=timedelta(0), process_bound=True).owner == "command:alive"


def test_leases_of_different_groups_do_not_block_each_other(new_locks):
    locks = new_locks(lease=HOUR)
    locks.acquire("marts", "run-a", wait=timedelta(0), process_bound=False)
    assert locks.acquire("bronze", "run-b", wait=timedelta(0), process_bound=False).owner == "run-b"


def test_an_unknown_lock_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown lock 'gold'"):
        WriterLocks(str(tmp_path), lease=HOUR).path("gold")


def test_a_warehouse_on_storage_without_a_lease_store_is_refused_rather_than_left_unprotected():
    with pytest.raises(WriterLockUnsupported, match="gs://bucket/warehouse"):
        WriterLocks("gs://bucket/warehouse", lease=HOUR)
    with pytest.raises(WriterLockUnsupported, match="need the S3 connection"):
        WriterLocks("s3a://bucket/warehouse", lease=HOUR)


def test_a_command_releases_its_leases_even_when_it_fails(tmp_path):
    settings = load_settings("ci", warehouse=str(tmp_path))
    with pytest.raises(RuntimeError, match="boom"):
        with holding(settings, ["marts", "bronze"]) as leases:
            assert {lease.name for lease in leases} == {"bronze", "marts"}
            assert {lease.owner for lease in leases} == {process_owner()}
            raise RuntimeError("boom")
    locks = WriterLocks(str(tmp_path), lease=HOUR)
    assert locks.holder("marts") is None and locks.holder("bronze") is None


# A writer in its own process: hold the marts lease, append to a shared journal slowly, release.
WRITER = textwrap.dedent(
    """
    import sys, time
    from jobs.config import load_settings
    from jobs.writer_lock import holding
    warehouse, journal, name = sys.argv[1:]
    with holding(load_settings("ci", warehouse=warehouse), ["marts"]):
        for step in range(5):
            with open(journal, "a") as out:
                out.write(f"{name} {step}\\n")
            time.sleep(0.2)
    """
)


def test_two_processes_writing_at_once_take_turns_as_if_run_one_after_the_other(tmp_path):
    journal = tmp_path / "journal.txt"
    environ = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "wh"), str(journal), name], env=environ, cwd=PROJECT_ROOT)
        for name in ("a", "b")
    ]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0]
    lines = journal.read_text().splitlines()
    first = lines[0].split()[0]
    second = "b" if first == "a" else "a"
    # Sequential: all five steps of one writer, then all five of the other; never interleaved.
    assert lines == [f"{first} {i}" for i in range(5)] + [f"{second} {i}" for i in range(5)]


def test_a_run_step_whose_lease_was_taken_over_fails_at_once_instead_of_writing_after_the_other(new_locks):
    now = [datetime(2026, 1, 5, 12, tzinfo=timezone.utc)]
    locks = new_locks(lease=HOUR, clock=lambda: now[0])
    locks.acquire("marts", "airflow:lakehouse_backfill:run-a", wait=timedelta(0), process_bound=False)
    now[0] += HOUR  # run-a stalled between build and publish past its lease
    locks.acquire("marts", "airflow:lakehouse_marts:run-b", wait=timedelta(0), process_bound=False)
    with pytest.raises(LeaseLost, match="rerun the whole run"):
        locks.renew("marts", "airflow:lakehouse_backfill:run-a")


def test_a_run_step_renews_its_own_lease_and_takes_a_free_one(new_locks):
    locks = new_locks(lease=HOUR)
    assert locks.renew("marts", "run-a").owner == "run-a"  # free: a step rerun alone after the run ended
    assert locks.renew("marts", "run-a").owner == "run-a"


def test_a_writing_command_waits_for_the_lease_holder_and_releases_its_own_leases(tmp_path, capsys):
    from jobs.__main__ import main

    warehouse = tmp_path / "wh"
    locks = WriterLocks(str(warehouse), lease=timedelta(seconds=2))
    locks.acquire("bronze", "airflow:lakehouse_landing:run-a", wait=timedelta(0), process_bound=False)
    started = time.monotonic()
    # maintain takes both leases, then refuses this retention before starting Spark.
    assert main(["maintain", "--retention-hours", "1", "--warehouse", str(warehouse), "--env", "ci"]) == 1
    assert time.monotonic() - started >= 1.5  # it waited for run-a's lease to end
    assert "below the minimum" in capsys.readouterr().err
    assert sorted(p.name for p in (warehouse / "_locks").glob("*.json")) == []


def test_the_s3_connection_is_spark_s3a_endpoint_and_keys_from_the_cluster_configuration():
    settings = load_settings("cluster", warehouse="s3a://lakehouse/warehouse")
    s3 = s3_connection(settings, environ={"LAKEHOUSE_S3_ACCESS_KEY": "key-id", "LAKEHOUSE_S3_SECRET_KEY": "key-secret"})
    assert (s3.endpoint_url, s3.path_style, s3.access_key, s3.secret_key) == ("http://127.0.0.1:9000", True, "key-id", "key-secret")
    assert "LAKEHOUSE_S3_SECRET_KEY" in s3.keys_from and "key-secret" not in s3.keys_from


def test_an_s3_endpoint_given_as_a_bare_host_takes_its_scheme_from_the_ssl_setting():
    keys = {"LAKEHOUSE_S3_ACCESS_KEY": "k", "LAKEHOUSE_S3_SECRET_KEY": "s"}
    for ssl, scheme in (("false", "http"), ("true", "https")):
        settings = load_settings("cluster", overrides={"spark": {"extra_conf": {
            "spark.hadoop.fs.s3a.endpoint": "minio.internal:9000", "spark.hadoop.fs.s3a.connection.ssl.enabled": ssl}}})
        assert s3_connection(settings, environ=keys).endpoint_url == f"{scheme}://minio.internal:9000"


def test_a_missing_s3_key_variable_is_named_before_anything_is_written():
    settings = load_settings("cluster", warehouse="s3a://lakehouse/warehouse")
    with pytest.raises(ConfigError, match="LAKEHOUSE_S3_SECRET_KEY is not set .*fs.s3a.secret.key of the cluster configuration"):
        s3_connection(settings, environ={"LAKEHOUSE_S3_ACCESS_KEY": "key-id"})
