"""The main DAGs end to end, through `airflow dags test`, on a small simulated history of three days.

One story for the whole module (each `dags test` starts Airflow and Spark, so they are few):
1. landing lands the history and announces bronze; the marts DAG, scheduled on that asset, is queued;
2. the marts DAG builds, validates and publishes, after waiting for another writer holding the
   marts lease (a command in another process);
3. late events arrive for a day inside and a day outside a range; landing lands them;
4. a backfill restates orders and basket_daily over the range, and catches every mart up on the
   late events (the one outside the range too), so that the marts agree with silver and each other;
5. the nightly validation passes on what is published.
The tests read what the runs left: the Airflow DB of the module's own AIRFLOW_HOME and the Delta tables.
Every run has a known master key in its environment, which nothing Airflow keeps or prints may hold.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml


from jobs.airflow_env import airflow_command, airflow_environ, dags_test, migrate_db
from jobs.config import PROJECT_ROOT, load_settings
from tests.histories import History, _order_v3
from tests.privacy.audit import key_forms, occurrences

pytestmark = pytest.mark.slow  # five `airflow dags test` runs, each starting Airflow and Spark: `make test-slow`

BACKFILL_START, BACKFILL_END = "2026-01-05", "2026-01-06"
LATE_INSIDE, LATE_OUTSIDE = "2026-01-05", "2026-01-07"  # order dates of the two late orders
LATE_NET_CENTS = 3000
BACKFILLED_MARTS = ["orders", "basket_daily"]
# The DAGs, not the marts, are under test: three marts (two read from orders) keep each `dags test`
# short on two cores. Enabled through a configuration folder of the story's own (LAKEHOUSE_CONF_DIR).
STORY_MARTS = ["orders", "basket_daily", "marketing_kpis_daily"]
MASTER_KEY = secrets.token_bytes(32)  # wraps the customers' keys at landing; a secret (README "Privacy")
HOLD_SECONDS = 25  # how long another writer holds the marts lease when the marts run starts


@dataclass
class Story:
    root: Path
    environ: dict[str, str]
    landing: Path
    warehouse: str
    conf: Path
    tenant_id: str = ""
    runs: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    holder_released_at: datetime | None = None
    queued_after_landing: list[tuple] = field(default_factory=list)

    def settings(self):
        return load_settings("ci", warehouse=self.warehouse, conf_dir=self.conf)

    @property
    def airflow_db(self) -> Path:
        return self.root / "airflow_home" / "airflow.db"

    def rows(self, query: str, *args) -> list[tuple]:
        with closing(sqlite3.connect(self.airflow_db)) as db:
            return db.execute(query, args).fetchall()

    def run(self, name: str, dag_id: str, logical_date: str, conf: dict) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        process = dags_test(dag_id, logical_date, {**conf, "warehouse": self.warehouse}, self.environ, timeout=900, fail_fast=True)
        self.seconds[name] = time.monotonic() - started
        self.runs[name] = process
        if process.returncode != 0:
            # dags_test stopped the failed run at once, so its teardown never released its lease: an
            # operator would delete it; without that, the later runs would wait for a run that is gone.
            for lease in (Path(self.warehouse) / "_locks").glob("*.json"):
                if json.loads(lease.read_text())["owner"].startswith(f"airflow:{dag_id}:"):
                    lease.unlink()
        return process

    def output(self, name: str) -> str:
        return (self.runs[name].stdout + self.runs[name].stderr)[-6000:]

    def task_states(self, dag_id: str) -> dict[str, str]:
        return dict(self.rows("SELECT task_id, state FROM task_instance WHERE dag_id = ?", dag_id))


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> Story:
    root = tmp_path_factory.mktemp("dags_end_to_end")
    conf = story_conf(root / "conf")
    environ = airflow_environ(root / "airflow_home", overrides={
        "LAKEHOUSE_ENV": "ci", "LAKEHOUSE_CONF_DIR": str(conf), "LAKEHOUSE_MASTER_KEY": base64.b64encode(MASTER_KEY).decode(),
    })
    story = Story(root, environ, root / "landing", str(root / "warehouse"), conf)

    write_history(story.landing, environ)
    story.tenant_id = json.loads(next(story.landing.rglob("*.ndjson")).open().readline())["tenant_id"]
    started = time.monotonic()
    migrate_db(environ)
    # Every DAG in the DB, the marts DAG unpaused: a landing's asset event then queues a marts run.
    airflow("dags", "reserialize", environ=environ)
    airflow("dags", "unpause", "lakehouse_marts", environ=environ)
    story.seconds["airflow setup"] = time.monotonic() - started

    story.run("landing", "lakehouse_landing", "2026-01-08T00:00:00+00:00", {"landing": str(story.landing)})
    story.queued_after_landing = story.rows(
        "SELECT a.name, q.target_dag_id FROM asset_dag_run_queue q JOIN asset a ON a.id = q.asset_id"
    )

    holder = hold_marts_lease(story, HOLD_SECONDS)
    story.run("marts", "lakehouse_marts", "2026-01-08T00:30:00+00:00", {})
    holder.wait(timeout=120)
    story.holder_released_at = datetime.fromisoformat(holder.stdout.read().strip())

    write_late_orders(story.landing / "late", story.tenant_id)
    story.run("late landing", "lakehouse_landing", "2026-01-08T01:00:00+00:00", {"landing": str(story.landing)})
    story.run(
        "backfill", "lakehouse_backfill", "2026-01-08T01:10:00+00:00",
        {"start": BACKFILL_START, "end": BACKFILL_END, "marts": BACKFILLED_MARTS},
    )
    story.run("nightly validation", "lakehouse_validation", "2026-01-08T02:00:00+00:00", {})
    print("\nDAGs end to end, seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in story.seconds.items()))
    return story


@pytest.fixture(scope="module")
def spark(story):
    from jobs.spark import get_spark

    return get_spark(story.settings())


# --- 1. landing -----------------------------------------------------------------------------------


def test_the_landing_runs_succeed(story):
    for name in ("landing", "late landing"):
        assert story.runs[name].returncode == 0, story.output(name)
    assert [state for (state,) in story.rows("SELECT state FROM dag_run WHERE dag_id = 'lakehouse_landing'")] == ["success"] * 2


def test_each_landing_that_landed_events_announces_bronze_once(story):
    events = story.rows(
        "SELECT e.source_run_id FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = 'lakehouse_bronze_events'"
    )
    runs = story.rows("SELECT run_id FROM dag_run WHERE dag_id = 'lakehouse_landing'")
    assert sorted(events) == sorted(runs)


def test_an_announced_bronze_queues_a_run_of_the_marts_dag(story):
    assert ("lakehouse_bronze_events", "lakehouse_marts") in story.queued_after_landing


def test_landing_lands_every_line_of_the_history_once(story, spark):
    from pyspark.sql import functions as F

    lines = sum(1 for path in story.landing.rglob("*.ndjson") for line in path.open() if line.strip())
    ledger = delta(spark, story, "meta/landing_ledger").agg(F.sum("lines_read"), F.countDistinct("source_file")).first()
    assert (ledger[0], ledger[1]) == (lines, len(list(story.landing.rglob("*.ndjson"))))


# --- 2. marts -------------------------------------------------------------------------------------


def test_the_marts_run_succeeds_with_every_task(story):
    assert story.runs["marts"].returncode == 0, story.output("marts")
    assert story.task_states("lakehouse_marts") == dict.fromkeys(
        ("take_marts_lease", "build", "validate", "publish", "release_marts_lease"), "success"
    )


def test_the_marts_run_waited_for_the_other_writer_before_building(story):
    (build_start,) = story.rows("SELECT start_date FROM task_instance WHERE dag_id = 'lakehouse_marts' AND task_id = 'build'")[0]
    assert airflow_time(build_start) >= story.holder_released_at


def test_no_writer_lease_is_left_behind(story):
    assert sorted(p.name for p in (Path(story.warehouse) / "_locks").glob("*.json")) == []


def test_orders_has_one_row_per_order_created_in_bronze_before_the_late_events(story, spark):
    from pyspark.sql import functions as F

    before = published_by(spark, story, "lakehouse_marts", "orders")
    created = (
        projectable_events(spark, story)
        .filter((F.col("event_type") == "OrderCreated") & (F.col("landing_run_id") == first_landing_run(story)))
        .select("tenant_id", F.get_json_object("data", "$.order_id").alias("order_id"))
        .distinct()
    )
    assert before.count() == created.count() > 0
    assert rows(before.select("tenant_id", "order_id")) == rows(created)


# --- 3-4. late events and the backfill ------------------------------------------------------------


def test_the_backfill_run_succeeds_with_every_task(story):
    assert story.runs["backfill"].returncode == 0, story.output("backfill")
    assert story.task_states("lakehouse_backfill") == dict.fromkeys(
        ("check_params", "take_marts_lease", "backfill", "validate", "publish", "release_marts_lease"), "success"
    )


def test_the_backfill_publishes_the_chosen_marts(story, spark):
    from pyspark.sql import functions as F

    backfill_run = story.rows("SELECT run_id FROM dag_run WHERE dag_id = 'lakehouse_backfill'")[0][0]
    published = delta(spark, story, "meta/publications").filter(F.col("run_id") == backfill_run)
    assert set(BACKFILLED_MARTS) <= {row["mart"] for row in published.collect()}


def test_the_backfill_adds_both_late_orders_and_changes_no_other_order(story, spark):
    before = published_by(spark, story, "lakehouse_marts", "orders")
    after = delta(spark, story, "gold/orders")
    added = rows(after.select("order_id", "order_date", "is_valid", "net_cents").exceptAll(
        before.select("order_id", "order_date", "is_valid", "net_cents")))
    from datetime import date

    assert added == [
        ("late-inside", date.fromisoformat(LATE_INSIDE), True, LATE_NET_CENTS),
        ("late-outside", date.fromisoformat(LATE_OUTSIDE), True, LATE_NET_CENTS),
    ]
    assert before.exceptAll(after).count() == 0  # nothing else changed, nothing removed


def test_basket_daily_changes_on_the_late_orders_days_only(story, spark):
    from pyspark.sql import functions as F

    def per_day(frame):
        grouped = frame.groupBy(F.col("order_date").cast("string").alias("day")).agg(
            F.sum("valid_orders").alias("valid_orders"), F.sum("net_cents").alias("net_cents")
        )
        return {row["day"]: (row["valid_orders"], row["net_cents"]) for row in grouped.collect()}

    before = per_day(published_by(spark, story, "lakehouse_marts", "basket_daily"))
    after = per_day(delta(spark, story, "gold/basket_daily"))
    expected = dict(before)
    for day in (LATE_INSIDE, LATE_OUTSIDE):
        orders, cents = before.get(day, (0, 0))
        expected[day] = (orders + 1, cents + LATE_NET_CENTS)
    assert after == expected


def test_basket_daily_rows_of_other_days_are_untouched(story, spark):
    from pyspark.sql import functions as F

    other = ~F.col("order_date").cast("string").isin(LATE_INSIDE, LATE_OUTSIDE)
    before = published_by(spark, story, "lakehouse_marts", "basket_daily").filter(other)
    after = delta(spark, story, "gold/basket_daily").filter(other)
    assert rows(after) == rows(before)


def test_the_backfill_publishes_every_enabled_mart_caught_up(story, spark):
    from pyspark.sql import functions as F

    enabled = story.settings().marts.enabled
    assert sorted(enabled) == sorted(STORY_MARTS)
    backfill_run = story.rows("SELECT run_id FROM dag_run WHERE dag_id = 'lakehouse_backfill'")[0][0]
    builds = {row["mart"]: row for row in delta(spark, story, "meta/builds").filter(F.col("run_id") == backfill_run).collect()}
    published = {row["mart"] for row in delta(spark, story, "meta/publications").filter(F.col("run_id") == backfill_run).collect()}
    assert set(builds) == published == set(enabled)
    bronze = delta(spark, story, "bronze/events")
    latest = spark.sql(f"DESCRIBE HISTORY delta.`{story.warehouse}/bronze/events`").agg(F.max("version")).first()[0]
    assert bronze.count() > 0 and {row["bronze_version"] for row in builds.values()} == {latest}


# --- secrets ---------------------------------------------------------------------------------------


def test_the_master_key_is_nowhere_in_what_airflow_keeps_or_prints(story):
    """The Airflow UI shows what its database (params, rendered fields, XComs) and task logs hold, all
    under AIRFLOW_HOME; the runs' output and every file of the warehouse are searched too."""
    needles = {f"master {label}": forms for label, forms in key_forms(MASTER_KEY).items()}
    printed = {f"the {name} run's output": run.stdout + run.stderr for name, run in story.runs.items()}
    assert (story.root / "airflow_home" / "airflow.db").stat().st_size > 0
    assert occurrences(story.root / "airflow_home", needles, printed) == []
    assert occurrences(Path(story.warehouse), needles) == []


# --- 5. the nightly validation ---------------------------------------------------------------------


def test_the_nightly_validation_passes_on_the_published_marts(story):
    assert story.runs["nightly validation"].returncode == 0, story.output("nightly validation")
    assert story.task_states("lakehouse_validation") == {"validate_published": "success"}


# --- helpers --------------------------------------------------------------------------------------


def airflow(*args: str, environ: dict[str, str]) -> None:
    subprocess.run(airflow_command(*args), env=environ, cwd=PROJECT_ROOT, check=True, capture_output=True, text=True)


def airflow_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime, timezone
    from jobs.config import load_settings
    from jobs.writer_lock import holding
    warehouse, seconds, ready = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    with holding(load_settings("ci", warehouse=warehouse), ["marts"]):
        open(ready, "w").close()
        time.sleep(seconds)
        released = datetime.now(timezone.utc)
    print(released.isoformat())
    """
)


def hold_marts_lease(story: Story, seconds: float) -> subprocess.Popen:
    """Another writer (a command in its own process) holding the marts lease for `seconds`."""
    ready = story.root / "holder.ready"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, story.warehouse, str(seconds), str(ready)],
        env=story.environ, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert holder.poll() is None and time.monotonic() < deadline, "the holder did not take the lease"
        time.sleep(0.1)
    return holder


def first_landing_run(story: Story) -> str:
    return story.rows("SELECT run_id FROM dag_run WHERE dag_id = 'lakehouse_landing' ORDER BY logical_date")[0][0]


def delta(spark, story: Story, table: str):
    return spark.read.format("delta").load(f"{story.warehouse}/{table}")


def published_by(spark, story: Story, dag_id: str, mart: str):
    """The mart as the (only) run of `dag_id` published it, read back by time travel."""
    from pyspark.sql import functions as F

    run_ids = [run_id for (run_id,) in story.rows("SELECT run_id FROM dag_run WHERE dag_id = ?", dag_id)]
    log = delta(spark, story, "meta/publications").filter(
        (F.col("mart") == mart) & F.col("run_id").isin(run_ids) & (F.col("action") == "publish")
    )
    (version,) = log.select("table_version").first()
    return spark.read.format("delta").option("versionAsOf", version).load(f"{story.warehouse}/gold/{mart}")


def projectable_events(spark, story: Story):
    """Bronze, less the events silver reports it set aside (newer schema versions, invalid payloads)."""
    set_aside = delta(spark, story, "silver/held_back").select("event_id").unionByName(
        delta(spark, story, "silver/invalid_payloads").select("event_id")
    )
    return delta(spark, story, "bronze/events").join(set_aside, on="event_id", how="left_anti")


def rows(frame) -> list[tuple]:
    return sorted(tuple(row) for row in frame.collect())


def story_conf(folder: Path) -> Path:
    """The project's configuration with the CI overlay enabling STORY_MARTS only."""
    shutil.copytree(PROJECT_ROOT / "conf", folder)
    overlay = yaml.safe_load((folder / "ci.yaml").read_text())
    overlay["marts"] = {**overlay.get("marts", {}), "enabled": STORY_MARTS}
    (folder / "ci.yaml").write_text(yaml.safe_dump(overlay))
    return folder


def write_history(landing: Path, environ: dict[str, str]) -> None:
    """Three simulated days of one tenant (about 2,400 events in hourly files, anomalies included)."""
    command = [sys.executable, "-m", "jobs", "simulate", "--out", str(landing)]
    command += ["--days", "3", "--tenants", "1", "--seed", "1"]
    subprocess.run(command, env=environ, cwd=PROJECT_ROOT, check=True, capture_output=True, text=True)


def write_late_orders(folder: Path, tenant_id: str) -> None:
    """Two confirmed phone orders of LATE_NET_CENTS each, delivered late: one dated inside the backfill
    range, one after it."""
    history = History()
    for order_id, day in (("late-inside", LATE_INSIDE), ("late-outside", LATE_OUTSIDE)):
        payload = _order_v3(order_id, f"customer-{order_id}", None, "phone", [("late-product", 2, LATE_NET_CENTS // 2)])
        history.add("OrderCreated", f"order-{order_id}", payload, f"{day}T10:00:00Z", tenant_id=tenant_id,
                    schema_version=3, event_id=f"{order_id}-created")
        history.add("OrderConfirmed", f"order-{order_id}", {"order_id": order_id}, f"{day}T10:05:00Z",
                    tenant_id=tenant_id, event_id=f"{order_id}-confirmed")
    for event in history.events:  # positions after the simulated store's
        event["global_position"] += 10_000_000
    history.write(folder, "late-orders.ndjson")
