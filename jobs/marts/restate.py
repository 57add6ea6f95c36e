"""Incremental restatement: which rows of a mart the new events touch, and which inputs rebuild them.

A mart that can be restated declares a `RESTATE = Restatement(...)`:
- `unit`: the columns of the mart that name a unit of replacement (e.g. tenant and date). A run
  replaces whole units: the published rows of a touched unit are dropped and the unit is rebuilt.
- `touched(changes, published)`: the units the run's changes touch, old and new (an order that moved
  date touches both dates); `published` is the mart as last published. It may over-approximate:
  rebuilding an untouched unit from all events gives the rows it already had.
- `narrow(sources, units)`: inputs limited to what rebuilding those units needs (every event of
  every stream that feeds them). The rebuilt rows are kept only for the touched units, so narrowing
  may keep too much, never too little.
- `counted` (optional, `Counted`): the mart's rows are counts summed over entities (sessions), and a
  run restates it by difference: the touched entities counted before and after the run's changes,
  the difference added to the published rows (funnel_daily; `touched` and `narrow` then serve a
  backfill's range only).
A mart without `RESTATE` (customer_360: its windows and scores move with the as-of time) is rebuilt
whole from its inputs at every run. tests/test_incremental.py (one cut, in `make test`) and
tests/test_batch_splits.py (cuts chosen by Hypothesis, `make test-slow`) check that incremental runs
and one full rebuild give identical marts.

Key sets (`keyed`, `keyed_union`, `union_all`, and the units in jobs/pipeline.py) go through
`materialized`: an hourly run touches a few hundred orders or days, computed once on the driver and broadcast to the
joins (`joinable`), so each semi join scans a silver table instead of sorting all of it against the
keys (at 2.5M events of history such a sort-merge join ran a 2 GB driver out of memory). It also cuts
the lineage that would otherwise carry each upstream mart's restatement plan into every downstream one.
A `narrow` narrows by a key set only when it is that small (`narrowed`): with more keys (most days
touched, a long backfill) it keeps whole inputs, which cost one build in full instead of a sort of
each input against the keys before the build's own joins. When a `narrow` keeps any input whole, the
pipeline builds the mart in full (recorded as `full`): the build reads that input whole either way, and
a restatement adds the merge with the published rows. In the benchmark's hourly runs (2.5M and 10M
events of history), campaign_performance and marketing_kpis_daily restated with SessionStarted whole
took 7.5-12.6 s where their builds in full took 2.2-4.0 s, and grew more with history than those builds.

A mart may also tell that from its new events alone, before its touched units are computed
(`needs_whole`): marketing_kpis_daily (and funnel_daily in a backfill's range) narrow by the sessions
with a SessionStarted on a touched day, and the sessions they published for the days of the new
SessionStarted events (touched days, at least) may already count more than `SMALL_KEYS`
(`counts_too_many_sessions`). Finding the touched days and collecting that key set scans the whole
SessionStarted table twice: at 10M events, funnel_daily took 26.7 s that way, where its build in full
took 9.6 s. campaign_performance narrows by the sessions of its touched campaigns, among them the
campaigns of the new SessionStarted events (`campaign_sessions_too_many`): their events counted where
they are, not collected to the driver.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from functools import reduce
from typing import Callable, Mapping, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, StringType

# At most this many keys are brought to the driver and broadcast (a few MB).
SMALL_KEYS = 100_000
# The key sets `materialized` computed on the driver: joins on them are hinted to broadcast them. The
# hint is given at the join (`joinable`), not on the frame, where Spark would warn for every other use.
_SMALL: "weakref.WeakSet[DataFrame]" = weakref.WeakSet()
# Types whose values come back from the driver unchanged (a timestamp would pass through Python's
# local time zone, not the session's).
_EXACT_TYPES = (StringType, DateType)

Sources = Mapping[str, DataFrame]


@dataclass(frozen=True)
class Changes:
    """What a run restates from.

    `events[name]`: the event type's new events (silver columns) since the marts were published.
    `marts[name]`: for each upstream mart restated in this run, its rows of the touched units before
    (published) and after (rebuilt), so downstream marts see where a row was and where it is now.
    `sources`: every input of the run in full (silver tables and this run's upstream marts).
    """

    events: Mapping[str, DataFrame]
    marts: Mapping[str, DataFrame]
    sources: Sources


@dataclass(frozen=True)
class Restatement:
    unit: tuple[str, ...]
    touched: Callable[[Changes, DataFrame], DataFrame]
    narrow: Callable[[Sources, DataFrame], Sources]
    # Whether the changes are known, before their units are computed, to need an input whole (their
    # `narrow` would keep it so): the mart is then built in full. None: not known until `narrow`.
    needs_whole: Callable[[Changes, DataFrame], bool] | None = None
    # A mart of counts may instead be restated by difference (`Counted`, below): then `touched` and
    # `narrow` serve only a backfill's range, which is restated from all data as it must be.
    counted: "Counted | None" = None


@dataclass(frozen=True)
class Counted:
    """A mart whose rows are counts per unit, summed over entities (e.g. sessions) of what each one's
    own rows contribute, restated by difference: each touched entity's rows are counted as they were
    before the run's changes and as they are after, and the difference per unit is added to the
    published rows.

    `entities(changes)`: the touched entities' keys (`entity` columns, which every input carries: a
    row of an input belongs to the entity they name), as `keyed_union` gives them. An entity is touched
    when a new event names it or an upstream mart's changed rows (before or after) do.
    `present`: the count column a row exists by: a unit whose count falls to 0 loses its row, as a
    build in full would not produce it.

    Why: a restatement by unit rebuilds each touched day from all the sessions started on it, and an
    hourly batch touches nearly every day of the history (late lifecycle events), with more sessions
    than `SMALL_KEYS`: funnel_daily was then built in full from all of history every hour (28 s at 10M
    events). The entities an hour touches are a few thousand, whatever the history: their rows are read
    through a broadcast semi join (a scan of each input, no sort), counted twice and subtracted.
    """

    entity: tuple[str, ...]
    entities: Callable[[Changes], DataFrame]
    present: str
    # Per input, the columns the mart's build reads: the touched entities' rows are kept in memory
    # with only these (and an event's id), read once for both counts. At 10M events, keeping every
    # column of ProductViewed's rows read all of them from the whole table (the semi join comes after
    # the scan): the restatement took 10 s.
    reads: Mapping[str, tuple[str, ...]]


def counted_difference(
    counted: Counted,
    build: Callable[[Sources], DataFrame],
    inputs: Sequence[str],
    changes: Changes,
    published_marts: Sources,
    key: Sequence[str],
) -> tuple[DataFrame, int, int] | None:
    """The difference a run's changes make to a `Counted` mart per unit (`key`): the rows `build`
    counts from the touched entities' rows of `inputs` after the changes, less those it counts from
    their rows before (every column but the key), one row per unit of a touched entity, before or
    after; with the numbers of those units and of the touched entities. None when the touched entities
    are more than `SMALL_KEYS` (the mart is then built in full).

    After: the inputs as the run reads them (`changes.sources`). Before: the same less the new events
    (bronze keeps one row per event id, so an event is new or old, never both), and each upstream
    mart as published (`published_marts`), which is what this mart's published build read."""
    entities = counted.entities(changes)
    if entities not in _SMALL:
        return None

    def read(name: str, frame: DataFrame) -> DataFrame:
        ids = ("event_id",) if name in changes.events else ()
        return semi(frame.select(*counted.reads[name], *ids), entities, counted.entity)

    after = {name: read(name, changes.sources[name]).cache() for name in inputs}
    try:
        before = {
            name: (
                frame.join(changes.events[name].select("event_id"), on="event_id", how="left_anti")
                if name in changes.events
                else read(name, published_marts[name])
            )
            for name, frame in after.items()
        }
        counted_after, counted_before = build(after), build(before)
        counts = [name for name in counted_after.columns if name not in key]
        signed = [
            rows.select(*key, *((F.col(name) * sign).cast("bigint").alias(name) for name in counts))
            for rows, sign in ((counted_after, 1), (counted_before, -1))
        ]
        summed = reduce(DataFrame.unionByName, signed).groupBy(*key).agg(*(F.sum(name).alias(name) for name in counts))
        rows = summed.collect()  # one row per unit of a touched entity: few
        return summed.sparkSession.createDataFrame(rows, summed.schema), len(rows), entities.count()
    finally:
        for frame in after.values():
            frame.unpersist()


def added(published: DataFrame, difference: DataFrame, key: Sequence[str]) -> DataFrame:
    """`published` with `difference` added per unit (`key`; a unit on one side only counts from 0).
    Rows whose `Counted.present` count is 0 are still there (see `kept`), and so are negative counts."""
    counts = [name for name in published.columns if name not in key]
    old, new = published.alias("old"), difference.alias("new")
    summed = [(F.coalesce(F.col(f"old.{n}"), F.lit(0)) + F.coalesce(F.col(f"new.{n}"), F.lit(0))).alias(n)
              for n in counts]
    return old.join(new, on=list(key), how="full_outer").select(*key, *summed)


def below_zero(total: DataFrame, key: Sequence[str]) -> int:
    """How many units of an `added` total count below 0 somewhere: published rows that the events
    before the run do not explain (the mart is then built in full instead)."""
    counts = [F.col(name) < 0 for name in total.columns if name not in key]
    return total.filter(reduce(lambda a, b: a | b, counts)).count()


def kept(total: DataFrame, counted: Counted) -> DataFrame:
    """The rows of an `added` total that exist: those whose `present` count is not 0."""
    return total.filter(F.col(counted.present) != 0)


def union_all(frames: Sequence[DataFrame]) -> DataFrame:
    return materialized(reduce(DataFrame.unionByName, frames).distinct())


def changed(rows: DataFrame, key: Sequence[str], columns: Sequence[str]) -> DataFrame:
    """The rows of an upstream mart's changes (`Changes.marts[name]`: its touched units' rows as
    published and as rebuilt) whose `columns` differ between the two, or that are on one side only;
    selected to `key` and `columns`. A mart that reads only `columns` of the upstream one is touched by
    these alone: most units restated upstream come out as they were (`orders` restates every order
    of a customer with a new event, and a shipment changes only an order's status)."""
    selected = rows.select(*key, *columns)
    return selected.groupBy(*selected.columns).count().filter(F.col("count") == 1).drop("count")


def event_dates(events: DataFrame, name: str) -> DataFrame:
    """(tenant_id, <name>): the UTC dates the events occurred on."""
    return events.select("tenant_id", F.to_date("occurred_at").alias(name))


def keyed(frame: DataFrame, *columns: str | Column) -> DataFrame:
    """Distinct non-null keys: the columns selected, rows with a null among them dropped (materialized)."""
    return keyed_union([frame.select(*columns)])


def keyed_union(selections: Sequence[DataFrame]) -> DataFrame:
    """The keys `keyed` would find in each selection (frames of the same key columns), all of them
    collected at once, where a `union_all` of `keyed` sets collects each set and then their union (in an
    hourly run, each collect is a Spark job of about half a second, whatever the batch)."""
    union = reduce(DataFrame.unionByName, selections)
    return materialized(union.dropna().distinct())


def materialized(keys: DataFrame, limit: int | None = None) -> DataFrame:
    """`keys` computed now, as driver-side rows that `joinable` broadcasts, when it has at most `limit`
    (default `SMALL_KEYS`) rows of strings and dates; otherwise `keys` itself, left to Spark's joins (a
    large restatement, such as a backfill of many days, computes its keys a second time then)."""
    limit = SMALL_KEYS if limit is None else limit
    if not all(isinstance(field.dataType, _EXACT_TYPES) for field in keys.schema.fields):
        return keys
    rows = keys.limit(limit + 1).collect()
    if len(rows) > limit:
        return keys
    small = keys.sparkSession.createDataFrame(rows, keys.schema)
    _SMALL.add(small)
    return small


def joinable(keys: DataFrame) -> DataFrame:
    """`keys` for the right side of a join: hinted to be broadcast when `materialized` made it small."""
    return F.broadcast(keys) if keys in _SMALL else keys


def renamed(keys: DataFrame, existing: str, new: str) -> DataFrame:
    """`keys` with a column renamed, still broadcast by `joinable` when it was."""
    frame = keys.withColumnRenamed(existing, new)
    if keys in _SMALL:
        _SMALL.add(frame)
    return frame


def semi(frame: DataFrame, keys: DataFrame, on: Sequence[str] | None = None) -> DataFrame:
    """The rows of `frame` whose key is in `keys` (all of `keys`' columns, unless `on` says)."""
    return frame.join(joinable(keys), on=list(on or keys.columns), how="left_semi")


def narrowed(frame: DataFrame, keys: DataFrame, on: Sequence[str] | None = None) -> DataFrame:
    """For a `narrow`: `semi(frame, keys)` when `materialized` made `keys` small, else `frame` whole.

    Narrowing by many keys would sort the whole input against them, and the build's own joins sort
    it again: at 10M events of history, funnel_daily narrowed to 1.8M sessions ran a 2 GB driver out
    of memory where its build from whole inputs takes 15 s. Keeping too much is allowed, and the rows
    rebuilt are kept only for the touched units."""
    return semi(frame, keys, on) if keys in _SMALL else frame


def on_dates(events: DataFrame, units: DataFrame, date_name: str) -> DataFrame:
    """The events that occurred on a unit's date (units: tenant_id and `date_name`)."""
    dated = events.withColumn(date_name, F.to_date("occurred_at"))
    return dated.join(joinable(units), on=list(units.columns), how="left_semi").drop(date_name)


def streams_touching(events: DataFrame, stream_key: Sequence[str], units: DataFrame, date_name: str) -> DataFrame:
    """Every event of the streams (by `stream_key`) that have at least one event on a unit's date.

    Filtering single events by date would cut streams, and "first in stream" would then pick the
    wrong event: a stream is kept whole or not at all (all of them when they are many: `narrowed`).
    """
    return narrowed(events, keyed(on_dates(events, units, date_name), *stream_key))


def counts_too_many_sessions(date_name: str) -> Callable[[Changes, DataFrame], bool]:
    """A `needs_whole` for a mart that narrows by the sessions with a SessionStarted on a touched day
    (`streams_touching`) and publishes a `sessions` count per (tenant_id, `date_name`): whether the
    published sessions of the days the new SessionStarted events occurred on exceed `SMALL_KEYS`.

    Those days are touched, and the key set the narrow collects holds at least the sessions counted on
    them (every session with a SessionStarted on the day, not only those started there first), so it
    would be too large to narrow by. A wrong guess costs time only: a build in full is always correct."""

    def needs_whole(changes: Changes, published: DataFrame) -> bool:
        days = event_dates(changes.events["SessionStarted"], date_name).distinct()
        counted = published.join(days, on=["tenant_id", date_name], how="left_semi").agg(F.sum("sessions")).first()[0]
        return (counted or 0) > SMALL_KEYS

    return needs_whole


def campaign_sessions_too_many(changes: Changes, published: DataFrame) -> bool:
    """A `needs_whole` for a mart that narrows SessionStarted by the sessions of its touched campaigns,
    which include the campaigns the new SessionStarted events name: whether the SessionStarted events
    naming those campaigns exceed `SMALL_KEYS`.

    Events, not sessions: a session has at least one, so more events than that may still be few enough
    sessions (the mart is then built in full where it could have been restated: a wrong guess costs
    time only). Counting events stops once it has seen `SMALL_KEYS` + 1 of them, where counting distinct
    sessions shuffled all of them first: at 10M events of history, with the 11,088 SessionStarted events
    of the last 60,000 global positions as the new ones, 0.9-1.1 s against 2.6-3.0 s (warm JVM, three
    alternated runs each, both True)."""
    campaigns = keyed(changes.events["SessionStarted"], "tenant_id", "campaign")
    started = changes.sources["SessionStarted"]
    naming = started.join(joinable(campaigns), on=["tenant_id", "campaign"], how="left_semi")
    return naming.limit(SMALL_KEYS + 1).count() > SMALL_KEYS
