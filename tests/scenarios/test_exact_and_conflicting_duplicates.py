"""Scenario 2.7: exact and conflicting duplicates, within a file, across the files of one delivery and
across deliveries: an exact one counts as a duplicate; of conflicting ones the first delivered is kept
and every other is quarantined with its reason."""

from __future__ import annotations

import json

from jobs import pipeline
from jobs.tables import BRONZE_EVENTS, LANDING_LEDGER, QUARANTINE, read_table
from jobs.writer_lock import BRONZE, holding
from tests.histories import History
from tests.scenarios.deliveries import event_line, lines_delivered, write_lines
from tests.scenarios.warehouse_state import account_landing

NEW, EXACT, CONFLICT = "new", "exact duplicate", "conflicting duplicate"


def test_exact_duplicates_count_as_duplicates_and_of_conflicting_ones_the_first_is_kept_and_the_others_quarantined(
    spark, scenario_settings, tmp_path, scenario_report
):
    row = scenario_report
    row.scenario = "2.7 exact and conflicting duplicates"
    warehouse = scenario_settings.warehouse
    landing = tmp_path / "landing"
    history = History()
    e1, e2, e3, e4, e5 = (
        history.add("OrderShipped", f"order-o{n}", {"order_id": f"o{n}", "carrier": "ups"}, f"2026-01-12T1{n}:00:00Z")
        for n in range(1, 6)
    )

    def other(event: dict) -> dict:
        """The same event id with another content: the carrier changed."""
        return dict(event, data={**event["data"], "carrier": "dhl"})

    def reserialised(event: dict) -> bytes:
        return event_line(event, sort_keys=True, separators=(",", ":"))

    # Per delivery, per file: (line, what it is when it lands in this order).
    deliveries = {
        "2026-01-12": {
            "a.ndjson": [(event_line(e1), NEW), (event_line(e2), NEW), (event_line(e3), NEW),
                         (reserialised(e1), EXACT),  # within the file
                         (event_line(other(e2)), CONFLICT),  # within the file
                         (event_line(e4), NEW)],
            "b.ndjson": [(event_line(e3), EXACT),  # across files of one delivery
                         (event_line(other(e4)), CONFLICT)],
        },
        "2026-01-13": {
            "c.ndjson": [(event_line(e1), EXACT),  # across deliveries
                         (event_line(other(e3)), CONFLICT),  # across deliveries
                         (event_line(e5), NEW),
                         (event_line(other(e2)), CONFLICT),  # the same conflicting version, delivered again
                         (event_line(other(e5)), CONFLICT)],  # after its first version in the same file
        },
    }
    for day, files in deliveries.items():
        for name, lines in files.items():
            write_lines(landing / day, name, [line for line, _what in lines])
        with holding(scenario_settings, BRONZE):
            pipeline.land(scenario_settings, landing, f"run-{day}")
    row.events_in = lines_delivered(landing)
    row.injected = (
        "two deliveries (two runs), 13 lines of 5 events: exact duplicates (one re-serialised) within a file, across "
        "the files of a delivery and across deliveries; conflicting versions (another carrier) in each of those "
        "places, one of them delivered twice"
    )

    ledger = {r["source_file"].rsplit("/", 1)[1]: r for r in read_table(spark, LANDING_LEDGER, warehouse).collect()}
    for files in deliveries.values():
        for name, lines in files.items():
            whats = [what for _line, what in lines]
            counts = (len(lines), whats.count(NEW), whats.count(EXACT), whats.count(CONFLICT), whats.count(CONFLICT))
            found = ledger[name]
            assert (found["lines_read"], found["landed"], found["duplicates"], found["quarantined"],
                    found["conflicting_duplicates"]) == counts, name

    # Each event once in bronze, as first delivered.
    bronze = read_table(spark, BRONZE_EVENTS, warehouse).select("event_id", "data", "source_file").collect()
    assert sorted(r["event_id"] for r in bronze) == sorted(e["event_id"] for e in (e1, e2, e3, e4, e5))
    assert {json.loads(r["data"])["carrier"] for r in bronze} == {"ups"}
    # Every conflicting line, and only those, in the quarantine: its reason, event id and text as delivered.
    expected = {
        (name, number): json.loads(line)
        for files in deliveries.values() for name, lines in files.items()
        for number, (line, what) in enumerate(lines, start=1) if what == CONFLICT
    }
    quarantined = {
        (r["source_file"].rsplit("/", 1)[1], r["line_number"]): r
        for r in read_table(spark, QUARANTINE, warehouse).collect()
    }
    assert set(quarantined) == set(expected)
    for place, event in expected.items():
        found = quarantined[place]
        assert found["reason"].startswith("conflicting_duplicate: same event_id, different content"), found["reason"]
        assert found["event_id"] == event["event_id"] and json.loads(found["raw_text"]) == event

    account_landing(spark, warehouse, row)
    whats = [what for files in deliveries.values() for lines in files.values() for _line, what in lines]
    assert (row.landed, row.duplicates, row.quarantined) == tuple(map(whats.count, (NEW, EXACT, CONFLICT)))
    assert row.accounted == row.events_in
    row.outcome = (
        f"{row.duplicates} exact duplicates counted as duplicates (key order and spacing do not matter); each event "
        f"kept once, in its first delivered version; the {row.quarantined} conflicting lines quarantined "
        "(conflicting_duplicate, with event id and text as delivered), the one delivered twice twice"
    )
