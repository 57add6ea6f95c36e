"""One row per tenant and session date: known sessions, and how many reached each funnel step."""

from __future__ import annotations

from functools import reduce
from typing import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.marts.contract import BuildContext, MartContract
from jobs.marts.orders import changed_orders
from jobs.marts.restate import (
    Changes,
    Counted,
    Restatement,
    Sources,
    counts_too_many_sessions,
    event_dates,
    keyed,
    keyed_union,
    narrowed,
    on_dates,
    semi,
)
from jobs.marts.sessions import SESSION_STARTED_COLUMNS, known_sessions

CONTRACT = MartContract(
    name="funnel_daily",
    version="1.0",
    grain="one row per tenant and UTC date of the session's start, for dates with a known session",
    key=("tenant_id", "session_date"),
    columns=(
        ("tenant_id", "string"),
        ("session_date", "date"),
        ("sessions", "bigint"),
        # The steps are not nested (a cart add without a view is possible); only
        # with_valid_order <= with_order <= sessions holds by definition.
        ("sessions_with_view", "bigint"),
        ("with_add_to_cart", "bigint"),
        ("with_order", "bigint"),
        ("with_valid_order", "bigint"),
    ),
)

INPUTS = ("SessionStarted", "ProductViewed", "CartItemAdded", "OrderCreated", "orders")

_SESSION = ["tenant_id", "session_id"]
# The columns of `orders` that `build` reads besides its key (see _touched).
ORDER_COLUMNS = ("session_id", "is_valid")


# The inputs whose rows mark a session's steps, and the flag each sets.
_STEPS = (
    ("ProductViewed", "has_view"),
    ("CartItemAdded", "has_add_to_cart"),
    ("OrderCreated", "has_order"),
    ("orders", "has_valid_order"),
)


def build(sources: Mapping[str, DataFrame], context: BuildContext) -> DataFrame:
    """Each known session counts on its own date, at every step any event of which carries its id,
    whatever that event's own date. Events naming a session without a known SessionStarted find no
    session here and are left out."""
    sessions = (
        known_sessions(sources["SessionStarted"])
        .select(*_SESSION, "session_date")
        .join(_session_steps(sources), on=_SESSION, how="left")
    )
    daily = sessions.groupBy("tenant_id", "session_date").agg(
        F.count(F.lit(1)).alias("sessions"),
        F.count("has_view").alias("sessions_with_view"),
        F.count("has_add_to_cart").alias("with_add_to_cart"),
        F.count("has_order").alias("with_order"),
        F.count("has_valid_order").alias("with_valid_order"),
    )
    return CONTRACT.conform(daily)


def _session_steps(sources: Mapping[str, DataFrame]) -> DataFrame:
    """Per session named by a row of any step's input: each step's flag, true when one of its rows names
    the session, else null. A valid order's session is that of its first OrderCreated (the orders mart's
    session_id). One aggregate over the inputs' union, which each partition combines before the
    shuffle, where a distinct and a join per step moved and sorted each input apart."""
    flags = [flag for _name, flag in _STEPS]
    rows = {name: sources[name] for name, _flag in _STEPS}
    rows["orders"] = rows["orders"].filter(F.col("is_valid"))
    marked = [
        rows[name]
        .filter(F.col("session_id").isNotNull())
        .select(*_SESSION, *(F.lit(True if other == flag else None).cast("boolean").alias(other) for other in flags))
        for name, flag in _STEPS
    ]
    union = reduce(DataFrame.unionByName, marked)
    return union.groupBy(*_SESSION).agg(*(F.max(flag).alias(flag) for flag in flags))


def _touched_sessions(changes: Changes) -> DataFrame:
    """Every session with a new event or a restated order whose session or validity changed (the
    order's session before and after)."""
    named = [
        changes.events[name].select(*_SESSION) for name in ("SessionStarted", "ProductViewed", "CartItemAdded", "OrderCreated")
    ]
    return keyed_union([*named, changed_orders(changes, ORDER_COLUMNS).select(*_SESSION)])


def _touched(changes: Changes, published: DataFrame) -> DataFrame:
    """The dates of every touched session (all its SessionStarted events' dates: a late one may become
    its first)."""
    sessions = _touched_sessions(changes)
    return event_dates(semi(changes.sources["SessionStarted"], sessions), "session_date").distinct()


def _narrow(sources: Sources, days: DataFrame) -> Sources:
    # The sessions with a SessionStarted on a touched date: every event of theirs (few, or all inputs).
    sessions = keyed(on_dates(sources["SessionStarted"], days, "session_date"), *_SESSION)
    return {name: narrowed(sources[name], sessions) for name in INPUTS}


# An hourly run restates by difference (restate.Counted): each touched session counted before and
# after its new events and its orders' changes, the difference added to its days. `touched` and
# `narrow` restate a backfill's range from all of its days' sessions.
RESTATE = Restatement(
    unit=("tenant_id", "session_date"),
    touched=_touched,
    narrow=_narrow,
    needs_whole=counts_too_many_sessions("session_date"),
    counted=Counted(
        entity=tuple(_SESSION),
        entities=_touched_sessions,
        present="sessions",
        reads={
            "SessionStarted": SESSION_STARTED_COLUMNS,
            **{name: tuple(_SESSION) for name in ("ProductViewed", "CartItemAdded", "OrderCreated")},
            "orders": ("tenant_id", *ORDER_COLUMNS),
        },
    ),
)
