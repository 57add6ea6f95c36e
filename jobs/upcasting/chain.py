"""The generic upcasting loop: parse each known version's payload, apply the one-step upcasters up to
the newest version, and split off what cannot be projected (newer versions, invalid payloads)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.events import ENVELOPE_FIELDS
from jobs.events.catalog import EventType

# Silver keeps the envelope but the payload, which it parses into typed columns.
ENVELOPE_COLUMNS = tuple(name for name in ENVELOPE_FIELDS if name not in ("data", "metadata"))


@dataclass(frozen=True)
class Upcast:
    """One event type read from bronze: typed rows at the newest version, and what was set aside."""

    events: DataFrame  # envelope columns + the newest payload's fields
    invalid: DataFrame  # envelope columns + reason (a required payload field is null after parsing)
    held_back: DataFrame  # envelope columns + data: schema versions newer than the catalog knows


def upcast_payload(payload: Column, event_type: EventType, from_version: int) -> Column:
    """Apply the one-step upcasters from `from_version` to the newest version."""
    for version in range(from_version, event_type.newest_version):
        payload = event_type.upcasters[version](payload)
    return payload


def upcast(bronze_events: DataFrame, event_type: EventType) -> Upcast:
    """Rows of one event type (bronze columns) to typed rows at the newest schema version."""
    envelope = [F.col(name) for name in ENVELOPE_COLUMNS]
    parts = [
        bronze_events.filter(F.col("schema_version") == version).select(
            *envelope, upcast_payload(F.from_json("data", ddl), event_type, version).alias("payload")
        )
        for version, ddl in sorted(event_type.schemas.items())
    ]
    parsed = reduce(DataFrame.unionByName, parts)
    missing = _first_missing_field(event_type.required)
    checked = parsed.withColumn("_missing", missing)
    events = checked.filter(F.col("_missing").isNull()).select(*envelope, "payload.*")
    invalid = checked.filter(F.col("_missing").isNotNull()).select(
        *envelope, F.concat(F.lit("missing or mistyped payload field: "), F.col("_missing")).alias("reason")
    )
    held_back = bronze_events.filter(F.col("schema_version") > event_type.newest_version).select(
        *envelope,
        "data",
        F.lit(f"schema version newer than {event_type.newest_version}, the newest known").alias("reason"),
    )
    return Upcast(events=events, invalid=invalid, held_back=held_back)


def _first_missing_field(required: tuple[str, ...]) -> Column:
    """Name of the first required payload field that is null, or null when all are present."""
    checks = [F.when(F.col("payload").isNull() | F.col(f"payload.{name}").isNull(), F.lit(name)) for name in required]
    return F.coalesce(*checks) if checks else F.lit(None).cast("string")
