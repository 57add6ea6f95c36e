"""Landing from an event-store table in a real PostgreSQL server, incrementally by global position."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from pathlib import Path

import pytest
import yaml

from jobs.landing.postgres import (
    PostgresSourceSettings,
    chunk_query,
    dotnet_type_name,
    land_postgres,
    marten_type_alias,
)
from jobs.tables import quoted_path
from tests.histories import History

from tests import pg_server  # noqa: E402

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sources.md"

EVENTS_TABLE_DDL = """
CREATE TABLE {table} (
  global_position bigint PRIMARY KEY,
  event_id        text NOT NULL UNIQUE,
  tenant_id       text NOT NULL,
  stream_id       text NOT NULL,
  stream_version  bigint NOT NULL,
  event_type      text NOT NULL,
  schema_version  integer NOT NULL,
  occurred_at     timestamptz NOT NULL,
  recorded_at     timestamptz NOT NULL DEFAULT now(),
  data            jsonb NOT NULL,
  metadata        jsonb NOT NULL
);
"""


@pytest.fixture(scope="module")
def postgres():
    """A real PostgreSQL server for this module, stopped by pid at the end (stop() checks nothing is left)."""
    with pg_server.running_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def jdbc_ready(settings):
    if not any(package.startswith("org.postgresql:postgresql:") for package in settings.spark.packages):
        pytest.fail("conf/base.yaml spark.packages needs org.postgresql:postgresql:42.7.4 for JDBC")


def _source(postgres, table: str, **changes) -> PostgresSourceSettings:
    source = PostgresSourceSettings(
        source_name="shop", url=postgres.jdbc_url, table=table, user=pg_server.SUPERUSER, batch_size=4
    )
    return dataclasses.replace(source, **changes)


def _land(spark, warehouse, source, run_id):
    return land_postgres(spark, warehouse, source, run_id, password=pg_server.TEST_PASSWORD)


def _sql_text(value) -> str:
    return "NULL" if value is None else "'" + str(value).replace("'", "''") + "'"


def _insert(postgres, table: str, events: list[dict]) -> None:
    columns = ("global_position", "event_id", "tenant_id", "stream_id", "stream_version", "event_type",
               "schema_version", "occurred_at", "recorded_at", "data", "metadata")
    rows = []
    for event in events:
        values = [str(event["global_position"]), *(_sql_text(event[name]) for name in columns[1:4])]
        values += [str(event["stream_version"]), _sql_text(event["event_type"]), str(event["schema_version"])]
        values += [_sql_text(event["occurred_at"]), _sql_text(event["recorded_at"])]
        values += [_sql_text(json.dumps(event[name])) + "::jsonb" for name in ("data", "metadata")]
        rows.append("(" + ", ".join(values) + ")")
    postgres.psql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES\n" + ",\n".join(rows) + ";")


def _history() -> History:
    """Six events of two streams; the order's creation time is in +02:00."""
    history = History()
    history.add("SessionStarted", "session-s1", {"session_id": "s1", "anonymous_id": "a1", "customer_id": None,
                "source": "google", "medium": "cpc", "campaign": None, "device": "mobile", "landing_page": "/"},
                "2026-01-05T09:00:00Z")
    history.add("OrderCreated", "order-o1", {"order_id": "o1", "cart_id": "k1", "customer_id": "c1", "session_id": "s1",
                "items": [{"product_id": "p1", "category": "shoes", "quantity": 1, "unit_price_cents": 2500}],
                "total_cents": 2500, "currency": "EUR", "order_source": "web"}, "2026-01-06T01:30:00+02:00",
                schema_version=3)
    history.add("OrderConfirmed", "order-o1", {"order_id": "o1"}, "2026-01-05T23:31:00Z")
    history.add("PaymentCaptured", "order-o1", {"order_id": "o1", "amount_cents": 2500, "method": "card"},
                "2026-01-05T23:32:00Z")
    history.add("OrderShipped", "order-o1", {"order_id": "o1", "carrier": "dhl"}, "2026-01-06T10:00:00Z")
    history.add("OrderDelivered", "order-o1", {"order_id": "o1"}, "2026-01-07T10:00:00Z")
    return history


def _table(spark, warehouse: str, name: str):
    return spark.read.format("delta").load(f"{warehouse}/{name}")


def _utc_text(frame, column: str) -> list[str]:
    """A timestamp column as UTC text, computed by Spark (collect() would shift it to the local zone)."""
    from pyspark.sql import functions as F

    return [row[0] for row in frame.select(F.date_format(column, "yyyy-MM-dd'T'HH:mm:ss")).collect()]


def _state(spark, warehouse: str, report) -> dict:
    """What a landing run left: its report, and bronze, quarantine and ledger as plain Python values."""
    from pyspark.sql import functions as F

    bronze = _table(spark, warehouse, "bronze/events").withColumn(
        "occurred_at_utc", F.date_format("occurred_at", "yyyy-MM-dd'T'HH:mm:ss")
    )
    return {
        "report": report,
        "bronze": {row["event_id"]: row.asDict() for row in bronze.collect()},
        "quarantine": [row.asDict() for row in _table(spark, warehouse, "bronze/quarantine").collect()],
        "ledger": {
            row["source_file"]: (row["lines_read"], row["landed"], row["duplicates"], row["quarantined"])
            for row in _table(spark, warehouse, "meta/landing_ledger").collect()
        },
    }


@pytest.fixture(scope="module")
def three_runs(spark, jdbc_ready, postgres, tmp_path_factory):
    """One table, one warehouse, three runs (landings cost seconds each; the tests share them):
    1. the first rows: positions 10, 20, …, 60 with gaps, and a malformed row at 35 (data is an array),
       landed in chunks of four rows;
    2. a rerun with nothing new;
    3. after two rows were appended (positions 61 and 75), another run;
    4. a rerun after losing the last chunk's ledger row, as a run stopped just before writing it would."""
    table = "events_three_runs"
    postgres.psql(EVENTS_TABLE_DDL.format(table=table))
    warehouse = str(tmp_path_factory.mktemp("postgres_landing") / "warehouse")
    source = _source(postgres, table)
    events = [dict(event, global_position=10 * event["global_position"]) for event in _history().events]
    broken = dict(events[2], event_id="ev-broken", global_position=35, data=[1, 2])
    _insert(postgres, table, events + [broken])
    first = _state(spark, warehouse, _land(spark, warehouse, source, "r1"))
    rerun = _state(spark, warehouse, _land(spark, warehouse, source, "r2"))

    later = History()
    refunded = later.add("OrderRefunded", "order-o1", {"order_id": "o1", "amount_cents": 2500}, "2026-01-08T10:00:00Z",
                         event_id="ev-late-1")
    confirmed = later.add("OrderConfirmed", "order-o2", {"order_id": "o2"}, "2026-01-08T11:00:00Z",
                          event_id="ev-late-2")
    appended = [dict(refunded, global_position=61), dict(confirmed, global_position=75)]
    _insert(postgres, table, appended)
    after_append = _state(spark, warehouse, _land(spark, warehouse, source, "r3"))

    # The state a run killed between the last chunk's bronze and ledger commits leaves behind.
    ledger = quoted_path(warehouse + "/meta/landing_ledger")
    spark.sql(f"DELETE FROM {ledger} WHERE source_file = 'postgres:shop:61-75'")
    after_crash = _state(spark, warehouse, _land(spark, warehouse, source, "r4"))
    return {"events": events, "appended": appended, "first": first, "rerun": rerun, "after_append": after_append,
            "after_crash": after_crash}


def test_rows_land_in_bronze_by_position_and_the_ledger_adds_up(three_runs):
    first = three_runs["first"]
    assert sorted((row["global_position"], event_id) for event_id, row in first["bronze"].items()) == [
        (event["global_position"], event["event_id"]) for event in three_runs["events"]
    ]
    # Chunks of four rows in position order, the malformed row among them.
    assert first["ledger"] == {"postgres:shop:10-35": (4, 3, 0, 1), "postgres:shop:40-60": (3, 3, 0, 0)}
    assert all(ledger.adds_up() for ledger in first["report"].files)
    created = first["bronze"]["ev-0002"]
    # The order's creation, written 01:30 at +02:00, is 23:30 the day before in UTC.
    assert (created["source_file"], created["source_line"], created["occurred_at_utc"]) == (
        "postgres:shop:10-35", 20, "2026-01-05T23:30:00")


def test_a_malformed_row_is_quarantined_with_its_reason_position_and_text(three_runs):
    [row] = three_runs["first"]["quarantine"]
    assert (row["source_file"], row["line_number"], row["event_id"]) == ("postgres:shop:10-35", 35, "ev-broken")
    assert row["reason"] == "wrong_type: data must be an object, got array"
    assert json.loads(row["raw_text"])["data"] == [1, 2]


def test_a_rerun_adds_nothing(three_runs):
    first, rerun = three_runs["first"], three_runs["rerun"]
    assert rerun["report"].files == []
    for table in ("bronze", "quarantine", "ledger"):
        assert rerun[table] == first[table]


def test_rows_appended_after_a_run_land_next_run_with_no_gap_and_no_duplicate(three_runs):
    after = three_runs["after_append"]
    assert [(l.source_file, l.lines_read, l.landed, l.duplicates) for l in after["report"].files] == [
        ("postgres:shop:61-75", 2, 2, 0)
    ]
    positions = sorted(row["global_position"] for row in after["bronze"].values())
    assert positions == [10, 20, 30, 40, 50, 60, 61, 75]
    assert set(after["bronze"]) == {event["event_id"] for event in three_runs["events"] + three_runs["appended"]}


def test_a_chunk_whose_ledger_row_was_lost_is_read_again_as_the_same_chunk_and_counted_the_same(three_runs):
    after, after_crash = three_runs["after_append"], three_runs["after_crash"]
    assert [l.source_file for l in after_crash["report"].files] == ["postgres:shop:61-75"]
    assert after_crash["ledger"] == after["ledger"]
    assert (after_crash["bronze"], after_crash["quarantine"]) == (after["bronze"], after["quarantine"])


@pytest.fixture(scope="module")
def marten_store(postgres):
    """Marten's tables holding the six events of `_history()` at positions 1-6, then a tombstone at 7."""
    postgres.psql(MARTEN_DDL)
    streams = {"session-s1": uuid.uuid4(), "order-o1": uuid.uuid4()}
    history = _history()
    postgres.psql(_marten_inserts(history, streams))
    return history, streams


def test_a_marten_shaped_table_lands_with_the_documented_mapping(spark, warehouse, jdbc_ready, postgres, marten_store):
    history, streams = marten_store
    source = dataclasses.replace(
        _documented_marten_source(), url=postgres.jdbc_url, user=pg_server.SUPERUSER, password_env=""
    )

    report = _land(spark, warehouse, source, "r1")

    assert [(l.lines_read, l.landed, l.quarantined) for l in report.files] == [(6, 6, 0)]  # the tombstone is left out
    rows = {row["event_id"]: row for row in _table(spark, warehouse, "bronze/events").collect()}
    expected = {_event_uuid(e): e for e in history.events}
    assert set(rows) == set(expected)
    for event_id, event in expected.items():
        row = rows[event_id]
        stream_type, key = event["stream_id"].split("-", 1)
        assert (row["event_type"], row["stream_id"], row["tenant_id"]) == (
            event["event_type"], f"{stream_type}-{streams[event['stream_id']]}", "t1")
        assert (row["global_position"], row["stream_version"], row["schema_version"]) == (
            event["global_position"], event["stream_version"], event["schema_version"])
        assert json.loads(row["data"]) == event["data"]
        causation_id = f"cause-{event['global_position']}"
        assert json.loads(row["metadata"]) == {"correlation_id": "corr-1", "causation_id": causation_id}
    created = _table(spark, warehouse, "bronze/events").filter(f"event_id = '{_event_uuid(history.events[1])}'")
    # occurred_at from the header (business time), recorded_at from Marten's append timestamp.
    assert (_utc_text(created, "occurred_at"), _utc_text(created, "recorded_at")) == (
        ["2026-01-05T23:30:00"], ["2026-01-06T00:00:02"])


def test_the_documented_high_water_mark_condition_holds_back_rows_above_the_mark(postgres, marten_store):
    postgres.psql("CREATE TABLE mt_event_progression (name varchar PRIMARY KEY, last_seq_id bigint, "
                  "last_updated timestamptz DEFAULT transaction_timestamp());"
                  "INSERT INTO mt_event_progression (name, last_seq_id) VALUES ('HighWaterMark', 4);")
    source = dataclasses.replace(_documented_marten_source(), where=_documented_yaml("marten-high-water-mark")["where"])
    positions = postgres.psql(f"SELECT global_position FROM ({chunk_query(source, after=1)}) AS chunk;").split()
    assert positions == ["2", "3", "4"]


def test_the_test_server_stops_by_pid_and_leaves_nothing_running():
    server = pg_server.start_postgres()
    processes = server.process_ids()
    assert len(processes) > 1  # the server and its workers
    server.stop()
    assert not [pid for pid in processes if pg_server.is_running(pid)]
    assert not server.folder.exists()


def test_the_password_is_looked_up_by_the_name_of_its_environment_variable():
    source = PostgresSourceSettings("shop", "jdbc:postgresql://db/shop", "events", "reader", password_env="SHOP_PW")
    assert source.password({"SHOP_PW": "s3cret"}) == "s3cret"
    with pytest.raises(ValueError, match="SHOP_PW is not set"):
        source.password({})


def test_a_mapping_naming_an_unknown_field_or_function_is_refused():
    with pytest.raises(ValueError, match=r"unknown envelope field\(s\) \['type'\].*unknown function\(s\) \['camel'\]"):
        PostgresSourceSettings("shop", "jdbc:postgresql://db/shop", "events", "reader",
                               columns={"type": "kind"}, transforms={"event_type": "camel"})


def test_marten_type_names_map_back_to_the_catalog_and_unknown_ones_stay_readable():
    aliases = ("order_created", "campaign_spend_recorded", "wishlist_item_added")
    expected = ["OrderCreated", "CampaignSpendRecorded", "WishlistItemAdded"]
    assert [marten_type_alias(alias) for alias in aliases] == expected
    assert dotnet_type_name("Shop.Events.Orders+OrderCreated, Shop.Events") == "OrderCreated"


# Marten's mt_streams and mt_events (Guid stream identity, conjoined tenancy, correlation, causation and
# headers enabled), with the columns Marten's EventsTable and StreamsTable declare.
MARTEN_DDL = """
CREATE TABLE mt_streams (
  id uuid NOT NULL, type varchar NULL, version bigint NULL, timestamp timestamptz NOT NULL DEFAULT now(),
  snapshot jsonb NULL, snapshot_version integer NULL, created timestamptz NOT NULL DEFAULT now(),
  tenant_id varchar NOT NULL DEFAULT '*DEFAULT*', is_archived bool DEFAULT FALSE, PRIMARY KEY (tenant_id, id)
);
CREATE SEQUENCE mt_events_sequence;
CREATE TABLE mt_events (
  seq_id bigint NOT NULL PRIMARY KEY, id uuid NOT NULL, stream_id uuid NULL, version bigint NOT NULL,
  data jsonb NOT NULL, type varchar(500) NOT NULL, timestamp timestamptz NOT NULL DEFAULT now(),
  tenant_id varchar NULL DEFAULT '*DEFAULT*', mt_dotnet_type varchar NULL, correlation_id varchar NULL,
  causation_id varchar NULL, headers jsonb NULL, is_archived bool NULL DEFAULT FALSE,
  FOREIGN KEY (tenant_id, stream_id) REFERENCES mt_streams (tenant_id, id)
);
"""


def _event_uuid(event: dict) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, event["event_id"]))


def _marten_inserts(history: History, streams: dict[str, uuid.UUID]) -> str:
    statements = [
        f"INSERT INTO mt_streams (id, type, version, tenant_id) VALUES ('{stream_uuid}', '{stream_type}', 0, 't1');"
        for stream_type, stream_uuid in ((name.split("-")[0], stream_uuid) for name, stream_uuid in streams.items())
    ]
    tombstone_stream = uuid.uuid4()
    statements.append(
        f"INSERT INTO mt_streams (id, type, version, tenant_id) VALUES ('{tombstone_stream}', NULL, 0, 't1');"
    )
    for event in history.events:
        headers = {"occurred_at": event["occurred_at"], "schema_version": event["schema_version"]}
        alias = re.sub(r"(?<!^)([A-Z])", r"_\1", event["event_type"]).lower()
        appended_at = f"timestamptz '2026-01-06T00:00:00Z' + interval '{event['global_position']} seconds'"
        statements.append(
            "INSERT INTO mt_events (seq_id, id, stream_id, version, data, type, timestamp, tenant_id, mt_dotnet_type, "
            "correlation_id, causation_id, headers) VALUES ("
            f"nextval('mt_events_sequence'), '{_event_uuid(event)}', '{streams[event['stream_id']]}', "
            f"{event['stream_version']}, {_sql_text(json.dumps(event['data']))}::jsonb, '{alias}', {appended_at}, "
            "'t1', "
            f"'Shop.Events.{event['event_type']}, Shop', 'corr-1', 'cause-{event['global_position']}', "
            f"{_sql_text(json.dumps(headers))}::jsonb);"
        )
    statements.append(
        "INSERT INTO mt_events (seq_id, id, stream_id, version, data, type, tenant_id) VALUES ("
        f"nextval('mt_events_sequence'), '{uuid.uuid4()}', '{tombstone_stream}', 1, '{{}}'::jsonb, 'tombstone', 't1');"
    )
    return "\n".join(statements)


def _documented_yaml(marker: str) -> dict:
    """The YAML block that follows `<!-- marker… -->` in docs/sources.md, so what is documented is tested."""
    text = DOCS.read_text(encoding="utf-8")
    block = re.search(rf"<!-- {re.escape(marker)}[^>]*-->\s*```yaml\n(.*?)```", text, re.DOTALL)
    assert block, f"docs/sources.md lost its {marker} block"
    return yaml.safe_load(block.group(1))


def _documented_marten_source() -> PostgresSourceSettings:
    [entry] = _documented_yaml("marten-mapping")["landing"]["postgres_sources"]
    return PostgresSourceSettings(**entry)


def test_the_pipeline_lands_configured_event_store_tables_after_the_files(spark, settings, jdbc_ready, postgres, tmp_path, monkeypatch):
    from jobs import pipeline

    table = "events_configured"
    postgres.psql(EVENTS_TABLE_DDL.format(table=table))
    _insert(postgres, table, _history().events)
    monkeypatch.setenv("SHOP_STORE_PASSWORD", pg_server.TEST_PASSWORD)
    landing = settings.landing
    configured = dataclasses.replace(
        settings,
        warehouse=str(tmp_path / "warehouse"),
        landing=dataclasses.replace(landing, postgres_sources=(_source(postgres, table, password_env="SHOP_STORE_PASSWORD"),)),
    )
    (tmp_path / "files").mkdir()

    report = pipeline.land(configured, tmp_path / "files", "configured-run")

    assert report.total("landed") == len(_history().events)
    assert {ledger.source for ledger in report.files} == {"postgres:shop"}
