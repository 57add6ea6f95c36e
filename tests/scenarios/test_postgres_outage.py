"""Scenario 2.12: the PostgreSQL source goes away mid-landing and comes back; landing resumes from the
last landed global position with no gap and no duplicate.

The server is a real one (tests/pg_server.py), stopped by its pid at a known point of landing: when
landing asks for its second chunk, that is once the first chunk's quarantine, bronze and ledger
commits are all done (chunks are read lazily, one after the other). Then it is started again on the
same data while a session holds the table locked (as `ALTER TABLE` or `VACUUM FULL` would): the
server accepts landing's query and never answers, which without a read timeout hangs the JDBC driver
for ever (its default); landing must give up within its timeout, naming the source. Then the lock
goes and landing resumes."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from contextlib import contextmanager

import pytest
from pyspark.sql import functions as F

from jobs import pipeline
from jobs.landing import postgres
from jobs.landing.postgres import PostgresReadError, PostgresSourceSettings
from jobs.tables import BRONZE_EVENTS, LANDING_LEDGER, QUARANTINE, read_table
from tests import pg_server
from tests.histories import shop_history
from tests.landing.test_postgres_source import EVENTS_TABLE_DDL, _insert
from tests.scenarios.warehouse_state import account_landing

TABLE = "events"
BATCH_SIZE = 8
# Seconds: short, so that the silent server costs the test little; production's are 30 and 300.
TIMEOUT_S = 5


def _event_store_rows() -> tuple[list[dict], dict]:
    """The shop history's 21 events at positions 10, 20, …, 210; the event at 30 appended again at 215
    (a writer's retry: same event id, another position, so a conflicting duplicate) and a row at 45 whose
    data is an array: 23 rows, two of them quarantined."""
    events, seen = [], set()
    for event in shop_history().events:
        if event["event_id"] not in seen:  # the history's own redeliveries are file-level; a store has one row
            seen.add(event["event_id"])
            events.append(dict(event, global_position=10 * (len(events) + 1)))
    broken = dict(events[3], event_id="ev-broken", global_position=45, data=[1, 2])
    retried = dict(events[2], global_position=215)
    return events, {"broken": broken, "retried": retried}


@contextmanager
def table_locked(server: pg_server.PostgresServer, table: str):
    """A session holding the table's ACCESS EXCLUSIVE lock until the block ends: every read of the table
    waits, and its client hears nothing."""
    session = subprocess.Popen(server.psql_command(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        session.stdin.write(f"BEGIN;\nLOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;\n")
        session.stdin.flush()
        held = f"SELECT count(*) FROM pg_locks WHERE relation = '{table}'::regclass AND mode = 'AccessExclusiveLock' AND granted;"
        deadline = time.monotonic() + 30
        while server.psql(held).strip() != "1":
            assert time.monotonic() < deadline, "the locking session never got its lock"
            time.sleep(0.1)
        yield
    finally:
        session.stdin.close()  # psql ends, its transaction with it
        session.wait(timeout=30)


@pytest.fixture
def event_store():
    with pg_server.running_postgres() as server:
        server.psql(EVENTS_TABLE_DDL.format(table=TABLE))
        # An event store may hold an event id twice (a retried append): landing quarantines the second.
        server.psql(f"ALTER TABLE {TABLE} DROP CONSTRAINT {TABLE}_event_id_key;")
        yield server


def test_postgres_stopped_mid_landing_fails_naming_the_source_and_the_next_run_resumes_with_no_gap_or_duplicate(
    spark, scenario_settings, event_store, tmp_path, monkeypatch, scenario_report
):
    row = scenario_report
    row.scenario = "2.12 PostgreSQL source goes away mid-landing"
    row.injected = (
        "the PostgreSQL server stopped by pid after landing's first chunk (8 rows) was committed; restarted on the "
        "same data with its table locked (the query is never answered); then the lock released"
    )
    events, extra = _event_store_rows()
    _insert(event_store, TABLE, events + [extra["broken"], extra["retried"]])
    row.events_in = int(event_store.psql(f"SELECT count(*) FROM {TABLE};"))
    monkeypatch.setenv("SCENARIO_PG_PASSWORD", pg_server.TEST_PASSWORD)
    source = PostgresSourceSettings(
        source_name="shop", url=event_store.jdbc_url, table=TABLE, user=pg_server.SUPERUSER,
        password_env="SCENARIO_PG_PASSWORD", batch_size=BATCH_SIZE,
        connect_timeout_seconds=TIMEOUT_S, read_timeout_seconds=TIMEOUT_S,
    )
    settings = dataclasses.replace(
        scenario_settings, landing=dataclasses.replace(scenario_settings.landing, postgres_sources=(source,))
    )
    files = tmp_path / "landing"  # no files: only the table lands
    files.mkdir()
    warehouse = settings.warehouse

    # The outage: the server is stopped when landing asks for its second chunk.
    read_chunk = postgres.read_chunk
    asked_after: list[int] = []

    def read_chunk_stopping_the_server_before_the_second(spark, source, password, after):
        asked_after.append(after)
        if len(asked_after) == 2:
            event_store.shut_down()
        return read_chunk(spark, source, password, after)

    monkeypatch.setattr(postgres, "read_chunk", read_chunk_stopping_the_server_before_the_second)
    with pytest.raises(PostgresReadError) as stopped:
        pipeline.land(settings, files, "outage")
    monkeypatch.setattr(postgres, "read_chunk", read_chunk)

    first_chunk = "postgres:shop:10-70"  # the malformed row at 45 among them
    message = str(stopped.value)
    assert asked_after == [-1, 70]
    assert f"postgres source 'shop' (jdbc:postgresql://127.0.0.1:{event_store.port}/postgres)" in message
    assert "after global position 70" in message and "refused" in message, message
    assert [r["source_file"] for r in read_table(spark, LANDING_LEDGER, warehouse).collect()] == [first_chunk]
    assert sorted(r[0] for r in read_table(spark, BRONZE_EVENTS, warehouse).select("global_position").collect()) == [
        10, 20, 30, 40, 50, 60, 70
    ]

    # Back on the same data, but silent: landing gives up after its read timeout, naming the source.
    event_store.restart()
    with table_locked(event_store, TABLE):
        started = time.monotonic()
        with pytest.raises(PostgresReadError) as silent:
            pipeline.land(settings, files, "silent")
        waited = time.monotonic() - started
    assert waited < 10 * TIMEOUT_S, f"landing waited {waited:.0f} s on a silent server"
    assert "postgres source 'shop'" in str(silent.value) and "after global position 70" in str(silent.value)
    assert "Read timed out" in str(silent.value), str(silent.value)
    assert read_table(spark, LANDING_LEDGER, warehouse).count() == 1

    report = pipeline.land(settings, files, "resumed")

    # Resumed after 70: the rest in chunks of eight, each row once, none read twice, none skipped.
    assert [ledger.source_file for ledger in report.files] == ["postgres:shop:80-150", "postgres:shop:160-215"]
    ledger = read_table(spark, LANDING_LEDGER, warehouse).collect()
    assert sorted(r["source_file"] for r in ledger) == [first_chunk, "postgres:shop:160-215", "postgres:shop:80-150"]
    assert all(r["lines_read"] == r["landed"] + r["duplicates"] + r["quarantined"] for r in ledger)
    bronze = read_table(spark, BRONZE_EVENTS, warehouse)
    positions = sorted(r[0] for r in bronze.select("global_position").collect())
    assert positions == [event["global_position"] for event in events]  # 10 … 210: no gap, none twice
    assert bronze.select("event_id").distinct().count() == bronze.count() == len(events)
    assert bronze.filter(F.col("landing_run_id") == "outage").count() == 7

    account_landing(spark, warehouse, row)
    assert (row.landed, row.duplicates, row.quarantined) == (21, 0, 2)
    reasons = {r["line_number"]: r["reason"] for r in read_table(spark, QUARANTINE, warehouse).collect()}
    assert sorted(reasons) == [45, 215] and reasons[215].startswith("conflicting_duplicate"), reasons
    assert row.accounted == row.events_in == 23
    row.outcome = (
        f"landing failed at once with PostgresReadError naming the source, its server and 'after global position 70' "
        f"(connection refused); restarted with its table locked (no answer), it gave up after {waited:.0f} s "
        f"(read timeout {TIMEOUT_S} s) instead of hanging; the first chunk stayed landed and the next run resumed after position 70: every row "
        "once in bronze, the malformed row and the retried append (same event id at another position) quarantined"
    )
