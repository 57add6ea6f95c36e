"""One writer per table: named leases on the warehouse, taken by every command and Airflow task that writes.

A lease names its owner (an Airflow run, or a command's process) and an expiry. Its owner may take
it again (renewing it); anyone else waits until it is released or expires, then fails naming the
holder. An Airflow run takes its leases in a setup task and releases them in a teardown task, so its
build, validate and publish form one unit that another run cannot interleave with; each of those
steps renews the lease first and fails, rather than wait, if another writer took it over after it
expired. A command holds its leases while it runs.

Groups, not single tables, are locked, following who writes what:
- `bronze`: bronze/events, bronze/personal_events, bronze/quarantine, meta/landing_ledger, the keys and the
  erasure tables (landing, erase);
- `marts`: silver (and its full rebuild's `_scratch/silver_split`), staging, gold, meta/publications,
  replays and Data Docs (build, validate, publish, backfill, replay, the nightly validation).
Maintenance rewrites every table and takes both. Several names are always taken in sorted order, so
two writers never wait for each other.

The leases live under `<warehouse>/_locks/`, in a lease store (jobs/lease_store.py) that reads a
lease with its version, creates it only if absent, and replaces or releases it only if it is still at
the version read. Every decision below is made on what was read and then written conditionally; when
the write is refused (another writer got there first), the lease is read again and the decision made
again. On a local warehouse (`_locks/<name>.json`) the conditions are checked under an `flock` of
`<name>.guard`. On `s3a://` the S3 server checks them: every take, renewal, takeover and release
creates the lease's next generation (`_locks/<name>/<generation>.json`) with `If-None-Match: *`, which
the server refuses (HTTP 412) to a writer that read a stale one; so two writers on different machines,
or in different Spark drivers, never both hold a lease. Other warehouse URIs are refused with a clear
error rather than left unprotected.

Expiry compares each writer's own UTC clock with the holder's `expires_at`: machines sharing a store
on S3 need clocks within a small fraction of `lease_minutes` of each other (NTP is plenty). A lease
whose process is gone is freed at once only on the machine that took it (`Lease.owner_is_dead`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

from jobs.config import Settings
from jobs.lease_store import S3_SCHEMES, LeaseStoreError, S3Connection, open_store, s3_connection
from jobs.lease_store import WriterLockUnsupported  # noqa: F401 (callers catch it from here, as before)

log = logging.getLogger("jobs")

LOCK_NAMES = ("bronze", "marts")
BRONZE = ("bronze",)
MARTS = ("marts",)
EVERYTHING = LOCK_NAMES


class WarehouseBusy(RuntimeError):
    """Another writer held the lease for longer than this one would wait."""


class LeaseLost(RuntimeError):
    """A writer asked to release or renew a lease it no longer holds."""


@dataclass(frozen=True)
class Lease:
    name: str
    owner: str
    host: str
    pid: int
    acquired_at: str
    renewed_at: str
    expires_at: str
    # The owner is this process (a command): a dead pid on this host frees the lease at once.
    process_bound: bool

    def expired(self, now: datetime) -> bool:
        return datetime.fromisoformat(self.expires_at) <= now

    def owner_is_dead(self) -> bool:
        # A pid means something only on the machine that took the lease: a lease of another host (one
        # sharing the store on S3) ends by release or expiry, never by a pid that happens to be free here.
        return self.process_bound and self.host == socket.gethostname() and not _pid_alive(self.pid)

    def describe(self) -> str:
        return f"{self.owner} (host {self.host}, pid {self.pid}, since {self.acquired_at}, lease until {self.expires_at})"


def process_owner() -> str:
    """The owner name of a command run in this process."""
    return f"command:{socket.gethostname()}:{os.getpid()}"


def airflow_owner(dag_id: str, run_id: str) -> str:
    return f"airflow:{dag_id}:{run_id}"


class WriterLocks:
    """The leases of one warehouse."""

    def __init__(
        self,
        warehouse: str,
        *,
        lease: timedelta,
        poll_seconds: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        s3: S3Connection | None = None,
    ) -> None:
        self.store = open_store(warehouse, s3)
        self.lease = lease
        self.poll_seconds = poll_seconds
        self.clock = clock

    def path(self, name: str) -> Path | str:
        if name not in LOCK_NAMES:
            raise ValueError(f"unknown lock {name!r}; locks: {', '.join(LOCK_NAMES)}")
        return self.store.location(name)

    def holder(self, name: str) -> Lease | None:
        self.path(name)
        return self._read(name)[0]

    def try_acquire(self, name: str, owner: str, *, process_bound: bool) -> tuple[bool, Lease]:
        """Take or renew the lease if it is free, expired, abandoned or already ours; (taken, current lease)."""
        self.path(name)
        for _ in range(_MAX_RACES):
            now = self.clock()
            current, version = self._read(name)
            if current is not None and current.owner != owner and not current.expired(now) and not current.owner_is_dead():
                return False, current
            stamp = now.isoformat()
            lease = Lease(
                name=name,
                owner=owner,
                host=socket.gethostname(),
                pid=os.getpid(),
                acquired_at=current.acquired_at if current is not None and current.owner == owner else stamp,
                renewed_at=stamp,
                expires_at=(now + self.lease).isoformat(),
                process_bound=process_bound,
            )
            text = json.dumps(asdict(lease), indent=2)
            written = self.store.create(name, text) if version is None else self.store.replace(name, text, version)
            if written:
                if current is not None and current.owner != owner:
                    why = "expired" if current.expired(now) else "its process is gone"
                    log.warning("lock %s: took over the lease of %s (%s)", name, current.describe(), why)
                return True, lease
            # Another writer wrote the lease between our read and our write: decide again on what it wrote.
        raise _too_many_races(self.path(name))

    def acquire(self, name: str, owner: str, *, wait: timedelta, process_bound: bool) -> Lease:
        """Take the lease, waiting up to `wait` for its holder; WarehouseBusy names the holder on timeout."""
        deadline = time.monotonic() + wait.total_seconds()
        announced = False
        while True:
            taken, lease = self.try_acquire(name, owner, process_bound=process_bound)
            if taken:
                return lease
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"the {name} tables are being written by {lease.describe()}; waited {_minutes(wait)} for it. "
                    f"If that writer is gone, its lease ends at {lease.expires_at} (or delete {self.path(name)})"
                )
            if not announced:
                log.info("lock %s: waiting for %s", name, lease.describe())
                announced = True
            time.sleep(self.poll_seconds)

    def renew(self, name: str, owner: str) -> Lease:
        """Extend our lease (or take it if free) without waiting; LeaseLost if another writer holds it,
        which means ours expired between two steps and was taken over: the run must start again."""
        taken, lease = self.try_acquire(name, owner, process_bound=False)
        if not taken:
            raise LeaseLost(
                f"{owner} no longer holds the {name} lease: it expired and is now held by {lease.describe()}; "
                "another writer may have written in between, so rerun the whole run rather than this step"
            )
        return lease

    def release(self, name: str, owner: str) -> bool:
        """Release our lease; False if it was not held at all. LeaseLost if someone else holds it now."""
        self.path(name)
        for _ in range(_MAX_RACES):
            current, version = self._read(name)
            if current is None:
                return False
            if current.owner != owner:
                raise LeaseLost(f"{owner} cannot release the {name} lease: it is held by {current.describe()}")
            if self.store.release(name, version):
                return True
        raise _too_many_races(self.path(name))

    def _read(self, name: str) -> tuple[Lease | None, str | None]:
        stored = self.store.read(name)
        if stored is None:
            return None, None
        if stored.text is None:  # released, its place kept
            return None, stored.version
        return Lease(**json.loads(stored.text)), stored.version


def locks_for(settings: Settings) -> WriterLocks:
    """The warehouse's leases; on `s3a://`, reached with Spark's own s3a endpoint and keys (no Spark started)."""
    on_s3 = settings.warehouse.partition("://")[0] in S3_SCHEMES
    return WriterLocks(
        settings.warehouse,
        lease=timedelta(minutes=settings.writer_lock.lease_minutes),
        s3=s3_connection(settings) if on_s3 else None,
    )


def take(settings: Settings, names: Iterable[str], owner: str, *, process_bound: bool = False) -> list[Lease]:
    """Take (or renew) every named lease, in sorted order, waiting as configured."""
    locks = locks_for(settings)
    wait = timedelta(minutes=settings.writer_lock.wait_minutes)
    return [locks.acquire(name, owner, wait=wait, process_bound=process_bound) for name in sorted(set(names))]


def renew(settings: Settings, names: Iterable[str], owner: str) -> list[Lease]:
    """Extend every named lease this owner holds (taking any that is free); LeaseLost if one was taken over."""
    locks = locks_for(settings)
    return [locks.renew(name, owner) for name in sorted(set(names))]


def release(settings: Settings, names: Iterable[str], owner: str) -> list[str]:
    """Release every named lease this owner holds; the names released."""
    locks = locks_for(settings)
    return [name for name in sorted(set(names), reverse=True) if locks.release(name, owner)]


@contextmanager
def holding(settings: Settings, names: Iterable[str], owner: str | None = None) -> Iterator[list[Lease]]:
    """Hold the named leases for the body of a command (released however it ends)."""
    owner = owner or process_owner()
    names = sorted(set(names))
    taken: list[str] = []
    try:
        for lease in take(settings, names, owner, process_bound=True):
            taken.append(lease.name)
        yield [locks_for(settings).holder(name) for name in taken]
    finally:
        release(settings, taken, owner)


# Each lost race means another writer's write went through, so a decision that keeps losing is a store
# that refuses every conditional write (a misbehaving server), not contention.
_MAX_RACES = 50


def _too_many_races(location: Path | str) -> LeaseStoreError:
    return LeaseStoreError(f"{location}: {_MAX_RACES} conditional writes in a row were refused, each after a fresh "
                           "read; the store does not honour If-Match / If-None-Match as expected")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _minutes(span: timedelta) -> str:
    seconds = span.total_seconds()
    return f"{seconds / 60:g} minutes" if seconds >= 60 else f"{seconds:g} s"
