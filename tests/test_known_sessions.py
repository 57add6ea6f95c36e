"""silver/known_sessions: the first SessionStarted of every session, kept by silver's builds
(jobs/silver.py) and read by the marts' builds in place of deriving it (jobs/marts/sessions.py).

One warehouse gets four deliveries of SessionStarted events, with a silver build after each: sessions
of two tenants, new sessions (one started twice in the same delivery), a late event that comes first
in an already known session's stream, and one whose build stops between SessionStarted's commit and the
known sessions' (then runs again); and a build after the table was deleted. After every build the
table must equal the known sessions derived from silver's whole SessionStarted table.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from chispa import assert_df_equality

from jobs import storage
from jobs.landing.files import land_files
from jobs.marts.sessions import KNOWN_SESSIONS, derive_known_sessions, known_sessions, use_known_sessions_table
from jobs.marts.shared import reused
from jobs.silver import build_silver, read_silver, silver_path
from tests.histories import History

ONLY = ("SessionStarted", "ProductViewed")


def _started(history: History, session: str, anonymous: str, at: str, tenant: str = "t1", stream_version: int | None = None):
    data = {"session_id": session, "anonymous_id": anonymous, "customer_id": None, "source": "google", "medium": "cpc",
            "campaign": None, "device": "mobile", "landing_page": "/"}
    event = history.add("SessionStarted", f"session-{session}", data, at, tenant_id=tenant)
    if stream_version is not None:
        event["stream_version"] = stream_version
    return event


class _Deliveries:
    """One history (event ids and positions unique across it), delivered in parts."""

    def __init__(self, spark, warehouse: str, root) -> None:
        self.spark, self.warehouse, self.root = spark, warehouse, root
        self.history, self.delivered = History(), 0

    def deliver(self, name: str) -> None:
        part = History()
        part.events, self.delivered = self.history.events[self.delivered :], len(self.history.events)
        part.write(self.root / "landing" / name, f"{name}.ndjson")
        land_files(self.spark, self.warehouse, self.root / "landing" / name, name)


def _operation(spark, path: str) -> tuple[int, str, str | None]:
    """The table's latest commit: (version, operation, mode)."""
    row = spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").first()
    return row["version"], row["operation"], row["operationParameters"].get("mode")


def _table(spark, warehouse: str):
    return spark.read.format("delta").load(silver_path(warehouse, KNOWN_SESSIONS))


def _derived(spark, warehouse: str):
    return derive_known_sessions(read_silver(spark, warehouse, "SessionStarted"))


def _holds_what_silver_derives(spark, warehouse: str) -> None:
    assert_df_equality(_table(spark, warehouse), _derived(spark, warehouse), ignore_row_order=True, ignore_nullable=True)


@pytest.fixture(scope="module")
def steps(spark, tmp_path_factory):
    """{step: (silver report, the table's latest commit, its rows as {(tenant, session): anonymous_id})}
    after each delivery's build; and the warehouse."""
    import jobs.silver

    root = tmp_path_factory.mktemp("known_sessions")
    warehouse = str(root / "warehouse")
    path = silver_path(warehouse, KNOWN_SESSIONS)
    seen = {}

    def build(step: str) -> None:
        report = build_silver(spark, warehouse, only=ONLY)
        rows = {(r["tenant_id"], r["session_id"]): r["anonymous_id"] for r in _table(spark, warehouse).collect()}
        seen[step] = report, _operation(spark, path), rows
        _holds_what_silver_derives(spark, warehouse)

    deliveries = _Deliveries(spark, warehouse, root)
    history = deliveries.history
    _started(history, "s1", "a1", "2026-03-01T10:00:00Z", stream_version=2)
    _started(history, "s2", "a2", "2026-03-01T11:00:00Z")
    _started(history, "s1", "b1", "2026-03-01T12:00:00Z", tenant="t2")
    deliveries.deliver("first")
    build("first")

    # A new session started twice in one delivery: the first of its stream counts, not the earliest clock.
    _started(history, "s3", "a3-first", "2026-03-02T10:00:00Z", stream_version=1)
    _started(history, "s3", "a3-second", "2026-03-02T09:00:00Z", stream_version=2)
    deliveries.deliver("second")
    build("second")

    # A late SessionStarted that comes before the one known for t1's s1 in its stream.
    _started(history, "s1", "a1-late", "2026-03-01T10:30:00Z", stream_version=1)
    _started(history, "s4", "a4", "2026-03-03T10:00:00Z")
    deliveries.deliver("late")
    build("late")

    # The table deleted (as in a warehouse from before it): the next build, with nothing landed, gains it.
    storage.delete(spark, path)
    build("deleted")

    # A build stopped after SessionStarted's commit, before the known sessions': the rerun finishes it.
    _started(history, "s5", "a5", "2026-03-04T10:00:00Z")
    deliveries.deliver("stopped")
    with pytest.MonkeyPatch.context() as patch:
        write = jobs.silver.write

        def killed_at_known_sessions(spark_, frame, target, mode, metadata=None):
            if target == path:
                raise RuntimeError("killed")
            return write(spark_, frame, target, mode, metadata)

        patch.setattr(jobs.silver, "write", killed_at_known_sessions)
        with pytest.raises(RuntimeError, match="killed"):
            build_silver(spark, warehouse, only=ONLY)
    started = read_silver(spark, warehouse, "SessionStarted")
    seen["killed"] = started.count()
    with reused({"SessionStarted": started}):
        seen["read while stopped"] = use_known_sessions_table(spark, warehouse, started, datetime(2027, 1, 1, tzinfo=timezone.utc))
    build("rerun")
    return warehouse, seen


def test_a_full_build_derives_the_known_sessions_of_every_tenant(steps):
    _warehouse, seen = steps
    report, (_version, operation, mode), rows = seen["first"]
    assert report.mode == "full" and (operation, mode) == ("WRITE", "Overwrite")
    # t1's s1 is the second of its stream (stream_version 2): the first known so far.
    assert rows == {("t1", "s1"): "a1", ("t1", "s2"): "a2", ("t2", "s1"): "b1"}


def test_new_sessions_are_appended_with_the_first_event_of_their_stream(steps):
    _warehouse, seen = steps
    report, (_version, operation, mode), rows = seen["second"]
    assert report.mode == "incremental" and (operation, mode) == ("WRITE", "Append")
    assert rows[("t1", "s3")] == "a3-first" and len(rows) == 4


def test_an_event_earlier_in_a_known_sessions_stream_makes_it_derived_again(steps):
    _warehouse, seen = steps
    report, (_version, operation, mode), rows = seen["late"]
    assert report.mode == "incremental" and (operation, mode) == ("WRITE", "Overwrite")
    assert rows[("t1", "s1")] == "a1-late" and rows[("t2", "s1")] == "b1" and rows[("t1", "s4")] == "a4"


def test_a_deleted_table_is_derived_again_without_rewriting_the_event_tables(spark, steps):
    warehouse, seen = steps
    report, (version, operation, _mode), rows = seen["deleted"]
    assert report.mode == "incremental" and report.rows_per_table == dict.fromkeys(("session_started", "product_viewed"), 0)
    assert (version, operation) == (0, "WRITE")
    assert rows == seen["late"][2]


def test_a_build_stopped_before_the_known_sessions_commit_is_finished_by_the_next(spark, steps):
    _warehouse, seen = steps
    report, (version, operation, mode), rows = seen["rerun"]
    assert seen["killed"] == 8, "SessionStarted's commit of the stopped build stands"
    assert report.rows_per_table["session_started"] == 0, "the rerun appends no event twice"
    assert (version, operation, mode) == (seen["deleted"][1][0] + 1, "WRITE", "Append")
    assert rows[("t1", "s5")] == "a5"


def test_a_build_of_the_marts_reads_the_table_only_as_of_its_latest_event(spark, steps):
    warehouse, _seen = steps
    started = read_silver(spark, warehouse, "SessionStarted")
    latest = datetime.fromisoformat("2026-03-04T10:00:00+00:00")
    with reused({"SessionStarted": started}):
        assert use_known_sessions_table(spark, warehouse, started, latest)
        served = known_sessions(started)
        assert served.inputFiles() == _table(spark, warehouse).inputFiles()
    with reused({"SessionStarted": started}):
        # A replay to an earlier time: a session's first event may be after it; derived from the events.
        assert not use_known_sessions_table(spark, warehouse, started, latest - timedelta(seconds=1))
        derived = known_sessions(started).unpersist()  # a cached frame names no files
        assert derived.inputFiles() == started.inputFiles()


def test_a_table_behind_silvers_sessionstarted_is_not_read(steps):
    _warehouse, seen = steps
    assert seen["read while stopped"] is False
