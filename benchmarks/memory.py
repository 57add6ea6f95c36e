"""Peak memory of the benchmark: the resident set of this Python process plus every process under it
(the Spark JVM is a child of the driver's Python process; its Python workers are the JVM's children),
and of any other processes named with their children (a local cluster's master, workers and their
executors, S3 server).

Sampled in a background thread with psutil when the venv has it, else from /proc. Peaks are kept for
the whole run and for the phase that is running, so each phase reports what it reached.

A child caught between fork and exec still runs in its parent's memory (the JVM starts `chmod` and
other helpers through posix_spawn, whose child shares the JVM's address space until it execs; Python
starts subprocesses with vfork): its RSS is the parent's, counted a second time, which showed as
spikes of a whole extra JVM. A child with its parent's name or virtual size is therefore left out.
That leaves out pyspark's forked Python workers as well: they share most of their pages with the
daemon they were forked from, which is counted, and the jobs run no Python UDFs.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Iterable, NamedTuple


class Member(NamedTuple):
    pid: int
    ppid: int
    name: str
    vms: int
    rss: int


def _family_with_psutil(pid: int) -> list[Member]:
    import psutil

    root = psutil.Process(pid)
    members = []
    for process in [root, *root.children(recursive=True)]:
        try:
            with process.oneshot():
                memory = process.memory_info()
                members.append(Member(process.pid, process.ppid(), process.name(), memory.vms, memory.rss))
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue  # ended between the listing and the reading
    return members


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _family_from_proc(pid: int) -> list[Member]:
    """Without psutil: every process whose ancestry leads to `pid`, from /proc/<pid>/stat."""
    stats: dict[int, Member] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (2nd field, in parentheses) may hold spaces; fields after it are plain.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[1] is the parent id; fields[20] vsize (bytes) and fields[21] rss (pages): stat(5) 4, 23, 24.
        stats[int(entry.name)] = Member(int(entry.name), int(fields[1]), name, int(fields[20]), int(fields[21]) * _PAGE)
    family = {pid}
    grew = True
    while grew:
        found = {child for child, member in stats.items() if member.ppid in family} - family
        family |= found
        grew = bool(found)
    return [stats[member] for member in family if member in stats]


def family_rss(members: list[Member]) -> int:
    """The members' RSS, leaving out children that are (or were forked as) a copy of their parent."""
    by_pid = {member.pid: member for member in members}
    total = 0
    for member in members:
        parent = by_pid.get(member.ppid)
        # Either test alone: the name and the size are read a moment apart, and the child may exec between.
        if parent is not None and (parent.name == member.name or parent.vms == member.vms):
            continue
        total += member.rss
    return total


def _reader():
    try:
        import psutil  # noqa: F401

        return _family_with_psutil, "psutil"
    except ImportError:
        return _family_from_proc, "/proc"


class MemorySampler:
    """Samples the family's RSS every `interval` seconds until stopped; `start_phase(name)` starts a new
    phase peak. Use as a context manager."""

    def __init__(self, interval: float = 0.25, pid: int | None = None, also: Iterable[int] = ()) -> None:
        self.interval = interval
        self.pid = pid or os.getpid()
        self.roots = (self.pid, *also)
        self._family, self.method = _reader()
        self.peak = 0
        self.samples = 0
        self._phase: str | None = None
        self._phase_peak: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def current(self) -> int:
        """A sample now (also counted in the peaks)."""
        rss = sum(family_rss(self._family(root)) for root in self.roots)
        with self._lock:
            self.samples += 1
            self.peak = max(self.peak, rss)
            if self._phase is not None:
                self._phase_peak[self._phase] = max(self._phase_peak.get(self._phase, 0), rss)
        return rss

    def start_phase(self, name: str) -> int:
        """Peaks from now on count for `name` too; returns the RSS at its start."""
        with self._lock:
            self._phase = name
            self._phase_peak[name] = 0
        return self.current()

    def end_phase(self, name: str) -> int:
        """The phase's peak (a last sample included)."""
        self.current()
        with self._lock:
            if self._phase == name:
                self._phase = None
            return self._phase_peak.get(name, 0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.current()
            except Exception:  # noqa: BLE001 - a missed sample must never stop the benchmark
                pass
            self._stop.wait(self.interval)


def gib(value: int | float | None) -> str:
    return "n/a" if value is None else f"{value / 2**30:.2f} GiB"
