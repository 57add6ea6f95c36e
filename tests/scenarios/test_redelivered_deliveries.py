"""Scenario 2.3: the same delivery is landed twice, and deliveries overlap (a file delivered again under
another name, the same events in files of two deliveries): nothing is doubled and the ledger adds up,
the events delivered again counting as duplicates."""

from __future__ import annotations

import shutil

from pyspark.sql import functions as F

from jobs import pipeline
from jobs.tables import BRONZE_EVENTS, LANDING_LEDGER, QUARANTINE, latest_version, read_table
from jobs.writer_lock import BRONZE, holding
from tests.histories import History
from tests.scenarios.deliveries import BROKEN_LINE, event_line, lines_delivered, write_lines
from tests.scenarios.warehouse_state import account_landing


def test_a_delivery_landed_twice_or_delivered_again_under_another_name_and_overlapping_deliveries_double_nothing(
    spark, scenario_settings, tmp_path, scenario_report
):
    row = scenario_report
    row.scenario = "2.3 same delivery twice, overlapping deliveries"
    row.injected = (
        "a delivery (6 events, a broken line) landed, then landed again; then, in one run: the same file again "
        "under another name, and two deliveries overlapping it and each other (2 of its events, re-serialised, "
        "and 2 events shared between them)"
    )
    warehouse = scenario_settings.warehouse
    landing = tmp_path / "landing"
    history = History()
    first = [
        history.add("OrderConfirmed", f"order-o{n}", {"order_id": f"o{n}"}, f"2026-01-09T1{n}:00:00Z") for n in range(6)
    ]
    second = [
        history.add("OrderShipped", f"order-o{n}", {"order_id": f"o{n}", "carrier": "ups"}, f"2026-01-10T1{n}:00:00Z")
        for n in range(3)
    ]
    third = [history.add("OrderDelivered", "order-o0", {"order_id": "o0"}, "2026-01-11T10:00:00Z")]
    original = write_lines(landing / "2026-01-09", "events.ndjson", [*map(event_line, first), BROKEN_LINE.encode()])

    def land(run_id: str):
        with holding(scenario_settings, BRONZE):
            return pipeline.land(scenario_settings, landing, run_id)

    land("first")
    tables = (BRONZE_EVENTS, QUARANTINE, LANDING_LEDGER)
    versions = {spec.name: latest_version(spark, spec.path(warehouse)) for spec in tables}

    again = land("again")

    assert again.files == [] and again.skipped_files == 1
    assert {spec.name: latest_version(spark, spec.path(warehouse)) for spec in tables} == versions  # not one commit

    # The same bytes under another name; the first delivery's last two events (other key order and
    # separators: other text, same content) in a second delivery, which shares two events with a third.
    (landing / "2026-01-09-resent").mkdir()
    shutil.copy(original, landing / "2026-01-09-resent" / "events-again.ndjson")
    overlap_with_first = first[4:]
    reserialised = [event_line(e, sort_keys=True, separators=(",", ":")) for e in overlap_with_first]
    write_lines(landing / "2026-01-10", "events.ndjson", [*reserialised, *map(event_line, second)])
    shared = second[1:]
    write_lines(landing / "2026-01-11", "events.ndjson", [*map(event_line, shared), *map(event_line, third)])
    overlap = land("overlap")

    ledger = {
        r["source_file"].split("/landing/", 1)[1]: (r["lines_read"], r["landed"], r["duplicates"], r["quarantined"])
        for r in read_table(spark, LANDING_LEDGER, warehouse).collect()
    }
    assert ledger == {
        "2026-01-09/events.ndjson": (len(first) + 1, len(first), 0, 1),
        "2026-01-09-resent/events-again.ndjson": (len(first) + 1, 0, len(first), 1),
        "2026-01-10/events.ndjson": (len(overlap_with_first) + len(second), len(second), len(overlap_with_first), 0),
        # The deliveries' files land in path order: the shared events are the earlier file's.
        "2026-01-11/events.ndjson": (len(shared) + len(third), len(third), len(shared), 0),
    }
    assert overlap.total("duplicates") == len(first) + len(overlap_with_first) + len(shared)

    bronze = read_table(spark, BRONZE_EVENTS, warehouse)
    everything = {e["event_id"] for e in first + second + third}
    assert bronze.count() == bronze.select("event_id").distinct().count() == len(everything)
    assert {r["event_id"] for r in bronze.select("event_id").collect()} == everything
    kept_in = {r["event_id"]: r["source_file"].split("/landing/", 1)[1] for r in bronze.filter(
        F.col("event_id").isin([e["event_id"] for e in first + second])).select("event_id", "source_file").collect()}
    assert {kept_in[e["event_id"]] for e in first} == {"2026-01-09/events.ndjson"}
    assert {kept_in[e["event_id"]] for e in second} == {"2026-01-10/events.ndjson"}
    # The broken line has no event id to be recognised by: it is quarantined once per file it came in.
    quarantined = read_table(spark, QUARANTINE, warehouse).select("source_file", "raw_text").collect()
    assert sorted((r["source_file"].split("/landing/", 1)[1], r["raw_text"]) for r in quarantined) == [
        ("2026-01-09-resent/events-again.ndjson", BROKEN_LINE), ("2026-01-09/events.ndjson", BROKEN_LINE)
    ]

    row.events_in = lines_delivered(landing)
    account_landing(spark, warehouse, row)
    assert row.accounted == row.events_in
    assert (row.landed, row.duplicates, row.quarantined) == (len(everything), overlap.total("duplicates"), 2)
    row.outcome = (
        "landing the same folder again committed nothing (every file already in the ledger); the file delivered "
        f"again under another name and the overlapping events counted as duplicates ({row.duplicates}), each event "
        "once in bronze, kept from the first file in landing order; the broken line quarantined once per file "
        "that carried it"
    )
