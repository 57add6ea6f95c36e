"""Incremental runs restate only what new events touch, and end where one full rebuild ends.

A simulated history (late events, duplicates, out-of-order streams, every schema version) is landed
into a warehouse in batches, hour files out of order and a delivery repeated, one pipeline run per
batch; then all of it is rebuilt in full from bronze (silver rewritten, every mart built from all events),
staged for a run that is never published. Every mart a build restates must equal its full rebuild, and
the marts as the specs define them, computed again in plain Python from the delivered files (tests/oracle).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs import pipeline
from jobs.marts import restate
from jobs.simulator import SimulatorSettings, simulate
from jobs.simulator.settings import AnomalySettings
from jobs.tables import BUILDS


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> list[Path]:
    """Three simulated days of two tenants; the hour files in the order the store wrote them."""
    out = tmp_path_factory.mktemp("history")
    settings = SimulatorSettings(
        events_per_tenant_per_day=500, anomalies=AnomalySettings(late_event_rate=0.05, exact_duplicate_rate=0.02)
    )
    simulate(out, days=3, tenants=2, seed=11, start_date=dt.date(2026, 3, 2), settings=settings)
    return sorted(path for path in out.rglob("*.ndjson"))


def _deliver(files: list[Path], landing: Path, name: str) -> None:
    target = landing / name
    target.mkdir(parents=True)
    for number, source in enumerate(files):
        shutil.copyfile(source, target / f"{number:04d}-{source.parent.parent.name}-{source.parent.name}-{source.name}")


# The marts a build restates. customer_360's windows and scores move with the as-of time, so it is
# always rebuilt whole, and so are the marts read from it (segments) and experiment_results (a few
# rows per experiment): identical by construction, and left out to keep the six runs affordable.
RESTATED = (
    "orders", "basket_daily", "cart_abandonment_daily", "product_sales_daily", "funnel_daily",
    "campaign_performance", "marketing_kpis_daily",
)


@pytest.fixture(scope="module")
def said() -> dict[str, list[str]]:
    """What each incremental run reported, by run id (filled by `incremental`)."""
    return {}


# The run whose staging holds the full rebuild of every batch's events.
FULL = "all-at-once"


@pytest.fixture(scope="module")
def batches(history) -> list[list[Path]]:
    """The history's files in the deliveries `incremental` runs, in their order."""
    third, sixth = len(history) // 3, len(history) // 6
    return [
        # The last two days, with a file of the second day delivered twice under another name.
        history[third:] + history[third : third + 1],
        # Then the first day's first half: every event in it is late for the marts already published.
        history[:sixth],
        # Then its second half, with no key set small enough to narrow an input by (as when most of the
        # history is touched): each restatement is replaced by a build in full.
        history[sixth:third],
    ]


@pytest.fixture(scope="module")
def incremental(settings, batches, tmp_path_factory, said):
    """The settings of the warehouse the history was run into in batches, then rebuilt in full (staged
    for `FULL`)."""
    root = tmp_path_factory.mktemp("incremental")
    restated = dataclasses.replace(settings, marts=dataclasses.replace(settings.marts, enabled=RESTATED))
    incremental = dataclasses.replace(restated, warehouse=str(root / "incremental"))
    landing = root / "landing"
    for number, batch in enumerate(batches):
        _deliver(batch, landing, f"batch-{number}")
        with pytest.MonkeyPatch.context() as patch:
            if number == 2:
                patch.setattr(restate, "SMALL_KEYS", 0)
            pipeline.run(incremental, landing, run_id=f"batch-{number}", progress=said.setdefault(f"batch-{number}", []).append)
    # A build, not a run: landing all of it again into a warehouse of its own and validating and
    # publishing it would add two minutes and nothing this module compares.
    pipeline.build(incremental, FULL, full=True)
    return incremental


def _builds(spark, settings):
    return {(row["run_id"], row["mart"]): row for row in spark.read.format("delta").load(BUILDS.path(settings.warehouse)).collect()}


def test_later_batches_restate_marts_instead_of_rebuilding_them(spark, incremental):
    builds = _builds(spark, incremental)
    first = {mart: builds["batch-0", mart]["mode"] for mart in incremental.marts.enabled}
    later = {mart: builds["batch-1", mart]["mode"] for mart in incremental.marts.enabled}
    assert set(first.values()) == {"full"}
    assert later == dict.fromkeys(RESTATED, "restated")


def test_a_restatement_that_needs_an_input_whole_is_a_build_in_full(spark, incremental, said):
    builds = _builds(spark, incremental)
    modes = {mart: builds["batch-2", mart]["mode"] for mart in RESTATED}
    assert modes == dict.fromkeys(RESTATED, "full")
    assert builds["batch-2", "funnel_daily"]["restated_units"] is None
    reported = {message.split(":")[0].removeprefix("built "): message for message in said["batch-2"] if message.startswith("built ")}
    # funnel_daily, restated by difference, from the sessions its new events touch; the other
    # session-based marts from their new events alone (the sessions they published on their days, or
    # the sessions of their campaigns); the others from the inputs their narrow keeps whole once their
    # touched units are known.
    assert "in full (its new events touch more (tenant_id, session_id) than a restatement reads by key)" in reported[
        "funnel_daily"
    ]
    for mart in ("marketing_kpis_daily", "campaign_performance"):
        assert "in full (its new events touch units that need an input whole)" in reported[mart]
    assert "touched (tenant_id, order_id) need " in reported["orders"]
    assert "need orders whole" in reported["basket_daily"]
    assert "need orders, OrderCreated whole" in reported["product_sales_daily"]


def test_a_batch_restates_fewer_days_than_the_mart_has(spark, incremental):
    restated = _builds(spark, incremental)["batch-1", "funnel_daily"]["restated_units"]
    days = spark.read.format("delta").load(pipeline.gold_path(incremental, "funnel_daily")).count()
    assert 0 < restated < days


@pytest.mark.parametrize("mart", RESTATED)
def test_incremental_runs_and_a_full_rebuild_give_identical_marts(spark, incremental, mart):
    got = spark.read.format("delta").load(pipeline.gold_path(incremental, mart))
    expected = spark.read.format("delta").load(pipeline.staging_path(incremental, FULL, mart))
    assert expected.count() > 0
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


@pytest.fixture(scope="module")
def oracle(batches):
    """The marts as the specs define them, computed in plain Python from the files delivered to
    `incremental` in their order (tests/oracle, written from ../shared/spec alone, not from jobs/)."""
    from tests.oracle import events, marts

    landed = events.land([path for batch in batches for path in batch])
    return {mart: marts.computed(mart, landed, events.as_of(landed)) for mart in RESTATED}


# Before the runs below, which land more events into the same warehouse.
@pytest.mark.parametrize("mart", RESTATED)
def test_the_batched_marts_equal_an_independent_computation_from_the_specs(spark, incremental, oracle, mart):
    from jobs.marts import mart_module
    from tests.oracle.compare import differences

    published = spark.read.format("delta").load(pipeline.gold_path(incremental, mart))
    assert oracle[mart], "the oracle computed no rows"
    assert differences(published, oracle[mart], mart_module(mart).CONTRACT.key) == []


# The marts of the run with nothing new: one restated by key, one whose new events name its units. Only
# they are enabled: each mart more costs that run seconds on two cores and adds no other case.
NOTHING_NEW = ("orders", "funnel_daily")


def test_a_run_with_nothing_new_restates_nothing_and_changes_no_mart(spark, incremental, tmp_path):
    before = {mart: spark.read.format("delta").load(pipeline.gold_path(incremental, mart)).collect() for mart in NOTHING_NEW}
    (tmp_path / "empty-landing").mkdir()
    enabled = dataclasses.replace(incremental, marts=dataclasses.replace(incremental.marts, enabled=NOTHING_NEW))
    pipeline.run(enabled, tmp_path / "empty-landing", run_id="nothing-new")
    builds = _builds(spark, incremental)
    assert {mart: builds["nothing-new", mart]["restated_units"] for mart in NOTHING_NEW} == dict.fromkeys(NOTHING_NEW, 0)
    for mart, rows in before.items():
        after = spark.read.format("delta").load(pipeline.gold_path(incremental, mart))
        assert sorted(after.collect()) == sorted(rows)


def _daily(spark, settings, mart, date_column):
    rows = spark.read.format("delta").load(pipeline.gold_path(settings, mart)).collect()
    by_day: dict = {}
    for row in rows:
        by_day.setdefault((row["tenant_id"], row[date_column]), []).append(row)
    return {day: sorted(day_rows) for day, day_rows in by_day.items()}


def test_a_backfill_over_a_range_with_late_events_changes_exactly_those_days(spark, incremental):
    from tests.histories import History
    from tests.marts.histories_marketing import place_order

    warehouse = incremental  # the batched runs' warehouse, which holds the staged full rebuild too
    landing = Path(warehouse.warehouse).parent / "landing"
    tenant = spark.read.format("delta").load(pipeline.gold_path(warehouse, "orders")).first()["tenant_id"]
    first_day, last_day = (tenant, dt.date(2026, 3, 2)), (tenant, dt.date(2026, 3, 4))

    # Two late deliveries (one History, so that their event ids differ): a valid order created on the
    # first day, inside the range, then one on the last day, outside it.
    late = History()
    place_order(late, "late-1", None, None, 4321, "2026-03-02T10:00:00Z", tenant_id=tenant)
    inside = len(late.events)
    place_order(late, "late-3", None, None, 1234, "2026-03-04T10:00:00Z", tenant_id=tenant)
    later = History()
    late.events, later.events = late.events[:inside], late.events[inside:]
    late.write(landing / "late-inside")
    pipeline.land(warehouse, landing, "late-inside")
    before = {mart: _daily(spark, warehouse, mart, column) for mart, column in DAILY.items()}

    pipeline.backfill(warehouse, "backfill", dt.date(2026, 3, 2), dt.date(2026, 3, 2), marts=["basket_daily"])
    pipeline.validate(warehouse, "backfill")  # the reconciliation gate: every mart agrees with silver
    pipeline.publish(warehouse, "backfill")
    after = {mart: _daily(spark, warehouse, mart, column) for mart, column in DAILY.items()}
    for mart in ("basket_daily", "marketing_kpis_daily", "product_sales_daily"):
        assert _changed(before[mart], after[mart]) == {first_day}, mart
    # The funnel has nothing from an order without session or cart: unchanged.
    assert after["funnel_daily"] == before["funnel_daily"]
    # basket_daily restated every tenant's day in the range, and nothing else.
    in_range = {day for day in after["basket_daily"] if day[1] == dt.date(2026, 3, 2)}
    assert len(in_range) > 1
    assert _builds(spark, warehouse)["backfill", "basket_daily"]["restated_units"] == len(in_range)

    # Then a late order on the last day, outside the range, and the same backfill again: the range is
    # restated to the same rows, and every mart catches up on the pending order like a regular run.
    later.write(landing / "late-outside")
    pipeline.land(warehouse, landing, "late-outside")
    pipeline.backfill(warehouse, "again", dt.date(2026, 3, 2), dt.date(2026, 3, 2), marts=["basket_daily"])
    pipeline.validate(warehouse, "again")
    pipeline.publish(warehouse, "again")
    again = _daily(spark, warehouse, "basket_daily", "order_date")
    assert _changed(after["basket_daily"], again) == {last_day}
    assert _builds(spark, warehouse)["again", "basket_daily"]["restated_units"] == len(in_range) + 1


def _changed(before: dict, after: dict) -> set:
    return {day for day in before.keys() | after.keys() if before.get(day) != after.get(day)}


DAILY = {
    "basket_daily": "order_date",
    "marketing_kpis_daily": "activity_date",
    "product_sales_daily": "activity_date",
    "funnel_daily": "session_date",
}


# The marts restated from the orders whose columns they read changed (restate.changed): each must build
# the same rows whatever `orders` holds in its other columns.
READ_FROM_ORDERS = ("basket_daily", "product_sales_daily", "funnel_daily", "campaign_performance", "marketing_kpis_daily")


@pytest.mark.parametrize("mart", READ_FROM_ORDERS)
def test_a_mart_reads_only_the_order_columns_it_declares(spark, incremental, mart):
    from jobs.marts import mart_module, orders
    from jobs.marts.contract import BuildContext
    from jobs.silver import read_silver

    warehouse = incremental
    module = mart_module(mart)
    sources = {name: read_silver(spark, warehouse.warehouse, name) for name in module.INPUTS if name != "orders"}
    published = spark.read.format("delta").load(pipeline.gold_path(warehouse, "orders"))
    kept = {*orders.CONTRACT.key, *module.ORDER_COLUMNS}
    assert kept < set(published.columns)
    others = published.select(*[F.col(n) if n in kept else _another_value(published, n) for n in published.columns])
    context = BuildContext(as_of=dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc))

    expected = module.build({**sources, "orders": published}, context)
    assert expected.count() > 0
    got = module.build({**sources, "orders": others}, context)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def _another_value(frame, name):
    """Column `name` of `frame` with every value changed (nulls too), in its own type."""
    column, kind = F.col(name), frame.schema[name].dataType.typeName()
    changed = {
        "string": F.concat(F.coalesce(column, F.lit("")), F.lit("-other")),
        "boolean": ~F.coalesce(column, F.lit(False)),
        "date": F.date_add(F.coalesce(column, F.lit(dt.date(2026, 1, 1))), 1),
        "timestamp": F.coalesce(column, F.lit(dt.datetime(2026, 1, 1))) + F.expr("INTERVAL 1 HOUR"),
    }.get(kind, F.coalesce(column, F.lit(0)) + 7)
    return changed.cast(frame.schema[name].dataType).alias(name)
