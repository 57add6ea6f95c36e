"""Erasure end to end on small histories: by event and by command, never undone by a re-delivery or a replay."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from jobs import pipeline
from jobs.__main__ import main
from jobs.config import MasterKeyMissing, PrivacySettings, read_master_key
from jobs.privacy.crypto import ERASED, MasterKey, tokens_in
from jobs.privacy.erasure import personal_values
from jobs.privacy.keys import keys_by_id
from jobs.silver import build_silver
from tests.histories import History

ALICE = ("alice@example.com", "alice.new@example.org", "alice.third@example.net")


def _customer(history: History, customer: str, email: str, day: str = "2026-01-05") -> None:
    history.add(
        "CustomerRegistered", f"customer-{customer}",
        {"customer_id": customer, "email": email, "country": "FR", "referrer": None}, f"{day}T09:00:00Z",
    )


def _broken_line_with(email: str) -> str:
    return '{"event_id": "broken", "tenant_id": "t1", "data": {"customer_id": "c1", "email": "' + email + '", "cou'


@pytest.fixture
def run_settings(settings, tmp_path):
    return dataclasses.replace(settings, warehouse=str(tmp_path / "warehouse"))


def _master(run_settings) -> MasterKey:
    return MasterKey(read_master_key(run_settings))


def _rows(spark, warehouse: str, table: str):
    return spark.read.format("delta").load(f"{warehouse}/{table}").collect()


def _every_file_text(folder: str) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in Path(folder).rglob("*") if p.is_file())


def test_landing_encrypts_emails_and_the_customers_key_still_opens_them(spark, run_settings, tmp_path):
    history = History()
    _customer(history, "c1", ALICE[0])
    history.add("CustomerEmailChanged", "customer-c1", {"customer_id": "c1", "email": ALICE[1]}, "2026-01-06T09:00:00Z")
    history.write(tmp_path / "landing")

    pipeline.land(run_settings, tmp_path / "landing", "r1")

    datas = [row["data"] for row in _rows(spark, run_settings.warehouse, "bronze/events")]
    assert all("@" not in data and len(tokens_in(data)) == 1 for data in datas)
    assert personal_values(spark, run_settings.warehouse, _master(run_settings), "t1", "c1") >= set(ALICE[:2])


def test_an_erasure_event_deletes_the_key_and_neither_redelivery_nor_replay_brings_the_email_back(spark, run_settings, tmp_path):
    history = History()
    _customer(history, "c1", ALICE[0])
    registered = history.events[-1]
    history.add("CustomerEmailChanged", "customer-c1", {"customer_id": "c1", "email": ALICE[1]}, "2026-01-06T09:00:00Z")
    _customer(history, "c2", "bob@example.com")
    history.add("CustomerErasureRequested", "customer-c1", {"customer_id": "c1"}, "2026-01-07T09:00:00Z")
    history.write(tmp_path / "landing" / "day1", extra_lines=(_broken_line_with(ALICE[0]),))
    master = _master(run_settings)
    warehouse = run_settings.warehouse

    pipeline.land(run_settings, tmp_path / "landing", "r1")

    log = _rows(spark, warehouse, "meta/erasure_log")
    assert [(r["tenant_id"], r["customer_id"], r["source"], r["physical_at"]) for r in log] == [("t1", "c1", "event", None)]
    assert personal_values(spark, warehouse, master, "t1", "c1") == set()
    assert personal_values(spark, warehouse, master, "t1", "c2") >= {"bob@example.com"}

    # Later: the registration re-delivered, a new address for c1, and the broken line again.
    later = History()
    later.events = [dict(registered)]
    later.add("CustomerEmailChanged", "customer-c1", {"customer_id": "c1", "email": ALICE[2]}, "2026-01-08T09:00:00Z", event_id="ev-late")
    later.write(tmp_path / "landing" / "day2", extra_lines=(_broken_line_with(ALICE[0]),))
    pipeline.land(run_settings, tmp_path / "landing", "r2")

    ledger = {Path(r["source_file"]).parent.name: r for r in _rows(spark, warehouse, "meta/landing_ledger")}
    assert (ledger["day2"]["landed"], ledger["day2"]["duplicates"], ledger["day2"]["quarantined"]) == (1, 1, 1)
    late = [r for r in _rows(spark, warehouse, "bronze/events") if r["event_id"] == "ev-late"][0]
    assert json.loads(late["data"])["email"] == ERASED
    day2_quarantine = [r for r in _rows(spark, warehouse, "bronze/quarantine") if "day2" in r["source_file"]][0]
    assert ERASED in day2_quarantine["raw_text"]

    # Replay from bronze: silver holds only tokens no key opens.
    build_silver(spark, warehouse, only=("CustomerRegistered", "CustomerEmailChanged"))
    c1_emails = [
        r["email"] for table in ("customer_registered", "customer_email_changed")
        for r in _rows(spark, warehouse, f"silver/{table}") if r["customer_id"] == "c1"
    ]
    assert len(c1_emails) == 3
    key_ids = {key_id for email in c1_emails for key_id, _body in tokens_in(email)}
    assert key_ids and all(key is None for key in keys_by_id(spark, warehouse, master, key_ids).values())
    assert not any(address.split("@")[0] in _every_file_text(warehouse) for address in ALICE)


def test_the_erase_command_erases_a_customer_outside_the_event_log_once(spark, run_settings, tmp_path, capsys):
    history = History()
    _customer(history, "c2", "bob@example.com")
    history.write(tmp_path / "landing")
    pipeline.land(run_settings, tmp_path / "landing", "r1")
    master = _master(run_settings)
    command = ["erase", "--env", "ci", "--warehouse", run_settings.warehouse, "--tenant", "t1", "--customer", "c2"]

    assert main(command) == 0
    assert "erased customer c2 of tenant t1" in capsys.readouterr().out
    assert main(command) == 0
    assert "already erased" in capsys.readouterr().out

    log = _rows(spark, run_settings.warehouse, "meta/erasure_log")
    assert [(r["customer_id"], r["source"]) for r in log] == [("c2", "cli")]
    assert personal_values(spark, run_settings.warehouse, master, "t1", "c2") == set()


def test_an_erase_command_after_silver_was_built_joins_it_at_the_next_build_once_though_nothing_landed(
    spark, run_settings, tmp_path
):
    history = History()
    _customer(history, "c2", "bob@example.com")
    history.write(tmp_path / "landing")
    pipeline.land(run_settings, tmp_path / "landing", "r1")
    types = ("CustomerRegistered", "CustomerErasureRequested")
    build_silver(spark, run_settings.warehouse, only=types)
    assert main(["erase", "--env", "ci", "--warehouse", run_settings.warehouse, "--tenant", "t1", "--customer", "c2"]) == 0

    builds = [build_silver(spark, run_settings.warehouse, only=types) for _ in range(2)]
    assert [b.rows_per_table["customer_erasure_requested"] for b in builds] == [1, 0]
    erasures = _rows(spark, run_settings.warehouse, "silver/customer_erasure_requested")
    assert [(r["event_id"], r["customer_id"]) for r in erasures] == [("erasure-log:t1:c2", "c2")]


def test_landing_without_a_master_key_fails_before_writing_anything(run_settings, tmp_path, monkeypatch):
    for name in ("LAKEHOUSE_MASTER_KEY", "LAKEHOUSE_MASTER_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    no_key = dataclasses.replace(run_settings, privacy=PrivacySettings(local_key_file=""))
    history = History()
    _customer(history, "c1", ALICE[0])
    history.write(tmp_path / "landing")

    with pytest.raises(MasterKeyMissing, match="LAKEHOUSE_MASTER_KEY"):
        pipeline.land(no_key, tmp_path / "landing", "r1")
    assert not Path(no_key.warehouse).exists() or not any(Path(no_key.warehouse).iterdir())


def test_status_shows_an_erasure_pending_until_maintenance_makes_it_physical(spark, run_settings, tmp_path, capsys):
    from jobs.maintenance import maintain
    from jobs.status import print_status

    history = History()
    _customer(history, "c1", ALICE[0])
    history.add("CustomerErasureRequested", "customer-c1", {"customer_id": "c1"}, "2026-01-07T09:00:00Z")
    history.write(tmp_path / "landing")
    pipeline.land(run_settings, tmp_path / "landing", "r1")

    print_status(run_settings)
    assert "Erasures: 0 physical, 1 pending" in capsys.readouterr().out

    maintain(run_settings, 0, force=True)
    print_status(run_settings)
    assert "Erasures: 1 physical, 0 pending" in capsys.readouterr().out
    assert _rows(spark, run_settings.warehouse, "meta/erasure_log")[0]["physical_at"] is not None


def _erasure_checks(spark, warehouse: str) -> list[tuple[int, int]]:
    return sorted((r["bronze_version"], r["requests"]) for r in _rows(spark, warehouse, "meta/erasure_checks"))


def _bronze_version(spark, warehouse: str) -> int:
    from jobs.tables import BRONZE_EVENTS, latest_version

    return latest_version(spark, BRONZE_EVENTS.path(warehouse))


def test_a_landings_erasure_pass_reads_only_the_commits_after_the_last_recorded_check(spark, run_settings, tmp_path):
    from jobs.landing.files import land_files
    from jobs.privacy.erasure import ERASURE_CHECKS
    from jobs.tables import write

    warehouse = run_settings.warehouse
    first = History()
    _customer(first, "c1", ALICE[0])
    _customer(first, "c2", "bob@example.com")
    first.write(tmp_path / "landing" / "day1")
    pipeline.land(run_settings, tmp_path / "landing", "r1")
    assert _erasure_checks(spark, warehouse) == [(_bronze_version(spark, warehouse), 0)]

    # c1's request lands and a check is recorded past it, as if a pass had read it: the next pass must
    # not read it again (landing always runs the pass, so commits before a check were read by one).
    old = History()
    old.add(
        "CustomerErasureRequested", "customer-c1", {"customer_id": "c1"}, "2026-01-07T09:00:00Z", event_id="ev-erase-c1"
    )
    old.write(tmp_path / "landing" / "day2")
    land_files(spark, warehouse, tmp_path / "landing", "r2")
    checked = _bronze_version(spark, warehouse)
    row = spark.createDataFrame([(checked, 0, datetime.now(timezone.utc))], ERASURE_CHECKS.ddl)
    write(spark, row, ERASURE_CHECKS.path(warehouse), "append")

    new = History()
    new.add(
        "CustomerErasureRequested", "customer-c2", {"customer_id": "c2"}, "2026-01-08T09:00:00Z", event_id="ev-erase-c2"
    )
    new.write(tmp_path / "landing" / "day3")
    pipeline.land(run_settings, tmp_path / "landing", "r3")

    assert [r["customer_id"] for r in _rows(spark, warehouse, "meta/erasure_log")] == ["c2"]
    assert _erasure_checks(spark, warehouse)[-2:] == [(checked, 0), (_bronze_version(spark, warehouse), 1)]


def test_a_check_newer_than_bronze_means_bronze_was_made_anew_and_is_searched_whole(spark, run_settings, tmp_path):
    from jobs.privacy.erasure import ERASURE_CHECKS
    from jobs.tables import ensure_table, write

    warehouse = run_settings.warehouse
    row = spark.createDataFrame([(1_000, 0, datetime.now(timezone.utc))], ERASURE_CHECKS.ddl)
    write(spark, row, ensure_table(spark, ERASURE_CHECKS, warehouse), "append")
    history = History()
    _customer(history, "c1", ALICE[0])
    history.add("CustomerErasureRequested", "customer-c1", {"customer_id": "c1"}, "2026-01-07T09:00:00Z")
    history.write(tmp_path / "landing")

    pipeline.land(run_settings, tmp_path / "landing", "r1")

    assert [r["customer_id"] for r in _rows(spark, warehouse, "meta/erasure_log")] == ["c1"]
    assert personal_values(spark, warehouse, _master(run_settings), "t1", "c1") == set()


def _event_ids(spark, warehouse: str, table: str) -> list[str]:
    return sorted(r["event_id"] for r in _rows(spark, warehouse, table))


def test_personal_events_copy_every_bronze_event_holding_an_encrypted_value_and_no_other(spark, run_settings, tmp_path):
    history = History()
    _customer(history, "c1", ALICE[0])
    history.add("CartItemAdded", "cart-k1", {"cart_id": "k1", "sku": "sku-1", "quantity": 1}, "2026-01-05T10:00:00Z")
    # No customer to key it by: the address in the text is encrypted under the address's own key.
    history.add("SupportNoteAdded", "note-n1", {"note": "call carol@example.com back"}, "2026-01-05T11:00:00Z")
    history.add("CustomerEmailChanged", "customer-c1", {"customer_id": "c1", "email": ALICE[1]}, "2026-01-06T09:00:00Z")
    history.write(tmp_path / "landing")
    warehouse = run_settings.warehouse

    pipeline.land(run_settings, tmp_path / "landing", "r1")

    bronze = _rows(spark, warehouse, "bronze/events")
    encrypted = sorted(r["event_id"] for r in bronze if tokens_in(r["data"]) or tokens_in(r["metadata"]))
    assert encrypted == ["ev-0001", "ev-0003", "ev-0004"]
    assert _event_ids(spark, warehouse, "bronze/personal_events") == encrypted
    copies = {r["event_id"]: (r["tenant_id"], r["data"], r["metadata"]) for r in _rows(spark, warehouse, "bronze/personal_events")}
    assert copies == {r["event_id"]: (r["tenant_id"], r["data"], r["metadata"]) for r in bronze if r["event_id"] in encrypted}

    # The same files again land nothing, and copy nothing.
    pipeline.land(run_settings, tmp_path / "landing", "r2")
    assert _event_ids(spark, warehouse, "bronze/personal_events") == encrypted


def test_a_batchs_personal_events_are_committed_before_its_bronze_rows(spark, run_settings, tmp_path):
    from jobs.tables import quoted_path

    history = History()
    _customer(history, "c1", ALICE[0])
    history.write(tmp_path / "landing")
    warehouse = run_settings.warehouse

    pipeline.land(run_settings, tmp_path / "landing", "r1")

    def appended_at(table: str):
        history = spark.sql(f"DESCRIBE HISTORY {quoted_path(warehouse + '/' + table)}").filter("operationParameters['mode'] = 'Append'")
        return [row["timestamp"] for row in history.collect()]

    [copied], [landed] = appended_at("bronze/personal_events"), appended_at("bronze/events")
    assert copied < landed


def test_a_warehouse_without_personal_events_gets_them_from_bronze_before_an_erasure_searches_them(
    spark, run_settings, tmp_path, capsys
):
    import shutil

    from jobs.privacy.crypto import ADDRESS, CUSTOMER
    from jobs.tables import quoted_path

    history = History()
    _customer(history, "c1", ALICE[0])
    history.add("CustomerEmailChanged", "customer-c1", {"customer_id": "c1", "email": ALICE[1]}, "2026-01-06T09:00:00Z")
    # A broken line naming c1's second address: only c1's own events tell whose address it is.
    history.write(tmp_path / "landing", extra_lines=(_broken_line_with(ALICE[1]),))
    warehouse = run_settings.warehouse
    pipeline.land(run_settings, tmp_path / "landing", "r1")
    copied = _event_ids(spark, warehouse, "bronze/personal_events")
    # As a warehouse landed before the table existed.
    shutil.rmtree(f"{warehouse}/bronze/personal_events")

    command = ["erase", "--env", "ci", "--warehouse", warehouse, "--tenant", "t1", "--customer", "c1"]
    assert main(command) == 0
    assert "erased customer c1 of tenant t1: 3 data key(s) deleted" in capsys.readouterr().out

    assert _event_ids(spark, warehouse, "bronze/personal_events") == copied
    made = spark.sql(f"DESCRIBE HISTORY {quoted_path(warehouse + '/bronze/personal_events')}").collect()
    assert len(made) == 1
    [quarantined] = _rows(spark, warehouse, "bronze/quarantine")
    [(key_id, _body)] = tokens_in(quarantined["raw_text"])
    assert keys_by_id(spark, warehouse, _master(run_settings), [key_id]) == {key_id: None}
    erased = {(r["kind"], r["subject"]) for r in _rows(spark, warehouse, "keys/data_keys") if r["wrapped_key"] is None}
    assert (CUSTOMER, "c1") in erased and sum(kind == ADDRESS for kind, _ in erased) == 2
