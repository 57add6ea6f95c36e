"""The benchmark harness (benchmarks/, `make bench`) end to end on a tiny history: it runs and reports.

No timing is asserted (issue #8: the benchmark runs separately). The harness runs as its own process,
as `make bench` does, with its own Spark session: the three marts the DuckDB reference computes, sizes
of 10,000 and 20,000 events from two tenants, two hourly runs of 50 events each per size, in the ci
environment. At that traffic the larger history spans 16 days, past the simulator's schema switches
(OrderCreated v3 from day 14), so DuckDB's upcasting is compared too. A few minutes on two cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.config import PROJECT_ROOT

pytestmark = pytest.mark.slow

SIZES = (10_000, 20_000)
SIZE = SIZES[-1]  # the size whose figures are checked in detail
PHASE_SECONDS = {
    "land_history": ("seconds",),
    "full_rebuild": ("build_seconds", "validate_seconds", "publish_seconds", "total_seconds"),
    "spark_three_marts": ("build_seconds",),
    "duckdb": ("total_seconds", "read_seconds", "parse_seconds"),
    "hourly": ("land_seconds", "build_seconds", "validate_seconds", "publish_seconds", "total_seconds"),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("bench")
    out = folder / "bench.json"
    command = [
        sys.executable, "-m", "benchmarks",
        "--sizes", ",".join(map(str, SIZES)), "--hourly-fraction", "0.005", "--hourly-runs", "2", "--tenants", "2",
        "--marts", "orders,basket_daily,customer_360",
        "--env", "ci", "--workdir", str(folder / "work"), "--out", str(out),
        "--event-log", str(folder / "eventlog"),
    ]
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, f"the harness failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    assert not any((folder / "work" / f"size-{size}").exists() for size in SIZES), "the warehouses are deleted at the end"
    document = json.loads(Path(out).read_text())
    document["event_log_folder"] = str(folder / "eventlog")
    return document


def test_the_results_have_every_figure_and_every_target(results):
    assert results["complete"] is True
    assert results["machine"]["cores"] >= 1 and results["machine"]["memory_bytes"] > 0
    assert results["versions"]["pyspark"] and results["versions"]["duckdb"]
    figures = results["figures"]
    # Two sizes: the growth may be negative on histories this small.
    assert isinstance(figures.pop("hourly_growth"), float)
    assert all(value is not None and value > 0 for value in figures.values()), figures
    assert [t["target"] for t in results["targets"]] == [
        "hourly_growth", "hourly_vs_full", "spark_vs_duckdb", "landing", "peak_memory"
    ]
    statuses = {t["target"]: t["status"] for t in results["targets"]}
    assert set(statuses.values()) <= {"pass", "miss"}


def test_every_phase_of_the_size_is_timed(results):
    assert [size["target_events"] for size in results["sizes"]] == list(SIZES)
    size = results["sizes"][-1]
    assert size["target_events"] == SIZE and size["history"]["lines"] == SIZE
    assert size["history"]["events_landed"] > 0.95 * SIZE
    assert size["hourly_batch"] == {"lines": 50, "runs": 2}
    for section, keys in PHASE_SECONDS.items():
        for key in keys:
            assert size[section][key] > 0, f"{section}.{key}"
    # Two successive runs, each with its own batch of lines; the size's figure is the faster one.
    first, second = size["hourly"]["runs"]
    assert (first["run"], second["run"]) == (1, 2)
    for run in (first, second):
        # New events in each (the first batch landed again would land none: all duplicates).
        assert run["lines"] == 50 and 0 < run["events_landed"] <= 50
        steps = ("land", "build", "validate", "publish")
        seconds = [size["phases"][f"hourly {run['run']} {step}"]["seconds"] for step in steps]
        assert run["total_seconds"] == pytest.approx(sum(seconds))
    figure = {key: value for key, value in size["hourly"].items() if key != "runs"}
    assert figure == min((first, second), key=lambda run: run["total_seconds"])
    assert size["peak_memory_bytes"] > 0
    for run in (first, second):
        modes = {mart: built["mode"] for mart, built in run["marts"].items()}
        assert set(modes) == {"orders", "basket_daily", "customer_360"} and set(modes.values()) <= {"full", "restated"}
        assert modes["orders"] == "restated", "each hourly run is incremental"


def test_duckdb_counts_the_same_orders_as_spark(results):
    size = results["sizes"][-1]
    orders = size["marts_compared"]["orders_rows"]
    assert orders["duckdb"] == orders["spark"] == size["full_rebuild"]["rows"]["orders"] > 0


def test_the_stage_profile_splits_every_phase_of_the_run_between_the_driver_and_the_task_slots(results):
    from benchmarks import stage_profile

    every = stage_profile.profile(stage_profile.read_log(Path(results["event_log_folder"])), results)
    assert {p.size for p in every} == {"10k", "20k"}
    size = results["sizes"][-1]
    profiles = [p for p in every if p.size == "20k"]
    phases = [p for p in profiles if ": " not in p.phase]
    assert [p.phase for p in phases] == list(size["phases"])
    for p in phases:
        assert p.wall_seconds == pytest.approx(size["phases"][p.phase]["seconds"], abs=0.1)
        assert 0 <= p.stages_running_seconds <= p.wall_seconds + 0.1, p
    by_phase = {p.phase: p for p in profiles}
    assert by_phase["full build"].tasks > 0 and by_phase["full build"].slots == 2
    # The builds split at their silver summary: the two parts make the whole.
    builds = {"full build": size["full_rebuild"]} | {f"hourly {run['run']} build": run for run in size["hourly"]["runs"]}
    for build, figures in builds.items():
        silver, marts = by_phase[f"{build}: silver"], by_phase[f"{build}: marts"]
        assert silver.wall_seconds == pytest.approx(figures["silver_seconds"], abs=0.1)
        assert silver.tasks + marts.tasks == by_phase[build].tasks
        assert silver.wall_seconds + marts.wall_seconds == pytest.approx(by_phase[build].wall_seconds, abs=0.2)
    assert by_phase["duckdb"].tasks == 0, "DuckDB runs no Spark task"


def test_the_hourly_runs_go_in_rounds_across_the_sizes(results):
    """The first hourly run of every size, then the second: each run ends before the next one starts."""
    smaller, larger = results["sizes"]
    order = [(size, number) for number in (1, 2) for size in (smaller, larger)]
    spans = [
        (size["phases"][f"hourly {number} land"]["started_at_epoch"],
         size["phases"][f"hourly {number} publish"]["started_at_epoch"] + size["phases"][f"hourly {number} publish"]["seconds"])
        for size, number in order
    ]
    assert all(end <= next_start for (_start, end), (next_start, _end) in zip(spans, spans[1:])), spans
    # And every size was prepared before the first round.
    assert smaller["phases"]["duckdb"]["started_at_epoch"] < larger["phases"]["land history"]["started_at_epoch"] < spans[0][0]
