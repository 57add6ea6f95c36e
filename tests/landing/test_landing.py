"""Landing files into bronze: idempotent, every line accounted for in the ledger."""

from __future__ import annotations

import json

import pytest

from jobs.landing.files import land_files
from jobs.tables import quoted_path
from tests.histories import History


@pytest.fixture
def two_deliveries(tmp_path):
    return _write_two_deliveries(tmp_path / "landing")


@pytest.fixture(scope="module")
def landed_once(spark, tmp_path_factory) -> str:
    """A warehouse with `two_deliveries` landed once, for the tests that only read what that landing wrote."""
    root = tmp_path_factory.mktemp("landed_once")
    warehouse = str(root / "warehouse")
    land_files(spark, warehouse, _write_two_deliveries(root / "landing"), "r1")
    return warehouse


def _write_two_deliveries(landing):
    """Delivery A: three events, a broken line and a line that is no object; delivery B (a sub-folder):
    an exact duplicate of A's first event, a conflicting version of its second, an unknown type."""
    history = History()
    first = history.add("OrderConfirmed", "order-o1", {"order_id": "o1"}, "2026-01-05T10:00:00Z")
    second = history.add("OrderShipped", "order-o1", {"order_id": "o1", "carrier": "ups"}, "2026-01-05T11:00:00Z")
    history.add("OrderDelivered", "order-o1", {"order_id": "o1"}, "2026-01-05T12:00:00Z")
    history.write(landing / "2026-01-05", "a.ndjson", extra_lines=('{"event_id": "x", "tena', "42"))

    conflicting = dict(second, data={"order_id": "o1", "carrier": "dhl"})
    later = History()
    later.events = [first, conflicting]
    later.add("WishlistItemAdded", "wishlist-w1", {"product_id": "p1"}, "2026-01-05T13:00:00Z", event_id="ev-new")
    later.write(landing / "2026-01-06" / "deep", "b.ndjson")
    return landing


def _ledger(spark, warehouse):
    rows = spark.read.format("delta").load(f"{warehouse}/meta/landing_ledger").collect()
    return {row["source_file"].rsplit("/", 1)[-1]: row for row in rows}


def test_every_line_read_is_landed_a_duplicate_or_quarantined(spark, landed_once):
    warehouse = landed_once
    ledger = _ledger(spark, warehouse)
    a, b = ledger["a.ndjson"], ledger["b.ndjson"]
    assert (a["lines_read"], a["landed"], a["duplicates"], a["quarantined"]) == (5, 3, 0, 2)
    assert (b["lines_read"], b["landed"], b["duplicates"], b["quarantined"]) == (3, 1, 1, 1)
    assert (b["conflicting_duplicates"], b["unknown_event_types"]) == (1, 1)


def test_landing_the_same_folder_twice_adds_nothing(spark, warehouse, two_deliveries):
    land_files(spark, warehouse, two_deliveries, "r1")
    report = land_files(spark, warehouse, two_deliveries, "r2")
    assert report.files == [] and report.skipped_files == 2
    assert spark.read.format("delta").load(f"{warehouse}/bronze/events").count() == 4
    assert spark.read.format("delta").load(f"{warehouse}/bronze/quarantine").count() == 3


def test_a_conflicting_duplicate_keeps_the_first_and_quarantines_the_other(spark, landed_once):
    warehouse = landed_once
    kept = spark.read.format("delta").load(f"{warehouse}/bronze/events").filter("event_id = 'ev-0002'").collect()
    assert [json.loads(row["data"])["carrier"] for row in kept] == ["ups"]
    quarantined = spark.read.format("delta").load(f"{warehouse}/bronze/quarantine").filter("event_id = 'ev-0002'").first()
    assert quarantined["reason"].startswith("conflicting_duplicate") and '"dhl"' in quarantined["raw_text"]


def test_quarantine_keeps_reason_file_line_and_raw_text(spark, landed_once):
    warehouse = landed_once
    rows = spark.read.format("delta").load(f"{warehouse}/bronze/quarantine").filter("source_file like '%a.ndjson'").collect()
    found = {(row["line_number"], row["reason"].split(":")[0], row["raw_text"]) for row in rows}
    assert found == {(4, "invalid_json", '{"event_id": "x", "tena'), (5, "not_an_object", "42")}


def test_an_unknown_event_type_is_kept_in_bronze(spark, landed_once):
    warehouse = landed_once
    assert spark.read.format("delta").load(f"{warehouse}/bronze/events").filter("event_type = 'WishlistItemAdded'").count() == 1


def test_a_rerun_after_a_stop_before_the_ledger_commit_counts_the_same_and_doubles_nothing(spark, warehouse, two_deliveries):
    land_files(spark, warehouse, two_deliveries, "r1")
    before = {name: (r["lines_read"], r["landed"], r["duplicates"], r["quarantined"]) for name, r in _ledger(spark, warehouse).items()}
    # The state a run killed between the bronze and the ledger commits leaves behind.
    spark.sql(f"DELETE FROM {quoted_path(warehouse + '/meta/landing_ledger')}")
    land_files(spark, warehouse, two_deliveries, "r2")
    after = {name: (r["lines_read"], r["landed"], r["duplicates"], r["quarantined"]) for name, r in _ledger(spark, warehouse).items()}
    assert after == before
    assert spark.read.format("delta").load(f"{warehouse}/bronze/events").count() == 4
    assert spark.read.format("delta").load(f"{warehouse}/bronze/quarantine").count() == 3


def test_gzip_files_land_like_plain_ones_and_a_cut_gzip_keeps_its_earlier_lines(spark, warehouse, tmp_path):
    import gzip

    history = History()
    for n in range(3):
        history.add("OrderConfirmed", f"order-o{n}", {"order_id": f"o{n}"}, "2026-01-05T10:00:00Z")
    lines = "\n".join(json.dumps(event) for event in history.events) + "\n"
    landing = tmp_path / "landing" / "2026" / "01"
    landing.mkdir(parents=True)
    (landing / "whole.ndjson.gz").write_bytes(gzip.compress(lines.encode()))
    cut = gzip.compress(("\n".join(json.dumps(dict(e, event_id=e["event_id"] + "-b")) for e in history.events) + "\n").encode() * 200)
    (landing / "cut.ndjson.gz").write_bytes(cut[: len(cut) // 2])

    land_files(spark, warehouse, tmp_path / "landing", "r1")

    ledger = _ledger(spark, warehouse)
    assert (ledger["whole.ndjson.gz"]["lines_read"], ledger["whole.ndjson.gz"]["landed"]) == (3, 3)
    cut_row = ledger["cut.ndjson.gz"]
    assert cut_row["file_error"].startswith("truncated_gzip")
    assert cut_row["lines_read"] == cut_row["landed"] + cut_row["duplicates"] + cut_row["quarantined"] > 0
