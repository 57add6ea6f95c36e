"""The writer lock on `s3a://` (jobs/writer_lock.py, jobs/lease_store.py) against a real S3 server: s3proxy
alone, no Spark. The lease cases of tests/test_writer_lock.py run again here on the S3 lease store; then
what only a shared object store has: concurrent writers racing for one lease, a stale ETag refused by
the server, leases of other hosts, and clear errors for a missing bucket or refused keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from jobs.config import PROJECT_ROOT
from jobs.lease_store import LeaseStoreError, S3Connection, S3LeaseStore, s3_client
from jobs.writer_lock import WriterLocks, locks_for
from tests.cluster.support import ACCESS_KEY, KEYS, SECRET_KEY, settings_on
from tests.test_writer_lock import (  # noqa: F401 (collected here again, with this module's new_locks)
    test_a_free_lease_is_taken_and_released,
    test_a_run_step_renews_its_own_lease_and_takes_a_free_one,
    test_a_run_step_whose_lease_was_taken_over_fails_at_once_instead_of_writing_after_the_other,
    test_an_expired_lease_is_taken_over,
    test_another_owner_fails_after_waiting_naming_the_holder,
    test_leases_of_different_groups_do_not_block_each_other,
    test_the_same_owner_takes_its_lease_again_and_extends_it,
)

HOUR = timedelta(hours=1)
T0 = datetime(2026, 1, 5, 12, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def s3(s3_server) -> S3Connection:
    from jobs.lease_store import s3_connection

    return s3_connection(settings_on(s3_server, "s3a://lakehouse/unused"), environ=KEYS)


@pytest.fixture
def warehouse(s3_server) -> str:
    """A fresh warehouse prefix in the server's bucket for each test."""
    return f"s3a://{s3_server.layout.bucket}/writer-lock/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def new_locks(warehouse, s3):
    return lambda **options: WriterLocks(warehouse, s3=s3, **options)


def test_a_lease_is_a_history_of_generations_and_a_release_leaves_a_tombstone(s3_server, warehouse, new_locks):
    locks = new_locks(lease=HOUR)
    folder = s3_server.layout.s3_data / warehouse.removeprefix("s3a://") / "_locks" / "marts"  # s3proxy's filesystem
    locks.acquire("marts", "run-a", wait=timedelta(0), process_bound=False)
    for _ in range(11):
        locks.renew("marts", "run-a")
    assert locks.path("marts") == f"{warehouse}/_locks/marts/"
    assert [p.name for p in sorted(folder.iterdir())] == [f"{g:020d}.json" for g in range(2, 12)]  # the last 10 kept
    assert json.loads((folder / f"{11:020d}.json").read_text())["owner"] == "run-a"
    assert locks.release("marts", "run-a") is True
    assert json.loads((folder / f"{12:020d}.json").read_text()) == {"released": True}
    assert locks.holder("marts") is None and locks.release("marts", "run-a") is False
    assert locks.acquire("marts", "run-b", wait=timedelta(0), process_bound=False).owner == "run-b"


def test_the_server_refuses_a_write_at_a_stale_generation(warehouse, s3):
    store = S3LeaseStore(warehouse, s3)
    assert store.create("marts", '{"writer": "a"}') is True
    assert store.create("marts", '{"writer": "b"}') is False  # If-None-Match: *, HTTP 412
    seen_by_b = store.read("marts")
    assert store.replace("marts", '{"writer": "a, renewed"}', store.read("marts").version) is True
    assert store.replace("marts", '{"writer": "b"}', seen_by_b.version) is False  # B read a stale generation
    assert store.release("marts", seen_by_b.version) is False  # nor may B release what it saw
    assert store.read("marts").text == '{"writer": "a, renewed"}'


class RivalWritesFirst(S3LeaseStore):
    """The real S3 store, but just before this writer's first conditional write another writer (a second
    WriterLocks on the same warehouse) does its whole acquisition: this writer's write carries a stale
    ETag, or creates what now exists, and the server refuses it."""

    def __init__(self, warehouse, s3, rival) -> None:
        super().__init__(warehouse, s3)
        self.rival, self.refused = rival, []

    def create(self, name, text):
        self._let_the_rival_in()
        written = super().create(name, text)
        self.refused.append(not written)
        return written

    def replace(self, name, text, version):
        self._let_the_rival_in()
        written = super().replace(name, text, version)
        self.refused.append(not written)
        return written

    def _let_the_rival_in(self):
        if self.rival is not None:
            rival, self.rival = self.rival, None
            rival()


@pytest.mark.parametrize("lease_before", ["none", "expired"])
def test_a_writer_whose_conditional_write_is_refused_reads_again_and_yields_to_the_winner(warehouse, s3, lease_before):
    now = [T0]
    rival = WriterLocks(warehouse, s3=s3, lease=HOUR, clock=lambda: now[0])
    if lease_before == "expired":
        rival.acquire("marts", "run-old", wait=timedelta(0), process_bound=False)
        now[0] += 2 * HOUR
    locks = WriterLocks(warehouse, s3=s3, lease=HOUR, clock=lambda: now[0])
    store = RivalWritesFirst(warehouse, s3, lambda: rival.acquire("marts", "run-b", wait=timedelta(0), process_bound=False))
    locks.store = store

    taken, holder = locks.try_acquire("marts", "run-a", process_bound=False)

    assert store.refused == [True]  # run-a's one write went to the server and was refused
    assert not taken and holder.owner == "run-b" and locks.holder("marts").owner == "run-b"


CONTENDERS = 4
ROUNDS = 25


@pytest.mark.parametrize("lease_before", ["free", "expired"])
def test_writers_racing_for_one_lease_never_both_hold_it(warehouse, s3, lease_before):
    """Each round, CONTENDERS threads (each with its own client) try to take the same lease at the same
    moment, and the winner releases it: a race for a free lease (the first round's creates the lease,
    later ones replace a released generation), or for an expired one (replaces of the same generation)."""
    contenders = [WriterLocks(warehouse, s3=s3, lease=HOUR) for _ in range(CONTENDERS)]
    old = WriterLocks(warehouse, s3=s3, lease=HOUR, clock=lambda: T0 - 2 * HOUR)
    winners_per_round = []
    for round_number in range(ROUNDS):
        if lease_before == "expired":
            old.acquire("marts", "run-old", wait=timedelta(0), process_bound=False)
        start = threading.Barrier(CONTENDERS)
        taken_by: dict[int, bool] = {}

        def contend(number: int) -> None:
            start.wait()
            taken_by[number], _ = contenders[number].try_acquire("marts", f"run-{round_number}-{number}", process_bound=False)

        threads = [threading.Thread(target=contend, args=(n,)) for n in range(CONTENDERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        winners = [number for number, taken in sorted(taken_by.items()) if taken]
        assert len(taken_by) == CONTENDERS
        assert [contenders[0].holder("marts").owner] == [f"run-{round_number}-{n}" for n in winners], f"round {round_number}"
        winners_per_round.append(len(winners))
        contenders[winners[0]].release("marts", f"run-{round_number}-{winners[0]}")
    assert winners_per_round == [1] * ROUNDS


# A writer in its own process, configured as a job of the cluster overlay would be: hold the marts lease,
# append to a shared journal slowly, release; then say whether Spark was started.
WRITER = textwrap.dedent(
    """
    import sys, time
    from jobs.config import load_settings
    from jobs.writer_lock import holding
    endpoint, warehouse, journal, name = sys.argv[1:]
    settings = load_settings("cluster", warehouse=warehouse, overrides={
        "spark": {"extra_conf": {"spark.hadoop.fs.s3a.endpoint": endpoint}}, "writer_lock": {"wait_minutes": 2}})
    with holding(settings, ["marts"]):
        for step in range(5):
            with open(journal, "a") as out:
                out.write(f"{name} {step}\\n")
            time.sleep(0.2)
    # Loading the configuration imports pyspark's Python types (the segments' contract); no JVM starts.
    from pyspark import SparkContext
    print("spark started:", SparkContext._gateway is not None)
    """
)


def test_two_processes_sharing_the_s3_lease_store_take_turns_without_starting_spark(s3_server, warehouse, tmp_path, monkeypatch):
    journal = tmp_path / "journal.txt"
    environ = {**os.environ, **KEYS, "PYTHONPATH": str(PROJECT_ROOT)}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, s3_server.layout.s3_endpoint, warehouse, str(journal), name],
                         env=environ, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    outputs = [writer.communicate(timeout=120) for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0], [err[-3000:] for _, err in outputs]
    assert [out.strip() for out, _ in outputs] == ["spark started: False"] * 2
    lines = journal.read_text().splitlines()
    first = lines[0].split()[0]
    second = "b" if first == "a" else "a"
    assert lines == [f"{first} {i}" for i in range(5)] + [f"{second} {i}" for i in range(5)]
    for variable, value in KEYS.items():
        monkeypatch.setenv(variable, value)
    assert locks_for(settings_on(s3_server, warehouse)).holder("marts") is None


def test_a_lease_of_a_command_on_this_host_whose_process_is_gone_is_free_at_once(warehouse, s3):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    locks = WriterLocks(warehouse, s3=s3, lease=HOUR)
    locks.acquire("bronze", "command:dead", wait=timedelta(0), process_bound=True)
    _rewrite_lease(locks, "bronze", pid=int(gone.stdout))
    assert locks.acquire("bronze", "command:alive", wait=timedelta(0), process_bound=True).owner == "command:alive"


def test_a_lease_of_a_command_on_another_host_is_not_freed_by_a_pid_check_here(warehouse, s3):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    locks = WriterLocks(warehouse, s3=s3, lease=HOUR)
    locks.acquire("bronze", "command:elsewhere", wait=timedelta(0), process_bound=True)
    _rewrite_lease(locks, "bronze", pid=int(gone.stdout), host="another-host.example")
    taken, holder = locks.try_acquire("bronze", "command:here", process_bound=True)
    assert not taken and holder.owner == "command:elsewhere"


def _rewrite_lease(locks: WriterLocks, name: str, **changes) -> None:
    stored = locks.store.read(name)
    assert locks.store.replace(name, json.dumps({**json.loads(stored.text), **changes}), stored.version)


def test_a_missing_bucket_is_named_in_a_clear_error(s3_server, s3):
    locks = WriterLocks("s3a://no-such-bucket/warehouse", s3=s3, lease=HOUR)
    with pytest.raises(LeaseStoreError, match="the bucket 'no-such-bucket' does not exist"):
        locks.acquire("marts", "run-a", wait=timedelta(0), process_bound=False)


def test_refused_keys_name_the_variables_they_came_from(warehouse, s3):
    wrong = S3Connection(**{**s3.__dict__, "secret_key": SECRET_KEY + "-wrong"})
    locks = WriterLocks(warehouse, s3=wrong, lease=HOUR)
    with pytest.raises(LeaseStoreError, match=r"refused the S3 keys \(SignatureDoesNotMatch.*LAKEHOUSE_S3_SECRET_KEY"):
        locks.holder("marts")
    assert SECRET_KEY not in repr(wrong.keys_from)


def test_a_client_of_the_connection_reaches_the_server_with_the_configured_keys(s3_server, s3):
    assert s3.access_key == ACCESS_KEY and s3.endpoint_url == s3_server.layout.s3_endpoint and s3.path_style
    assert s3_client(s3).head_bucket(Bucket=s3_server.layout.bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
