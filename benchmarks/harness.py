"""One benchmark run (issue #8): for each history size, land it, rebuild every mart in full, build the
three reference marts with Spark and with DuckDB; then land and publish successive hourly batches
(`--hourly-runs`, default 3) in rounds: the first batch of every size, then the second of every size...
Each step is timed, memory sampled throughout. A size's hourly figure is its median run (the one in the
middle by total time; the faster of the two middle ones for an even count). One run on this machine
varies by several percent from run to run, and the machine's speed drifts within a benchmark (at
9ea1eeb the 10M size's hourly runs took 17% longer than in the run before, DuckDB 22%, the 2.5M size's
phases as before): rounds make such a drift weigh on every size's hourly runs alike, where a size's
runs one after the other put it all on the growth figure.

Everything the pipeline does goes through `jobs.pipeline`'s steps (land, build, validate, publish)
with the configuration `jobs.config.load_settings` gives for `--env`. The harness sets only:
- the warehouse, one per size under the warehouse root (emptied before the size, deleted after the
  last hourly round unless `--keep`): `--workdir` when the configuration's warehouse is a local folder,
  else beside it (`s3a://lakehouse/warehouse` -> `s3a://lakehouse/warehouse-bench`), so a benchmark on
  the `cluster` overlay runs on its object store and never touches the configured warehouse;
- the simulator's `events_per_tenant_per_day` (from the hourly batch, see workload.py);
- `marts.enabled` = orders, basket_daily, customer_360 for the Spark side of the DuckDB comparison
  (and, with `--marts`, for the whole run: a quicker, partial benchmark, e.g. for the smoke test).
No Spark setting is changed, except that `--event-log DIR` turns Spark's event log on (for
`python -m benchmarks.stage_profile`, which splits each phase's time between the driver and the task
slots). One Spark session serves the whole run, as one `python -m jobs run`
would hold one; its start is timed once. Before the full rebuild and before the hourly run, Spark's
and Delta's caches are dropped, so each starts as cold as a new command would (the JVM stays warm).
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from benchmarks import duckdb_marts, report, workload
from benchmarks.memory import MemorySampler, gib
from jobs.config import PROJECT_ROOT, MartSettings, Settings, load_settings, read_master_key
from scale_out.local_cluster import DEFAULT_STATE_DIR

THREE_MARTS = ("orders", "basket_daily", "customer_360")
# The phases whose memory is the pipeline's (the 8 GB target); simulation and DuckDB are reported apart.
PIPELINE_PHASES = ("land history", "full build", "full validate", "full publish", "three marts build")
HOURLY_STEPS = ("land", "build", "validate", "publish")  # each hourly run's phases: "hourly <n> <step>"


@dataclass(frozen=True)
class Options:
    sizes: tuple[int, ...] = (2_500_000, 5_000_000, 10_000_000)
    hourly_fraction: float = 0.01
    hourly_of: str = "smallest"  # or "each"
    hourly_runs: int = 3  # successive hourly batches per size; the median run is the size's figure
    tenants: int = 4
    seed: int = 7
    start_date: date = date(2026, 1, 5)
    workdir: Path = PROJECT_ROOT / ".cache" / "bench"
    warehouse_root: str | None = None  # default: the workdir, or beside a configured remote warehouse
    cluster_state: Path = DEFAULT_STATE_DIR  # `make cluster-up`'s
    out: Path = PROJECT_ROOT / "benchmarks" / "results" / "latest.json"
    env: str | None = None  # LAKEHOUSE_ENV, else local
    keep: bool = False
    sample_seconds: float = 0.25
    marts: tuple[str, ...] | None = None  # marts.enabled for the whole run; default: the configuration's
    event_log: Path | None = None  # Spark's event log into this folder (for benchmarks.stage_profile)


class Console:
    """Progress lines: time since the run started, then the message."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def say(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.started:8.1f}s] {message}", flush=True)


class Phase:
    """A timed step: its seconds, the RSS peak while it ran, and the pipeline's own progress messages
    with their time into the step (where the time went, for profiling)."""

    def __init__(self, name: str, console: Console, sampler: MemorySampler, label: str) -> None:
        self.name, self.console, self.sampler, self.label = name, console, sampler, label
        self.messages: list[tuple[float, str]] = []
        self.seconds = 0.0
        self.peak = 0
        self.rss_at_start = 0

    def __enter__(self) -> "Phase":
        self.console.say(f"{self.label}: {self.name} ...")
        self.rss_at_start = self.sampler.start_phase(self.name)
        self.started_at = time.time()  # wall clock, to match Spark's event log (benchmarks.stage_profile)
        self._started = time.perf_counter()
        return self

    def progress(self, message: str) -> None:
        at = time.perf_counter() - self._started
        self.messages.append((round(at, 2), message))
        for line in message.splitlines():
            self.console.say(f"{self.label}:   {at:7.1f}s {line}")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.seconds = time.perf_counter() - self._started
        self.peak = self.sampler.end_phase(self.name)
        outcome = "done" if exc_type is None else f"FAILED ({exc_type.__name__})"
        self.console.say(f"{self.label}: {self.name} {outcome} in {self.seconds:.1f}s, peak RSS {gib(self.peak)}")

    def seconds_until(self, prefix: str) -> float | None:
        """When the first message starting with `prefix` came (e.g. the build's silver summary)."""
        return next((at for at, message in self.messages if message.startswith(prefix)), None)

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "started_at_epoch": self.started_at, "peak_rss_bytes": self.peak,
                "rss_at_start_bytes": self.rss_at_start, "log": self.messages}


def run(options: Options) -> dict[str, Any]:
    """The whole benchmark; returns the JSON document (also written to `options.out`, after each size)."""
    from jobs import pipeline  # noqa: F401 - fails early, before the long simulation, if Spark cannot import
    from jobs.spark import hadoop_secrets

    console = Console()
    root = warehouse_root(options)
    # The session's settings: each size then has its own warehouse; this one only keeps Spark's own
    # folder (spark.sql.warehouse.dir) under the warehouse root.
    base = _settings(options, f"{root}/warehouse")
    # What landing and Spark's start need from the environment, before the long simulation.
    read_master_key(base)
    hadoop_secrets(base)
    sampled = cluster_processes(base, options.cluster_state)
    plan = workload.plan(options.sizes, options.hourly_fraction, options.hourly_of, options.tenants,
                         options.seed, options.start_date, options.hourly_runs)
    options.workdir.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "benchmark": "issue #8: hourly run vs history, full rebuild, DuckDB reference",
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "complete": False,
        "command": sys.argv,
        "machine": report.machine_info(),
        "versions": report.versions(),
        "git": report.git_state(PROJECT_ROOT),
        "configuration": _configuration(base, options, root, sampled),
        "workload": plan.to_dict(),
        "sizes": [],
    }
    console.say(
        f"benchmark: histories {', '.join(report.short_count(s) for s in plan.sizes)} events, {plan.hourly_runs} hourly "
        f"batch(es) of {', '.join(f'{n:,}' for n in dict.fromkeys(plan.hourly_lines.values()))} lines; env {base.env}, "
        f"Spark {base.spark.master} with {base.spark.driver_memory} driver memory; workdir {options.workdir}, "
        f"warehouses under {root}"
    )
    if sampled:
        console.say("memory: also sampling the local cluster's " + ", ".join(f"{name} (pid {pid})" for name, pid in sampled))
    console.say(
        f"workload: {plan.tenants} tenants x {plan.events_per_tenant_per_day:,} events a day, "
        f"{plan.days} days simulated once (seed {plan.seed}); {document['machine']['cores']} cores, "
        f"{gib(document['machine']['memory_bytes'])}, load {document['machine']['load_average_at_start']}"
    )
    with MemorySampler(options.sample_seconds, also=[pid for _, pid in sampled]) as sampler:
        try:
            export_dir = options.workdir / "export"
            with Phase("simulate", console, sampler, "export") as simulated:
                export = workload.simulate_export(plan, base.simulator, export_dir, simulated.progress)
            document["workload"].update(
                simulate_seconds=simulated.seconds, lines_simulated=export.lines, files=len(export.files),
                simulation=_simulation_counts(export.summary),
            )
            with Phase("spark start", console, sampler, "spark") as started:
                from jobs.spark import get_spark

                spark = get_spark(base)
                started.progress(f"Spark {spark.version}, {spark.sparkContext.defaultParallelism} task slots")
            document["spark_start_seconds"] = started.seconds
            sizes = [_prepare_size(size, plan, export, root, options, console, sampler) for size in plan.sizes]
            # The hourly runs in rounds: the first of every size, then the second... (see the docstring).
            for number in range(1, plan.hourly_runs + 1):
                for size in sizes:
                    size.hourly_run(number)
                document["sizes"] = [size.result() for size in sizes]
                _finish(document, sampler, options, complete=False)
            for size in sizes:
                size.release(options.keep)
        except BaseException as error:
            document["error"] = f"{type(error).__name__}: {error}"
            _finish(document, sampler, options, complete=False)
            console.say(f"benchmark stopped: {document['error']}; partial results in {options.out}")
            raise
        if not options.keep:
            shutil.rmtree(export_dir, ignore_errors=True)
        _finish(document, sampler, options, complete=True)
    console.say(f"results written to {options.out}")
    print()
    print(report.sizes_table(document["sizes"]))
    print()
    print(report.targets_table(document["targets"]))
    return document


class _Size:
    """One history size: its warehouse prepared (history landed, full rebuild, DuckDB's marts), then its
    hourly runs, one at a time (`hourly_run`); `result` gives its figures so far."""

    def __init__(self, label: str, settings: Settings, folder: Path, console: Console, sampler: MemorySampler):
        self.label, self.settings, self.folder = label, settings, folder
        self.console, self.sampler = console, sampler
        self.phases: dict[str, Phase] = {}
        self.batches: list[tuple[Path, int, int]] = []  # (folder, lines, files) of each hourly run
        self.prepared: dict[str, Any] = {}  # the figures before the hourly runs
        self.runs: list[dict[str, Any]] = []

    def phase(self, name: str) -> Phase:
        self.phases[name] = Phase(name, self.console, self.sampler, self.label)
        return self.phases[name]

    def hourly_run(self, number: int) -> None:
        """Land, build, validate and publish the `number`th batch, each step timed."""
        from jobs import pipeline
        from jobs.spark import get_spark

        spark = get_spark(self.settings)
        batch_dir, lines, files = self.batches[number - 1]
        # Each run as the next hour's command would start it: a cold cache, the last run published.
        _drop_caches(spark)
        run_id = f"bench_hourly_{number}"
        with self.phase(f"hourly {number} land") as step:
            landed = pipeline.land(self.settings, batch_dir, run_id, progress=step.progress)
        with self.phase(f"hourly {number} build") as step:
            pipeline.build(self.settings, run_id, progress=step.progress)
        with self.phase(f"hourly {number} validate") as step:
            pipeline.validate(self.settings, run_id, progress=step.progress)
        with self.phase(f"hourly {number} publish") as step:
            pipeline.publish(self.settings, run_id, progress=step.progress)
        marts = _builds_of(spark, self.settings, run_id)
        self.runs.append(_hourly_run(number, self.phases, landed, lines, files, marts))
        self.console.say(f"{self.label}: hourly run {number} of {len(self.batches)}: {self.runs[-1]['total_seconds']:.1f}s")

    def result(self) -> dict[str, Any]:
        """The size's figures: its preparation's, and its hourly runs' so far (the median one's, and each)."""
        phases = self.phases
        return {
            **self.prepared,
            "hourly_batch": {"lines": self.batches[0][1], "runs": len(self.runs)},
            # The median run's figures (its number in "run"), and every run's.
            "hourly": {**median_run(self.runs), "runs": list(self.runs)},
            "peak_memory_bytes": max(
                phases[name].peak for name in phases if name in PIPELINE_PHASES or name.startswith("hourly ")
            ),
            "phases": {name: p.to_dict() for name, p in phases.items()},
        }

    def release(self, keep: bool) -> None:
        """The size's landing files, DuckDB's output and warehouse deleted, unless `keep`."""
        from jobs import storage
        from jobs.spark import get_spark

        spark = get_spark(self.settings)
        _drop_caches(spark)
        if not keep:
            shutil.rmtree(self.folder, ignore_errors=True)
            storage.delete(spark, self.settings.warehouse)


def _prepare_size(
    size: int,
    plan: workload.Plan,
    export: workload.Export,
    root: str,
    options: Options,
    console: Console,
    sampler: MemorySampler,
) -> _Size:
    """A size's warehouse with its history landed and every mart rebuilt in full and published, and
    DuckDB's three marts beside it; each step timed. Its hourly batches are cut, not landed."""
    from jobs import pipeline, storage
    from jobs.spark import get_spark
    from jobs.tables import BRONZE_EVENTS

    label = report.short_count(size)
    # Landing files and DuckDB's output are local to the driver; the warehouse is where the root is.
    folder = options.workdir / f"size-{size}"
    shutil.rmtree(folder, ignore_errors=True)
    settings = _settings(options, f"{root}/size-{size}/warehouse")
    spark = get_spark(settings)
    storage.delete(spark, settings.warehouse)
    prepared = _Size(label, settings, folder, console, sampler)
    history_dir = folder / "landing" / "history"
    history_lines, history_files = workload.cut(export, 0, size, history_dir)
    for number in range(1, plan.hourly_runs + 1):  # each batch starts where the last ended
        batch_dir = folder / "landing" / f"hourly-{number}"
        first_line = size + (number - 1) * plan.hourly_lines[size]
        prepared.batches.append((batch_dir, *workload.cut(export, first_line, plan.hourly_lines[size], batch_dir)))
    console.say(f"{label}: history {history_lines:,} lines in {history_files} files, {plan.hourly_runs} hourly "
                f"batch(es) of {plan.hourly_lines[size]:,} lines, warehouse {settings.warehouse}")
    phase, phases = prepared.phase, prepared.phases

    _drop_caches(spark)
    with phase("land history") as step:
        landed = pipeline.land(settings, history_dir, "bench_history", progress=step.progress)

    _drop_caches(spark)
    with phase("full build") as step:
        pipeline.build(settings, "bench_full", progress=step.progress, full=True)
    with phase("full validate") as step:
        pipeline.validate(settings, "bench_full", progress=step.progress)
    with phase("full publish") as step:
        published = pipeline.publish(settings, "bench_full", progress=step.progress)
    full_rows = {p.mart: p.row_count for p in published}

    # The Spark side of the DuckDB comparison: the same build, with only the three marts enabled
    # (when they are all the run builds, that is the full build just timed).
    three_marts = phases["full build"]
    if sorted(settings.marts.enabled) != sorted(THREE_MARTS):
        three = _with_marts(settings, THREE_MARTS)
        _drop_caches(spark)
        with phase("three marts build") as three_marts:
            pipeline.build(three, "bench_three_marts", progress=three_marts.progress, full=True)
        storage.delete(spark, settings.table_path("staging", "bench_three_marts"))

    with phase("duckdb") as step:
        bronze, storage_options = storage.delta_rs_location(settings, BRONZE_EVENTS.path(settings.warehouse))
        duck = duckdb_marts.build_marts(bronze, folder / "duckdb", storage_options)
        step.progress(
            f"read {duck.events_read:,} events in {duck.read_seconds:.1f}s, parsed in {duck.parse_seconds:.1f}s, "
            + ", ".join(f"{mart} {rows:,} rows in {duck.marts_seconds[mart]:.1f}s" for mart, rows in duck.rows.items())
        )
    comparison = compare_marts(spark, settings, duck.totals)
    console.say(f"{label}: Spark vs DuckDB " + ", ".join(
        f"{name} {c['spark']:,}/{c['duckdb']:,}{'' if c['equal'] else ' DIFFERENT'}" for name, c in comparison.items()))

    prepared.prepared = {
        "target_events": size,
        "warehouse": settings.warehouse,
        "history": {
            "lines": history_lines,
            "files": history_files,
            "events_landed": landed.total("landed"),
            "duplicates": landed.total("duplicates"),
            "quarantined": landed.total("quarantined"),
        },
        "land_history": {
            "seconds": phases["land history"].seconds,
            "events_per_second": landed.total("landed") / phases["land history"].seconds,
            "lines_per_second": landed.total("lines_read") / phases["land history"].seconds,
        },
        "full_rebuild": {
            "build_seconds": phases["full build"].seconds,
            "silver_seconds": phases["full build"].seconds_until(report.SILVER),
            "validate_seconds": phases["full validate"].seconds,
            "publish_seconds": phases["full publish"].seconds,
            "total_seconds": sum(phases[n].seconds for n in ("full build", "full validate", "full publish")),
            "rows": full_rows,
        },
        # Silver is rebuilt for every event type, as `build --full` does; DuckDB parses only the 12 it needs.
        "spark_three_marts": {"build_seconds": three_marts.seconds, "silver_seconds": three_marts.seconds_until(report.SILVER),
                              "marts": list(THREE_MARTS), "same_as_full_build": "three marts build" not in phases},
        "duckdb": duck.to_dict(),
        "marts_compared": comparison,
    }
    return prepared


def _hourly_run(number: int, phases: dict[str, Phase], landed, lines: int, files: int, marts) -> dict[str, Any]:
    """One hourly run's figures, from its phases ("hourly <number> <step>") and its landing report."""
    timed = {step: phases[f"hourly {number} {step}"] for step in HOURLY_STEPS}
    return {
        "run": number,
        "lines": lines,
        "files": files,
        "events_landed": landed.total("landed"),
        "duplicates": landed.total("duplicates"),
        "quarantined": landed.total("quarantined"),
        **{f"{step}_seconds": phase.seconds for step, phase in timed.items()},
        "silver_seconds": timed["build"].seconds_until(report.SILVER),
        "total_seconds": sum(phase.seconds for phase in timed.values()),
        "events_per_second_landing": landed.total("landed") / timed["land"].seconds,
        "marts": marts,
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run in the middle by total time (of two in the middle, the faster): a run that happened,
    so that its parts add up to its total."""
    ranked = sorted(runs, key=lambda run: (run["total_seconds"], run["run"]))
    return ranked[(len(ranked) - 1) // 2]


def warehouse_root(options: Options) -> str:
    """Where the size's warehouses go: `--warehouse-root`, else the workdir when the configuration's
    warehouse is a local folder, else beside the configured warehouse (`<warehouse>-bench`)."""
    if options.warehouse_root:
        return options.warehouse_root.rstrip("/")
    configured = load_settings(options.env).warehouse
    if urlparse(configured).scheme in ("", "file"):
        return str(options.workdir)
    return f"{configured.rstrip('/')}-bench"


def cluster_processes(settings: Settings, state_dir: Path) -> list[tuple[str, int]]:
    """The local cluster's processes (`make cluster-up`), when the configuration's master is its master:
    their memory (executors are the workers' children) counts with the driver's. Nothing otherwise: a
    cluster on other machines is not this machine's memory."""
    from scale_out.local_cluster import Layout, running_components

    master_url, components = running_components(Layout(state_dir=state_dir))
    if master_url != settings.spark.master:
        return []
    return [(component.name, component.pid) for component in components]


def _settings(options: Options, warehouse: str) -> Settings:
    """The configuration for `--env` with the harness's own changes: the warehouse, `--marts`, and
    Spark's event log when `--event-log` asks for it."""
    settings = _with_marts(load_settings(options.env, warehouse=warehouse), options.marts)
    if options.event_log is None:
        return settings
    options.event_log.mkdir(parents=True, exist_ok=True)
    # One plain JSON file per run (Spark 4 otherwise rolls it into zstd-compressed parts).
    logged = {"spark.eventLog.enabled": "true", "spark.eventLog.dir": options.event_log.resolve().as_uri(),
              "spark.eventLog.compress": "false", "spark.eventLog.rolling.enabled": "false"}
    spark = dataclasses.replace(settings.spark, extra_conf={**settings.spark.extra_conf, **logged})
    return dataclasses.replace(settings, spark=spark)


def _with_marts(settings: Settings, marts: tuple[str, ...] | None) -> Settings:
    return settings if marts is None else dataclasses.replace(settings, marts=MartSettings(enabled=tuple(marts)))


def compare_marts(spark, settings: Settings, duckdb_totals: dict[str, int]) -> dict[str, dict[str, Any]]:
    """The published marts' totals (Spark, the full rebuild) beside DuckDB's: a correctness check of
    the reference, not a timing."""
    from pyspark.sql import functions as F

    from jobs.pipeline import gold_path

    def gold(mart: str):
        return spark.read.format("delta").load(gold_path(settings, mart))

    orders = gold("orders").agg(
        F.count(F.lit(1)), F.count_if(F.col("is_valid")), F.coalesce(F.sum("revenue_cents"), F.lit(0))
    ).first()
    basket = gold("basket_daily").agg(F.count(F.lit(1)), F.coalesce(F.sum("valid_orders"), F.lit(0))).first()
    customers = gold("customer_360").agg(F.count(F.lit(1)), F.coalesce(F.sum("valid_orders"), F.lit(0))).first()
    spark_totals = dict(zip(
        ("orders_rows", "orders_valid", "orders_revenue_cents", "basket_daily_rows", "basket_daily_valid_orders",
         "customer_360_rows", "customer_360_valid_orders"),
        (int(v) for v in (*orders, *basket, *customers)),
    ))
    return {
        name: {"spark": value, "duckdb": duckdb_totals.get(name), "equal": value == duckdb_totals.get(name)}
        for name, value in spark_totals.items()
    }


def _builds_of(spark, settings: Settings, run_id: str) -> dict[str, dict[str, Any]]:
    """How the run built each mart (full or restated, units restated, rows), from meta/builds."""
    from pyspark.sql import functions as F

    from jobs.tables import BUILDS, read_table

    rows = read_table(spark, BUILDS, settings.warehouse).filter(F.col("run_id") == run_id).collect()
    return {r["mart"]: {"mode": r["mode"], "restated_units": r["restated_units"], "rows": r["row_count"]} for r in rows}


def _drop_caches(spark) -> None:
    """What a new command would not have: cached frames and Delta's per-table logs (as tests/conftest.py)."""
    gc.collect()
    spark.catalog.clearCache()
    spark._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()


def _finish(document: dict[str, Any], sampler: MemorySampler, options: Options, complete: bool) -> None:
    pipeline_peak = max((s["peak_memory_bytes"] for s in document["sizes"]), default=0)
    document["figures"] = report.figures(document["sizes"], pipeline_peak, sampler.peak)
    document["targets"] = report.evaluate_targets(document["figures"], document["sizes"])
    document["memory_sampling"] = {
        "method": sampler.method, "interval_seconds": sampler.interval, "samples": sampler.samples,
        "peak_rss_bytes_whole_run": sampler.peak,
    }
    document["machine"]["load_average_at_end"] = report.machine_info()["load_average_at_start"]
    document["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    document["complete"] = complete
    report.write_json(document, options.out)


def _configuration(settings: Settings, options: Options, root: str, sampled: list[tuple[str, int]]) -> dict[str, Any]:
    from jobs.spark import spark_conf

    conf = spark_conf(settings)
    shown = ("spark.master", "spark.driver.memory", "spark.sql.shuffle.partitions")
    return {
        "env": settings.env,
        "spark": {key: conf[key] for key in shown} | {"extra_conf": dict(settings.spark.extra_conf)},
        "marts_enabled": list(settings.marts.enabled),
        "warehouse_root": root,
        "memory_sampled": ["this process and its children (the Spark driver's JVM)",
                           *(f"{name} (pid {pid}) and its children" for name, pid in sampled)],
        "hourly_fraction": options.hourly_fraction,
        "hourly_of": options.hourly_of,
        "hourly_runs": options.hourly_runs,
        "set_by_the_harness": [
            f"warehouse: one per size under {root}",
            "simulator.events_per_tenant_per_day: from the hourly batch (one batch per average hour)",
            f"marts.enabled: {', '.join(THREE_MARTS)} for the Spark side of the DuckDB comparison",
            *([f"marts.enabled: {', '.join(options.marts)} for the whole run (--marts)"] if options.marts else []),
            *([f"spark.eventLog.enabled, spark.eventLog.dir: {options.event_log} (--event-log)"]
              if options.event_log else []),
        ],
    }


def _simulation_counts(summary) -> dict[str, Any]:
    counts = summary.to_dict()
    counts.pop("files", None)
    return counts


def configure_logging() -> None:
    """Like `python -m jobs`: the project's own messages at INFO (e.g. a build falling back to reading
    bronze in full), libraries only when they warn."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("           %(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("jobs").setLevel(logging.INFO)


def sizes_argument(text: str) -> tuple[int, ...]:
    """`2500000,5000000` or `2.5M,5M,10M` or `20k`."""
    sizes = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        scale = {"k": 1_000, "m": 1_000_000}.get(part[-1:], 1)
        number = float(part[:-1] if scale > 1 else part)
        if number * scale < 1:
            raise ValueError(f"a size must be at least 1 event, got {part!r}")
        sizes.append(int(round(number * scale)))
    return tuple(sorted(set(sizes)))
