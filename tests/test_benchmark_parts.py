"""Parts of the benchmark harness (benchmarks/) that need no benchmark run: where each size's warehouse
goes, which hourly run is a size's figure and how much export its batches need, memory sampling of
processes beside the driver's (a local cluster's), and the stage profile's reading of an event log
written by a real Spark."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pytest

from benchmarks import report, stage_profile, workload
from benchmarks.harness import Options, _settings, median_run, warehouse_root
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


def test_event_log_asks_spark_for_its_event_log_in_the_folder_and_changes_nothing_else(tmp_path):
    plain = _settings(Options(env="ci"), "/tmp/somewhere")
    logged = _settings(Options(env="ci", event_log=tmp_path / "log"), "/tmp/somewhere")
    added = {k: v for k, v in logged.spark.extra_conf.items() if plain.spark.extra_conf.get(k) != v}
    assert added == {"spark.eventLog.enabled": "true", "spark.eventLog.dir": (tmp_path / "log").as_uri(),
                     "spark.eventLog.compress": "false", "spark.eventLog.rolling.enabled": "false"}
    assert (tmp_path / "log").is_dir()
    assert logged.warehouse == plain.warehouse and logged.marts == plain.marts


def test_time_covered_by_overlapping_stages_counts_once():
    assert stage_profile._covered([(0, 2), (1, 3), (5, 6), (5.5, 5.8)]) == 4


def test_two_tasks_at_once_counts_only_their_overlap_within_the_window():
    tasks = [(0, 4), (1, 2), (3, 6), (5, 9)]
    # Overlaps: 1-2 and 3-4 (then 5-6, outside a window ending at 5).
    assert stage_profile._at_least(2, tasks, 0, 5) == 2
    assert stage_profile._at_least(2, tasks, 0, 10) == 3
    assert stage_profile._at_least(1, tasks, 0, 10) == 9


# A real Spark (local[2], no Delta) writes its event log: one job of 4 tasks that sleep, then a
# shuffle; the profile must find them and the two task slots.
LOGGED_JOB = """
import sys, time
from pyspark.sql import SparkSession, functions as F
spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
         .config("spark.eventLog.enabled", "true").config("spark.eventLog.dir", sys.argv[1])
         .config("spark.eventLog.compress", "false").config("spark.eventLog.rolling.enabled", "false").getOrCreate())
print(time.time(), flush=True)
spark.sparkContext.parallelize(range(4), 4).map(lambda x: time.sleep(1) or x).collect()
spark.range(1000).repartition(3).groupBy((F.col("id") % 2).alias("k")).count().collect()
print(time.time(), flush=True)
spark.stop()
"""


def test_the_profile_reads_the_tasks_stages_and_slots_of_a_real_spark_event_log(tmp_path):
    folder = tmp_path / "eventlog"
    folder.mkdir()
    done = subprocess.run([sys.executable, "-c", LOGGED_JOB, folder.as_uri()], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    start, end = (float(line) for line in done.stdout.split())
    log = stage_profile.read_log(folder)
    assert log.slots == 2
    window = stage_profile.profile_window(log, "test", "jobs", start, end + 1)
    assert window.jobs >= 2 and window.tasks >= 4 + 3
    # Four one-second tasks on two slots: about two seconds with both slots busy, four of task time.
    assert window.task_seconds >= 4
    assert 1.5 <= window.two_or_more_tasks_seconds <= window.stages_running_seconds <= window.wall_seconds
    assert window.driver_alone_seconds == pytest.approx(window.wall_seconds - window.stages_running_seconds, abs=0.11)
    assert 0 < window.slot_use <= 1
    assert window.shuffle_write_gib >= 0 and window.median_tasks_per_stage >= 1
    before = stage_profile.profile_window(log, "test", "before", start - 60, start - 30)
    assert before.tasks == before.stages == before.jobs == 0 and before.driver_alone_seconds == 30


def test_a_missing_master_key_stops_the_harness_before_the_long_simulation(tmp_path, monkeypatch, capsys):
    from benchmarks.__main__ import main

    for name in ("LAKEHOUSE_MASTER_KEY", "LAKEHOUSE_MASTER_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LAKEHOUSE_S3_ACCESS_KEY", "key")
    monkeypatch.setenv("LAKEHOUSE_S3_SECRET_KEY", "secret")
    work = tmp_path / "work"
    assert main(["--env", "cluster", "--sizes", "1k", "--workdir", str(work), "--out", str(tmp_path / "r.json")]) == 2
    assert "no master key" in capsys.readouterr().err
    assert not work.exists(), "nothing simulated"


def _run(number: int, total: float) -> dict:
    return {"run": number, "total_seconds": total}


def test_a_sizes_hourly_figure_is_its_middle_run_by_total_time_and_of_two_the_faster():
    assert median_run([_run(1, 140.0), _run(2, 120.0), _run(3, 131.0)])["run"] == 3
    assert median_run([_run(1, 120.0), _run(2, 150.0), _run(3, 131.0)])["run"] == 3
    assert median_run([_run(1, 140.0), _run(2, 120.0)])["run"] == 2
    assert median_run([_run(1, 120.0), _run(2, 120.0)])["run"] == 1, "a tie goes to the earlier run"
    assert median_run([_run(1, 99.0)])["run"] == 1


def test_the_sizes_table_shows_every_hourly_run_in_order_with_the_figure_marked():
    runs = [_run(1, 140.4), _run(2, 120.0), _run(3, 131.0)]
    assert report._runs({**median_run(runs), "runs": runs}) == "140 120 131*"


def test_the_export_holds_every_hourly_batch_after_the_largest_history():
    one = workload.plan((2_500, 10_000), 0.01, "smallest", 4, 7, date(2026, 1, 5))
    many = workload.plan((2_500, 10_000), 0.01, "smallest", 4, 7, date(2026, 1, 5), hourly_runs=200)
    assert one.hourly_lines == many.hourly_lines == {2_500: 25, 10_000: 25}
    assert (one.hourly_runs, many.hourly_runs, many.to_dict()["hourly_runs"]) == (1, 200, 200)
    per_day = 4 * many.events_per_tenant_per_day
    assert one.days * per_day >= 10_000 + 25
    assert many.days * per_day >= 10_000 + 200 * 25 > one.days * per_day
