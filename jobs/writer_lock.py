"""One writer per table: named leases on the warehouse, taken by every command and Airflow task that writes.

A lease names its owner (an Airflow run, or a command's process) and an expiry. Its owner may take
it again (renewing it); anyone else waits until it is released or expires, then fails naming the
holder. An Airflow run takes its leases in a setup task and releases them in a teardown task, so its
build, validate and publish form one unit that another run cannot interleave with; each of those
steps renews the lease first and fails, rather than wait, if another writer took it over after it
expired. A command holds its leases while it runs.

Groups, not single tables, are locked, following who writes what:
- `bronze`: bronze/events, bronze/quarantine, meta/landing_ledger (landing);
- `marts`: silver, staging, gold, meta/publications, replays and Data Docs (build, validate,
  publish, backfill, replay, the nightly validation).
Maintenance rewrites every table and takes both. Several names are always taken in sorted order, so
two writers never wait for each other.

The leases live in `<warehouse>/_locks/<name>.json`. On a local warehouse, their read-check-write
runs under an `flock` of `<name>.guard`. On object storage the same steps map to conditional writes
(create with `If-None-Match: *`, renew and break with `If-Match: <ETag>`); that store is not written yet,
and a warehouse URI is refused with a clear error rather than left unprotected.
"""

from __future__ import annotations

import fcntl
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

log = logging.getLogger("jobs")

LOCK_NAMES = ("bronze", "marts")
BRONZE = ("bronze",)
MARTS = ("marts",)
EVERYTHING = LOCK_NAMES


class WarehouseBusy(RuntimeError):
    """Another writer held the lease for longer than this one would wait."""


class LeaseLost(RuntimeError):
    """A writer asked to release or renew a lease it no longer holds."""


class WriterLockUnsupported(RuntimeError):
    """The warehouse is on storage this lock cannot protect yet."""


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
    ) -> None:
        if "://" in warehouse and not warehouse.startswith("file://"):
            raise WriterLockUnsupported(
                f"writer locks for a warehouse at {warehouse} are not implemented yet (object storage needs the "
                "conditional-write lease store described in jobs/writer_lock.py); refusing to write unprotected"
            )
        self.folder = Path(warehouse.removeprefix("file://")) / "_locks"
        self.lease = lease
        self.poll_seconds = poll_seconds
        self.clock = clock

    def path(self, name: str) -> Path:
        if name not in LOCK_NAMES:
            raise ValueError(f"unknown lock {name!r}; locks: {', '.join(LOCK_NAMES)}")
        return self.folder / f"{name}.json"

    def holder(self, name: str) -> Lease | None:
        return _read(self.path(name))

    def try_acquire(self, name: str, owner: str, *, process_bound: bool) -> tuple[bool, Lease]:
        """Take or renew the lease if it is free, expired, abandoned or already ours; (taken, current lease)."""
        path = self.path(name)
        with self._guard(name):
            now = self.clock()
            current = _read(path)
            if current is not None and current.owner != owner and not current.expired(now) and not current.owner_is_dead():
                return False, current
            if current is not None and current.owner != owner:
                why = "expired" if current.expired(now) else "its process is gone"
                log.warning("lock %s: taking over the lease of %s (%s)", name, current.describe(), why)
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
            _write(path, lease)
            return True, lease

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
        path = self.path(name)
        with self._guard(name):
            current = _read(path)
            if current is None:
                return False
            if current.owner != owner:
                raise LeaseLost(f"{owner} cannot release the {name} lease: it is held by {current.describe()}")
            path.unlink()
            return True

    @contextmanager
    def _guard(self, name: str) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"{name}.guard", "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(guard, fcntl.LOCK_UN)


def locks_for(settings: Settings) -> WriterLocks:
    return WriterLocks(settings.warehouse, lease=timedelta(minutes=settings.writer_lock.lease_minutes))


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


def _read(path: Path) -> Lease | None:
    try:
        return Lease(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None


def _write(path: Path, lease: Lease) -> None:
    # Readers outside the guard (status, error messages) never see half a file.
    scratch = path.with_suffix(f".{os.getpid()}.tmp")
    scratch.write_text(json.dumps(asdict(lease), indent=2))
    os.replace(scratch, path)


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
