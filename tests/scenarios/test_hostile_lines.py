"""Scenario 2.5: hostile lines and files in one delivery, mixed with valid events: each hostile line is
quarantined with its reason, each unreadable file is reported with its reason, and the valid events
around them land."""

from __future__ import annotations

import json
import random
import zlib

from pyspark.sql import functions as F

from jobs import pipeline
from jobs.tables import BRONZE_EVENTS, LANDING_LEDGER, QUARANTINE, read_table
from jobs.writer_lock import BRONZE, holding
from tests.histories import History
from tests.scenarios.deliveries import event_line, write_lines
from tests.scenarios.warehouse_state import account_landing

BIG_NOTE_CHARACTERS = 4_000_000  # a valid event of about 4 MB
BIG_GARBAGE_BYTES = 3_000_000  # a line of 3 MB that is not JSON
CUT_GZIP_EVENTS = 60


def hostile_lines(history: History) -> list[tuple[str, bytes, str]]:
    """(what, line, the reason it must get): each line carries an event of its own, so that nothing of it
    can be mistaken for a valid event around it."""

    def event(n: int) -> dict:
        return history.add("OrderConfirmed", f"order-h{n}", {"order_id": f"h{n}"}, "2026-01-08T09:00:00Z")

    without_tenant = event(3)
    del without_tenant["tenant_id"]
    without_occurred_at = event(4)
    del without_occurred_at["occurred_at"]
    noise = random.Random(25).randbytes(300).replace(b"\n", b"")
    return [
        ("truncated JSON", event_line(event(1))[:40], "invalid_json"),
        ("wrong type: stream_version a string", event_line(dict(event(2), stream_version="2")),
         "wrong_type: stream_version must be an integer, got string"),
        ("wrong type: data an array", event_line(dict(event(5), data=["h5"])), "wrong_type: data must be an object"),
        ("missing envelope field tenant_id", event_line(without_tenant), "missing_field: tenant_id"),
        ("missing envelope field occurred_at", event_line(without_occurred_at), "missing_field: occurred_at"),
        ("invalid UTF-8 inside a value", event_line(event(6)).replace(b'"h6"', b'"h\xff6"'), "invalid_utf8"),
        ("random bytes", noise, "invalid_utf8" if not _decodes(noise) else "invalid_json"),
        (f"a line of {BIG_GARBAGE_BYTES // 1_000_000} MB that is not JSON", b"x" * BIG_GARBAGE_BYTES, "invalid_json"),
        ("a lone UTF-16 surrogate escaped in JSON", event_line(dict(event(7), data={"order_id": "\ud800"})),
         "invalid_unicode"),
        ("a global_position beyond BIGINT", event_line(dict(event(8), global_position=2**64)),
         "out_of_range: global_position"),
        ("an occurred_at before year 1 in UTC", event_line(dict(event(9), occurred_at="0001-01-01T00:30:00+01:00")),
         "bad_timestamp: occurred_at"),
        ("a number beyond a double (1e999)",
         event_line(dict(event(10), data={"amount": 0.25})).replace(b"0.25", b"1e999"), "invalid_json"),
        ("an array, not an object", b'["h11", 11]', "not_an_object"),
        ("an empty line", b"", "empty_line"),
    ]


def _decodes(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def complete_lines_in_cut_gzip(data: bytes) -> int:
    """Lines a gzip file cut short still holds whole, decompressed here apart from landing."""
    return zlib.decompressobj(wbits=31).decompress(data).count(b"\n")


def test_hostile_lines_are_quarantined_and_unreadable_files_reported_with_their_reasons_while_valid_events_land(
    spark, scenario_settings, tmp_path, scenario_report
):
    row = scenario_report
    row.scenario = "2.5 hostile lines and files"
    warehouse = scenario_settings.warehouse
    delivery = tmp_path / "landing" / "2026-01-08"
    history = History()

    def valid(n: int) -> dict:
        return history.add("OrderConfirmed", f"order-v{n}", {"order_id": f"v{n}"}, "2026-01-08T10:00:00Z")

    hostile = hostile_lines(history)
    big_data = {"order_id": "big", "carrier": "ups", "note": "x" * BIG_NOTE_CHARACTERS}
    big = history.add("OrderShipped", "order-big", big_data, "2026-01-08T11:00:00Z")
    # A valid event before and after every hostile line, the 4 MB valid event among them.
    mixed = [event_line(valid(0))]
    hostile_at = {}
    for n, (what, line, reason) in enumerate(hostile, start=1):
        mixed.append(line)
        hostile_at[len(mixed)] = (what, reason)
        mixed.append(event_line(big) if n == len(hostile) // 2 else event_line(valid(n)))
    valid_ids = {json.loads(line)["event_id"] for number, line in enumerate(mixed, 1) if number not in hostile_at}
    write_lines(delivery, "mixed.ndjson", mixed)
    write_lines(delivery, "empty.ndjson", [])
    cut_events = [event_line(valid(1000 + n)) for n in range(CUT_GZIP_EVENTS)]
    whole = write_lines(delivery, "cut.ndjson.gz", cut_events).read_bytes()
    cut = whole[: len(whole) // 2]
    (delivery / "cut.ndjson.gz").write_bytes(cut)
    readable_of_cut = complete_lines_in_cut_gzip(cut)
    not_gzip_events = [event_line(valid(2000)), event_line(valid(2001))]
    # Plain text under a gzip name.
    (delivery / "not-gzip.ndjson.gz").write_bytes(b"".join(line + b"\n" for line in not_gzip_events))
    row.events_in = len(mixed) + CUT_GZIP_EVENTS + len(not_gzip_events)
    row.injected = (
        f"one delivery: {len(hostile)} hostile lines ({'; '.join(what for what, _line, _reason in hostile)}) "
        f"between {len(valid_ids)} valid events, one of them {BIG_NOTE_CHARACTERS // 1_000_000} MB; an empty file; "
        f"a gzip file of {CUT_GZIP_EVENTS} events cut at half its bytes; a plain file named .gz"
    )

    with holding(scenario_settings, BRONZE):
        report = pipeline.land(scenario_settings, delivery.parent, "hostile")

    quarantine = read_table(spark, QUARANTINE, warehouse).filter(F.col("source_file").endswith("/mixed.ndjson"))
    reasons = {r["line_number"]: r["reason"] for r in quarantine.select("line_number", "reason").collect()}
    assert set(reasons) == set(hostile_at)
    wrong = {what: (reasons[line], reason) for line, (what, reason) in hostile_at.items()
             if not reasons[line].startswith(reason)}
    assert not wrong, wrong
    raw = {r["line_number"]: r["raw_text"] for r in quarantine.select("line_number", "raw_text").collect()}
    big_garbage = next(line for line, (what, _reason) in hostile_at.items() if "not JSON" in what)
    invalid_utf8 = next(line for line, (what, _reason) in hostile_at.items() if what.startswith("invalid UTF-8"))
    assert len(raw[big_garbage]) == BIG_GARBAGE_BYTES and "\\xff" in raw[invalid_utf8]  # kept as delivered

    bronze = read_table(spark, BRONZE_EVENTS, warehouse)
    landed = {r["event_id"]: r for r in bronze.select("event_id", "source_file", "data").collect()}
    from_mixed = {event_id for event_id, r in landed.items() if r["source_file"].endswith("/mixed.ndjson")}
    assert from_mixed == valid_ids
    assert len(json.loads(landed[big["event_id"]]["data"])["note"]) == BIG_NOTE_CHARACTERS
    from_cut = {event_id for event_id, r in landed.items() if r["source_file"].endswith("/cut.ndjson.gz")}
    assert from_cut == {json.loads(line)["event_id"] for line in cut_events[:readable_of_cut]}
    assert not {json.loads(line)["event_id"] for line in not_gzip_events} & set(landed)

    ledger = {
        r["source_file"].rsplit("/", 1)[1]:
            (r["lines_read"], r["landed"], r["duplicates"], r["quarantined"], r["file_error"])
        for r in read_table(spark, LANDING_LEDGER, warehouse).collect()
    }
    assert ledger["mixed.ndjson"] == (len(mixed), len(valid_ids), 0, len(hostile), None)
    assert ledger["empty.ndjson"] == (0, 0, 0, 0, "empty_file: no lines")
    assert 0 < readable_of_cut < CUT_GZIP_EVENTS
    assert ledger["cut.ndjson.gz"][:4] == (readable_of_cut, readable_of_cut, 0, 0)
    assert ledger["cut.ndjson.gz"][4].startswith(f"truncated_gzip: after line {readable_of_cut}")
    assert ledger["not-gzip.ndjson.gz"][:4] == (0, 0, 0, 0) and ledger["not-gzip.ndjson.gz"][4].startswith("not_gzip")
    # The run's summary (what `land` logs) names each file it could not read to its end, and why.
    summary = report.summary()
    for name in ("empty.ndjson", "cut.ndjson.gz", "not-gzip.ndjson.gz"):
        assert f"/{name}: {ledger[name][4]}" in summary

    account_landing(spark, warehouse, row)
    unread = (CUT_GZIP_EVENTS - readable_of_cut) + len(not_gzip_events)
    assert row.accounted == row.events_in - unread == report.total("lines_read")
    row.outcome = (
        f"landing finished; every hostile line quarantined with its reason (invalid_json, wrong_type, missing_field, "
        f"invalid_utf8, invalid_unicode, out_of_range, bad_timestamp, not_an_object, empty_line), raw text kept; "
        f"all {len(valid_ids)} valid events around them landed, the 4 MB one whole; files reported in the ledger's "
        f"file_error and the run's summary: empty_file, truncated_gzip (its {readable_of_cut} whole lines landed), "
        f"not_gzip. Not read, so not counted: {unread} lines (the cut gzip's tail, the misnamed file)"
    )
