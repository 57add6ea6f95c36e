"""Damage done to lines on their way out of the store: broken lines and conflicting re-deliveries.

(Late events, unknown event types and future schema versions are decided where events are emitted,
in `world`; exact duplicates are the very same line written again, in `writer`.)
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any, Callable

Encode = Callable[[Any], str]

BROKEN_LINE_KINDS = ("truncated", "wrong_type", "missing_field", "not_an_object", "bad_timestamp")
BROKEN_LINE_WEIGHTS = (0.35, 0.2, 0.2, 0.1, 0.15)
LEAKED_EMAIL_KIND = "truncated_with_email"

REQUIRED_ENVELOPE_FIELDS = (
    "event_id", "tenant_id", "stream_id", "stream_version", "global_position", "event_type",
    "schema_version", "occurred_at", "recorded_at", "data",
)
BAD_TIMESTAMPS = ("not-a-timestamp", "2026-13-45T99:61:00Z", "31/12/2026 10:00:00", "")
# Amount-like fields a conflicting re-delivery changes, and by how much.
MUTABLE_NUMBERS = (("quantity", 1), ("amount_cents", 100), ("total_cents", 100), ("discount_cents", 50),
                   ("cost_cents", 100), ("unit_price_cents", 100), ("total", 1.0), ("unit_price", 1.0))


def broken_line(envelope: dict[str, Any], fresh_event_id: str, rng: random.Random, encode: Encode) -> tuple[str, str]:
    """A damaged copy of an event's line and the kind of damage. The copy has its own event id: it is a
    failed delivery attempt, not another delivery of the event, so it cannot pass for a duplicate."""
    damaged = dict(envelope)
    damaged["event_id"] = fresh_event_id
    kind = rng.choices(BROKEN_LINE_KINDS, BROKEN_LINE_WEIGHTS)[0]
    if kind == "truncated":
        text = encode(damaged)
        # Any proper prefix of a JSON object lacks its closing brace, so it never parses.
        return kind, text[: rng.randint(1, len(text) - 1)]
    if kind == "wrong_type":
        field = rng.choice(("stream_version", "global_position", "schema_version", "data", "occurred_at"))
        damaged[field] = _wrongly_typed(field, damaged[field], encode)
        return kind, encode(damaged)
    if kind == "missing_field":
        del damaged[rng.choice(REQUIRED_ENVELOPE_FIELDS)]
        return kind, encode(damaged)
    if kind == "not_an_object":
        shapes = (lambda: encode([damaged]), lambda: encode(encode(damaged)), lambda: "null", lambda: "42")
        return kind, rng.choice(shapes)()
    damaged[rng.choice(("occurred_at", "recorded_at"))] = rng.choice(BAD_TIMESTAMPS)
    return kind, encode(damaged)


def _wrongly_typed(field: str, value: Any, encode: Encode) -> Any:
    if field == "data":
        return encode(value)  # the payload as a JSON string instead of an object
    if field == "occurred_at":
        return int(datetime.fromisoformat(value).timestamp() * 1000)  # epoch millis instead of text
    return str(value)  # "3" instead of 3


def leaked_email_line(envelope: dict[str, Any], email: str, rng: random.Random, encode: Encode) -> str:
    """The envelope's line cut off a few characters after the email address: broken, yet personal."""
    text = encode(envelope)
    end = text.index(email) + len(email)
    return text[: end + rng.randint(0, 3)]


def conflicting_copy(envelope: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The same event id with different content, as a buggy producer re-sends it."""
    copy = dict(envelope)
    data = dict(copy["data"])
    for field, step in MUTABLE_NUMBERS:
        if isinstance(data.get(field), (int, float)) and not isinstance(data.get(field), bool):
            data[field] = round(data[field] + step, 2) if isinstance(step, float) else data[field] + step
            copy["data"] = data
            return copy
    if isinstance(data.get("granted"), bool):
        data["granted"] = not data["granted"]
        copy["data"] = data
        return copy
    copy["occurred_at"] = _shifted(copy["occurred_at"], rng.randint(1, 120))
    return copy


def _shifted(timestamp: str, seconds: int) -> str:
    shifted = (datetime.fromisoformat(timestamp) + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")
    return shifted.replace("+00:00", "Z") if timestamp.endswith("Z") else shifted
