"""Parts of the benchmark harness (benchmarks/) that need no benchmark run: where each size's warehouse
goes, and memory sampling of processes beside the driver's (a local cluster's)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks.harness import Options, warehouse_root
from benchmarks.memory import MemorySampler

HELD_MB = 200
# Holds HELD_MB of resident memory (every page written) until its input closes.
HOLDER = (
    "import sys\n"
    f"block = bytearray({HELD_MB} * 2**20)\n"
    "for at in range(0, len(block), 4096): block[at] = 1\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.fixture
def holders():
    processes = [subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                 for _ in range(2)]
    try:
        for process in processes:
            assert process.stdout.readline().strip() == "ready"
        yield processes
    finally:
        for process in processes:
            process.stdin.close()
            process.wait(timeout=30)


def test_processes_named_beside_the_sampled_one_add_their_memory_to_each_sample(holders):
    first, second = holders
    alone = MemorySampler(pid=first.pid).current()
    with MemorySampler(interval=0.05, pid=first.pid, also=[second.pid]) as sampler:
        both = sampler.current()
    assert alone >= HELD_MB * 2**20
    assert both - alone >= 0.9 * HELD_MB * 2**20
    assert sampler.peak >= both


def test_a_local_warehouse_puts_each_size_under_the_workdir(tmp_path, monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_WAREHOUSE", raising=False)
    assert warehouse_root(Options(env="ci", workdir=tmp_path)) == str(tmp_path)


def test_a_remote_warehouse_puts_each_size_beside_it_never_inside_it(tmp_path, monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_WAREHOUSE", raising=False)
    assert warehouse_root(Options(env="cluster", workdir=tmp_path)) == "s3a://lakehouse/warehouse-bench"
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", "s3a://data/team/lake/")
    assert warehouse_root(Options(env="cluster", workdir=tmp_path)) == "s3a://data/team/lake-bench"


def test_a_warehouse_root_given_is_used_as_it_is(tmp_path):
    given = Options(env="cluster", workdir=tmp_path, warehouse_root="s3a://scratch/bench/")
    assert warehouse_root(given) == "s3a://scratch/bench"
