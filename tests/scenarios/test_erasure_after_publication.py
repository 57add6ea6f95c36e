"""Scenario 2.13: a customer is erased after their marts were published, and one tenant tries to read
another's rows through an extract.

The erasure arrives as a `CustomerErasureRequested` event in a later delivery, and the next run honours
it: the customer's email is readable nowhere any more (their data key is deleted), every aggregate is
as it was, and their `customer_360` row stays, marked erased. Extracts (`python -m jobs export
--tenant`) hold the named tenant's rows only; a tenant value that tries to widen the filter gets a
refusal and no file. The SQL endpoint's bypasses are tried in tests/bi/test_server.py (a server of its
own costs a minute more here)."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

from pyspark.sql import functions as F

from jobs import pipeline
from jobs.__main__ import main
from jobs.config import read_master_key
from jobs.privacy.crypto import MasterKey, tokens_in
from jobs.privacy.erasure import personal_values
from jobs.privacy.keys import keys_by_id
from jobs.tables import latest_version
from tests.histories import History
from tests.scenarios.deliveries import first_delivery, lines_delivered
from tests.scenarios.warehouse_state import account_landing, gold_state, publications

MARTS = ("orders", "customer_360")
ERASED = ("t1", "c1")
KEPT = ("t2", "c9")
EMAILS = {ERASED: "ada.erased@example.com", KEPT: "bo.kept@example.org"}


def _registrations(landing: Path) -> Path:
    """c1 of t1 (who ordered o1) and c9 of t2 (who ordered o7) register with an email."""
    history = History()
    for (tenant, customer), email in EMAILS.items():
        history.add("CustomerRegistered", f"customer-{customer}",
                    {"customer_id": customer, "email": email, "country": "FR", "referrer": None},
                    "2026-01-05T08:00:00Z", tenant_id=tenant, event_id=f"registered-{tenant}-{customer}")
    return history.write(landing / "2026-01-05", name="customers.ndjson")


def _erasure_request(landing: Path) -> Path:
    # At the history's last event time: the run's as-of time, hence every as-of-dependent column, stays.
    history = History()
    history.add("CustomerErasureRequested", f"customer-{ERASED[1]}", {"customer_id": ERASED[1]},
                "2026-01-06T12:00:00Z", tenant_id=ERASED[0], event_id="erasure-c1")
    return history.write(landing / "2026-01-07", name="erasures.ndjson")


def _export(settings, marts: tuple[str, ...], tenant: str, out: Path, capsys) -> tuple[int, str]:
    status = main(["export", *marts, "--format", "csv", "--tenant", tenant, "--out", str(out),
                   "--env", "ci", "--warehouse", settings.warehouse])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_an_erasure_after_publication_leaves_no_readable_email_and_the_aggregates_and_extracts_hold_one_tenant(
    spark, scenario_settings, tmp_path, capsys, scenario_report
):
    row = scenario_report
    row.scenario = "2.13 erasure after publication; cross-tenant read"
    row.injected = (
        "a CustomerErasureRequested for a customer of published marts (orders, customer_360), then a run; "
        "extracts with --tenant t2, and with tenant values that try to widen the filter"
    )
    settings = dataclasses.replace(scenario_settings, marts=dataclasses.replace(scenario_settings.marts, enabled=MARTS))
    warehouse = settings.warehouse
    master = MasterKey(read_master_key(settings))
    landing = tmp_path / "landing"
    first_delivery(landing)
    _registrations(landing)
    pipeline.run(settings, landing, run_id="before")
    before = gold_state(spark, settings)
    assert personal_values(spark, warehouse, master, *ERASED) >= {EMAILS[ERASED]}

    _erasure_request(landing)
    row.events_in = lines_delivered(landing)
    pipeline.run(settings, landing, run_id="erased")

    # The email: no key opens it any more, in bronze or in silver; the other tenant's customer keeps theirs.
    assert personal_values(spark, warehouse, master, *ERASED) == set()
    assert personal_values(spark, warehouse, master, *KEPT) >= {EMAILS[KEPT]}
    silver = spark.read.format("delta").load(settings.table_path("silver", "customer_registered"))
    [token] = [r["email"] for r in silver.filter((F.col("tenant_id") == ERASED[0]) & (F.col("customer_id") == ERASED[1])).collect()]
    key_ids = {key_id for key_id, _body in tokens_in(token)}
    assert key_ids and all(key is None for key in keys_by_id(spark, warehouse, master, key_ids).values())

    # The marts: orders as they were; customer_360 the same but for the erased customer's flag.
    after = gold_state(spark, settings)
    assert after["orders"][1] == before["orders"][1]
    customers = {label: _customers(spark, settings, version) for label, version in
                 (("before", before["customer_360"][0]), ("after", after["customer_360"][0]))}
    assert customers["after"][ERASED]["is_erased"] and not customers["before"][ERASED]["is_erased"]
    assert customers["after"][ERASED]["valid_orders"] > 0
    assert {key: {**r, "is_erased": r["is_erased"] and key != ERASED} for key, r in customers["after"].items()} == customers["before"]
    readers_see_latest = all(
        latest_version(spark, pipeline.gold_path(settings, mart)) == max(v for m, _r, _a, v in publications(spark, settings) if m == mart)
        for mart in MARTS
    )
    row.marts_readable, row.marts_at_last_good_version = True, readers_see_latest
    assert readers_see_latest

    # An extract for t2 holds t2's rows only, and no email.
    extracts = tmp_path / "extracts"
    status, said = _export(settings, MARTS, "t2", extracts / "t2", capsys)
    assert status == 0, said
    for mart in MARTS:
        [path] = (extracts / "t2").glob(f"{mart}-v*-tenant-t2.csv")
        rows = _csv_rows(path)
        gold_t2 = [r for r in after[mart][1] if r[0] == "t2"]  # tenant_id is each mart's first column
        assert rows and {r["tenant_id"] for r in rows} == {"t2"} and len(rows) == len(gold_t2), mart
        assert "@" not in path.read_text(encoding="utf-8")
    # As t2, trying to read t1's rows: a tenant value that would widen a textual filter matches no tenant.
    for number, attempt in enumerate(("t2' OR '1'='1", "%")):
        out = extracts / f"attempt-{number}"
        status, said = _export(settings, ("customer_360",), attempt, out, capsys)
        assert status == 1 and "has no rows" in said, (attempt, said)
        assert not out.exists() or not any(out.iterdir())

    account_landing(spark, warehouse, row)
    assert row.accounted == row.events_in == 27
    row.outcome = (
        "the run deleted the customer's data key: their email opens nowhere (bronze, silver), the other tenant's "
        "customer keeps theirs; orders unchanged, customer_360 unchanged but is_erased on the erased customer's row, "
        "which keeps its orders and revenue; the t2 extract held t2's rows only and no email; tenant values trying "
        "to widen the filter were refused ('has no rows') and wrote no file"
    )


def _customers(spark, settings, version: int) -> dict[tuple[str, str], dict]:
    table = spark.read.format("delta").option("versionAsOf", version).load(pipeline.gold_path(settings, "customer_360"))
    return {
        (r["tenant_id"], r["customer_id"]): r.asDict()
        for r in table.collect()
    }
