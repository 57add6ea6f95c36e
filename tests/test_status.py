"""`status` accounts, per source and landing run, for every line: landed, duplicate, quarantined, held back."""

from __future__ import annotations

from jobs.landing.files import land_files
from jobs.silver import build_silver
from jobs.status import landing_summary
from tests.histories import History


def test_the_summary_counts_per_source_and_run_including_events_held_back(spark, warehouse, tmp_path):
    history = History()
    confirmed = history.add("OrderConfirmed", "order-o1", {"order_id": "o1"}, "2026-01-05T10:00:00Z")
    history.redeliver(confirmed)
    history.add("OrderConfirmed", "order-o2", {"order_id": "o2"}, "2026-01-05T11:00:00Z", schema_version=9)
    history.write(tmp_path / "in", extra_lines=("not json",))
    land_files(spark, warehouse, tmp_path / "in", "run-a")
    later = History()
    later.add("OrderShipped", "order-o1", {"order_id": "o1", "carrier": "ups"}, "2026-01-06T10:00:00Z", event_id="ev-late")
    later.write(tmp_path / "in", "later.ndjson")
    land_files(spark, warehouse, tmp_path / "in", "run-b")
    build_silver(spark, warehouse)

    rows = {row["landing_run_id"]: row for row in landing_summary(spark, warehouse).collect()}

    a, b = rows["run-a"], rows["run-b"]
    assert a["source"] == f"files:{(tmp_path / 'in').resolve()}"
    assert (a["files"], a["lines_read"], a["landed"], a["duplicates"], a["quarantined"], a["held_back"]) == (1, 4, 2, 1, 1, 1)
    assert (b["files"], b["lines_read"], b["landed"], b["duplicates"], b["quarantined"], b["held_back"]) == (1, 1, 1, 0, 0, 0)
