"""Landing, as events.md describes it: parse, validate, deduplicate, quarantine, upcast; and sessions.

Spec choices made here (each is repeated where the code implements it):
- Every field of the envelope table is required, `metadata` included (an object; its contents are not
  checked). Integers are JSON integers: `1.0` and `true` are not integers. Extra envelope fields are ignored.
- A timestamp must parse as ISO-8601 (Python's `datetime.fromisoformat`) and carry an offset; a timestamp
  without an offset is quarantined like an unparseable one (business time would be ambiguous).
- A `schema_version` below 1 is quarantined (`invalid_schema_version`): it is neither known nor newer.
- Lines that are empty or only whitespace carry no event and are skipped (not quarantined).
- "Identical content" means the same parsed JSON object (key order and whitespace do not matter, but
  `1` and `1.0` differ). Deduplication and conflicts are decided among lines with a valid envelope,
  before payload checks; the first delivery of an event_id claims it, whatever happens to it next.
- Payloads of known types at a known version are checked lightly (`invalid_payload` in quarantine): every
  field the catalog lists for the received version must be present (it may be null), except that the
  numbers the marts compute with must be JSON numbers of the right kind (cents and quantities integers,
  version 1 amounts integers or decimals), `items` a list of objects with their listed fields, and
  `acquisition` an object with its listed fields. Held-back and unknown events are not checked.
- "The nearest cent" rounds a tie half away from zero (145.005 -> 14501 cents), from the decimal text of
  the JSON number (no binary floating-point error: 145.1 -> 14510).
"""

from __future__ import annotations

import copy
import gzip
import json
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# The newest schema version the project knows per event type (the catalog of events.md).
NEWEST_VERSIONS: dict[str, int] = {
    "CustomerRegistered": 2,
    "CustomerEmailChanged": 1,
    "MarketingConsentChanged": 1,
    "CustomerErasureRequested": 1,
    "SessionStarted": 1,
    "ProductViewed": 1,
    "ExperimentExposed": 1,
    "CartItemAdded": 2,
    "CartItemRemoved": 1,
    "OrderCreated": 3,
    "PromotionApplied": 1,
    "OrderConfirmed": 1,
    "PaymentCaptured": 1,
    "OrderShipped": 1,
    "OrderDelivered": 1,
    "OrderCancelled": 1,
    "OrderRefunded": 1,
    "EmailCampaignSent": 1,
    "EmailOpened": 1,
    "EmailClicked": 1,
    "CampaignSpendRecorded": 1,
}

# Envelope field -> the Python type its JSON type parses to.
ENVELOPE: dict[str, type] = {
    "event_id": str,
    "tenant_id": str,
    "stream_id": str,
    "stream_version": int,
    "global_position": int,
    "event_type": str,
    "schema_version": int,
    "occurred_at": str,
    "recorded_at": str,
    "data": dict,
    "metadata": dict,
}

# Payload fields per (event type, schema version): name -> kind. Kinds: "any" (present, may be null),
# "int" (JSON integer), "number" (JSON integer or decimal), "bool", "items" (list of item objects),
# "acquisition" (object with source, medium, campaign).
_IDS = {"session_id": "any", "anonymous_id": "any", "customer_id": "any"}
PAYLOADS: dict[tuple[str, int], dict[str, str]] = {
    ("CustomerRegistered", 1): {"customer_id": "any", "email": "any", "country": "any", "referrer": "any"},
    ("CustomerRegistered", 2): {"customer_id": "any", "email": "any", "country": "any", "acquisition": "acquisition"},
    ("CustomerEmailChanged", 1): {"customer_id": "any", "email": "any"},
    ("MarketingConsentChanged", 1): {"customer_id": "any", "channel": "any", "granted": "bool"},
    ("CustomerErasureRequested", 1): {"customer_id": "any"},
    ("SessionStarted", 1): {
        **_IDS, "source": "any", "medium": "any", "campaign": "any", "device": "any", "landing_page": "any",
    },
    ("ProductViewed", 1): {**_IDS, "product_id": "any", "category": "any"},
    ("ExperimentExposed", 1): {"experiment_id": "any", "variant": "any", **_IDS},
    ("CartItemAdded", 1): {
        "cart_id": "any", "session_id": "any", "customer_id": "any", "product_id": "any", "category": "any",
        "quantity": "int", "unit_price": "number",
    },
    ("CartItemAdded", 2): {
        "cart_id": "any", "session_id": "any", "customer_id": "any", "product_id": "any", "category": "any",
        "quantity": "int", "unit_price_cents": "int", "currency": "any",
    },
    ("CartItemRemoved", 1): {"cart_id": "any", "product_id": "any", "quantity": "int"},
    ("OrderCreated", 1): {
        "order_id": "any", "cart_id": "any", "customer_id": "any", "session_id": "any", "items": "items",
        "total": "number",
    },
    ("OrderCreated", 2): {
        "order_id": "any", "cart_id": "any", "customer_id": "any", "session_id": "any", "items": "items",
        "total_cents": "int", "currency": "any",
    },
    ("OrderCreated", 3): {
        "order_id": "any", "cart_id": "any", "customer_id": "any", "session_id": "any", "items": "items",
        "total_cents": "int", "currency": "any", "order_source": "any",
    },
    ("PromotionApplied", 1): {"order_id": "any", "promo_code": "any", "discount_cents": "int"},
    ("OrderConfirmed", 1): {"order_id": "any"},
    ("PaymentCaptured", 1): {"order_id": "any", "amount_cents": "int", "method": "any"},
    ("OrderShipped", 1): {"order_id": "any", "carrier": "any"},
    ("OrderDelivered", 1): {"order_id": "any"},
    ("OrderCancelled", 1): {"order_id": "any", "reason": "any"},
    ("OrderRefunded", 1): {"order_id": "any", "amount_cents": "int"},
    ("EmailCampaignSent", 1): {"campaign_id": "any", "customer_id": "any"},
    ("EmailOpened", 1): {"campaign_id": "any", "customer_id": "any"},
    ("EmailClicked", 1): {"campaign_id": "any", "customer_id": "any", "url": "any"},
    ("CampaignSpendRecorded", 1): {
        "campaign_id": "any", "channel": "any", "spend_date": "any", "cost_cents": "int", "currency": "any",
    },
}
ITEM_FIELDS: dict[int, dict[str, str]] = {  # OrderCreated item objects per schema version
    1: {"product_id": "any", "category": "any", "quantity": "int", "unit_price": "number"},
    2: {"product_id": "any", "category": "any", "quantity": "int", "unit_price_cents": "int"},
    3: {"product_id": "any", "category": "any", "quantity": "int", "unit_price_cents": "int"},
}
ACQUISITION_FIELDS = {"source": "any", "medium": "any", "campaign": "any"}


@dataclass(frozen=True)
class Event:
    event_id: str
    tenant_id: str
    stream_id: str
    stream_version: int
    global_position: int
    event_type: str
    schema_version: int  # as received
    occurred_at: datetime  # timezone-aware, converted to UTC
    recorded_at: datetime  # timezone-aware, UTC
    data: dict  # payload upcast to the newest schema version the project knows (as received when not upcast)
    metadata: dict = field(default_factory=dict, compare=False)
    file: str = field(default="", compare=False)  # where it was first delivered
    line: int = field(default=0, compare=False)  # 1-based

    @property
    def stream_type(self) -> str:
        return stream_parts(self.stream_id)[0]

    @property
    def stream_key(self) -> str:
        """The id part of `stream_id` (`order-3f2a` -> `3f2a`)."""
        return stream_parts(self.stream_id)[1]


@dataclass
class Landed:
    events: list[Event]  # accepted, deduplicated, of a known type and a known schema version: what marts read
    held_back: list[Event]  # known type, schema_version newer than the newest known (data left as received)
    unknown: list[Event]  # event types not in the catalog (kept, not projected)
    quarantined: list[tuple[str, int, str]]  # (file path, 1-based line number, reason)
    duplicates: int  # identical re-deliveries dropped


@dataclass(frozen=True)
class Session:
    tenant_id: str
    session_id: str
    started_at: datetime
    session_date: date
    anonymous_id: str
    customer_id: str | None
    source: str
    medium: str
    campaign: str | None
    device: str


class InvalidLine(Exception):
    """A line that goes to quarantine; the message is the reason."""


def stream_parts(stream_id: str) -> tuple[str, str]:
    """`<stream type>-<id>` -> (stream type, id). The type has no dash; the id may (uuids)."""
    stream_type, _, key = stream_id.partition("-")
    return stream_type, key


# ---------------------------------------------------------------------------------------------- reading


def _read_lines(path: Path) -> list[bytes]:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    return lines


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # json.loads would otherwise accept NaN and Infinity


def _parse_timestamp(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidLine(f"unparseable_timestamp:{name}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        # Spec choice: the contract says "with offset"; without one the instant is unknown.
        raise InvalidLine(f"unparseable_timestamp:{name}")
    return parsed.astimezone(timezone.utc)


def _parse_object(line: bytes) -> dict[str, Any]:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidLine("invalid_utf8") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        raise InvalidLine("invalid_json") from None
    if not isinstance(obj, dict):
        raise InvalidLine("not_a_json_object")
    return obj


def _check_envelope(obj: dict[str, Any]) -> None:
    for name, expected in ENVELOPE.items():
        if name not in obj:
            raise InvalidLine(f"missing_field:{name}")
        value = obj[name]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise InvalidLine(f"wrong_type:{name}")
    if obj["schema_version"] < 1:
        raise InvalidLine("invalid_schema_version")


def canonical(obj: Any) -> str:
    """The content of a parsed line, independent of key order and whitespace."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------------------------------- payloads


def _check_kind(value: Any, kind: str, where: str) -> None:
    if kind == "any":
        return
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "acquisition":
        ok = isinstance(value, dict)
        if ok:
            _check_fields(value, ACQUISITION_FIELDS, where)
    else:
        raise AssertionError(kind)
    if not ok:
        raise InvalidLine(f"invalid_payload:wrong_type:{where}")


def _check_fields(data: dict[str, Any], fields: dict[str, str], prefix: str, items_version: int = 0) -> None:
    for name, kind in fields.items():
        where = f"{prefix}.{name}"
        if name not in data:
            raise InvalidLine(f"invalid_payload:missing:{where}")
        if kind == "items":
            items = data[name]
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                raise InvalidLine(f"invalid_payload:wrong_type:{where}")
            for item in items:
                _check_fields(item, ITEM_FIELDS[items_version], f"{where}[]")
        else:
            _check_kind(data[name], kind, where)


def check_payload(event_type: str, schema_version: int, data: dict[str, Any]) -> None:
    """Raise InvalidLine when a known payload lacks a listed field or a number of the right kind."""
    _check_fields(data, PAYLOADS[(event_type, schema_version)], "data", items_version=schema_version)


def to_cents(amount: int | float) -> int:
    """Major units -> integer minor units, to the nearest cent; a tie rounds half away from zero.

    Spec choice: `Decimal(repr(float))` is the shortest decimal that reads back as the same float, i.e. the
    number as written in the JSON (145.1 stays 145.1, not 145.0999...), so 145.1 -> 14510, 0.125 -> 13.
    """
    exact = Decimal(amount) if isinstance(amount, int) else Decimal(repr(amount))
    return int((exact * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def referrer_acquisition(referrer: str | None) -> dict[str, Any]:
    """CustomerRegistered v1 `referrer` -> v2 `acquisition`.

    Spec choices: the host is urllib's `hostname` (lower case, without user info and port); a referrer
    without a scheme (`example.com/x`) is read as if it had one; an empty or blank referrer, or one with no
    host at all, counts as no referrer (`direct` / `none`). Only one leading `www.` is removed.
    """
    text = (referrer or "").strip()
    host = None
    if text:
        parts = urlsplit(text if "//" in text else "//" + text)
        host = parts.hostname
    if not host:
        return {"source": "direct", "medium": "none", "campaign": None}
    if host.startswith("www."):
        host = host[len("www."):]
    return {"source": host, "medium": "referral", "campaign": None}


def upcast(event_type: str, schema_version: int, data: dict[str, Any]) -> dict[str, Any]:
    """A payload at a known version -> the newest version the project knows (a new dict)."""
    data = copy.deepcopy(data)
    version = schema_version
    if event_type == "CustomerRegistered" and version == 1:
        data["acquisition"] = referrer_acquisition(data.pop("referrer"))
        version = 2
    if event_type == "CartItemAdded" and version == 1:
        data["unit_price_cents"] = to_cents(data.pop("unit_price"))
        data["currency"] = "EUR"
        version = 2
    if event_type == "OrderCreated" and version == 1:
        for item in data["items"]:
            item["unit_price_cents"] = to_cents(item.pop("unit_price"))
        data["total_cents"] = to_cents(data.pop("total"))
        data["currency"] = "EUR"
        version = 2
    if event_type == "OrderCreated" and version == 2:
        data["order_source"] = "unknown"
        version = 3
    assert version == NEWEST_VERSIONS[event_type], (event_type, schema_version)
    return data


# ---------------------------------------------------------------------------------------------- landing


def land(paths: Sequence[Path]) -> Landed:
    """Files in delivery order (`.ndjson`, or gzip `.ndjson.gz`); lines in file order."""
    landed = Landed(events=[], held_back=[], unknown=[], quarantined=[], duplicates=0)
    seen: dict[str, str] = {}  # event_id -> canonical content of its first accepted delivery
    for path in paths:
        path = Path(path)
        try:
            lines = _read_lines(path)
        except (OSError, EOFError, zlib.error) as error:
            # Spec choice: a file that cannot be read at all is reported with line number 0.
            landed.quarantined.append((str(path), 0, f"unreadable_file:{error}"))
            continue
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue  # Spec choice: a blank line carries no event.
            try:
                obj = _parse_object(line)
                _check_envelope(obj)
                occurred_at = _parse_timestamp(obj["occurred_at"], "occurred_at")
                recorded_at = _parse_timestamp(obj["recorded_at"], "recorded_at")
                content = canonical(obj)
                first = seen.get(obj["event_id"])
                if first is not None:
                    if first != content:
                        raise InvalidLine("conflicting_duplicate")
                    landed.duplicates += 1
                    continue
                seen[obj["event_id"]] = content
                _classify(landed, obj, occurred_at, recorded_at, str(path), number)
            except InvalidLine as reason:
                landed.quarantined.append((str(path), number, str(reason)))
    return landed


def _classify(landed: Landed, obj: dict[str, Any], occurred_at: datetime, recorded_at: datetime,
              file: str, line: int) -> None:
    event_type, version = obj["event_type"], obj["schema_version"]

    def make(data: dict[str, Any]) -> Event:
        return Event(
            event_id=obj["event_id"], tenant_id=obj["tenant_id"], stream_id=obj["stream_id"],
            stream_version=obj["stream_version"], global_position=obj["global_position"], event_type=event_type,
            schema_version=version, occurred_at=occurred_at, recorded_at=recorded_at, data=data,
            metadata=obj["metadata"], file=file, line=line,
        )

    if event_type not in NEWEST_VERSIONS:
        landed.unknown.append(make(obj["data"]))
    elif version > NEWEST_VERSIONS[event_type]:
        landed.held_back.append(make(obj["data"]))
    else:
        check_payload(event_type, version, obj["data"])
        landed.events.append(make(upcast(event_type, version, obj["data"])))


def as_of(landed: Landed) -> datetime:
    """The largest occurred_at among the events the run has seen (accepted, held back or unknown)."""
    return latest_occurred_at(landed)


def latest_occurred_at(landed: Landed) -> datetime:
    """`as_of` under another name, for functions whose `as_of` parameter hides the function."""
    seen = [event.occurred_at for event in (*landed.events, *landed.held_back, *landed.unknown)]
    if not seen:
        raise ValueError("no events: the as-of time is undefined")
    return max(seen)


# ---------------------------------------------------------------------------------------------- helpers


def resolve_as_of(landed: Landed, as_of: datetime | None) -> datetime:
    """The as-of time of a run: the one asked for, else the largest occurred_at seen."""
    return latest_occurred_at(landed) if as_of is None else as_of


def visible(landed: Landed, as_of: datetime | None = None) -> list[Event]:
    """The events the marts read at `as_of` (point in time: occurred_at <= as-of), in delivery order."""
    cutoff = resolve_as_of(landed, as_of)
    return [event for event in landed.events if event.occurred_at <= cutoff]


def stream_order(event: Event) -> tuple[int, int, str]:
    """Order within a stream. Spec choice: stream_version; a tie (two events claiming the same version,
    which the store should never produce) falls back to global_position, then event_id."""
    return event.stream_version, event.global_position, event.event_id


def streams(events: Iterable[Event], stream_type: str | None = None) -> dict[tuple[str, str], list[Event]]:
    """(tenant_id, stream_id) -> its events in stream order, optionally only streams of one type."""
    grouped: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for event in events:
        if stream_type is None or event.stream_type == stream_type:
            grouped[(event.tenant_id, event.stream_id)].append(event)
    return {key: sorted(found, key=stream_order) for key, found in grouped.items()}


def utc_date(moment: datetime) -> date:
    return moment.astimezone(timezone.utc).date()


def customer_id_of(event: Event) -> str:
    """The customer an event of a customer stream is about: data.customer_id, else the stream id's tail."""
    customer_id = event.data.get("customer_id")
    return customer_id if customer_id is not None else event.stream_id.removeprefix("customer-")


def erased_customers(landed: Landed) -> set[tuple[str, str]]:
    """(tenant_id, customer_id) of every CustomerErasureRequested (`customer_id_of`). Spec choice: erasure
    ignores the as-of time (a point-in-time rebuild must not bring personal data back)."""
    return {
        (event.tenant_id, customer_id_of(event))
        for event in landed.events
        if event.event_type == "CustomerErasureRequested"
    }


# ---------------------------------------------------------------------------------------------- sessions


def known_sessions(landed: Landed, as_of: datetime | None = None) -> dict[tuple[str, str], Session]:
    """(tenant_id, session_id) -> the session, for every session whose SessionStarted is known at as-of.

    Spec choices: the session id is the id part of the `session-<id>` stream (marts match it against the
    `session_id` other events carry); when a stream has several SessionStarted, the first in stream order
    among those visible at as-of is the session's (a later, visible one does not move it); a SessionStarted
    in a stream that is not a `session-` stream is ignored.
    """
    sessions: dict[tuple[str, str], Session] = {}
    for (tenant_id, stream_id), events in streams(visible(landed, as_of), "session").items():
        started = [event for event in events if event.event_type == "SessionStarted"]
        if not started:
            continue
        first = started[0]
        data = first.data
        session_id = stream_parts(stream_id)[1]
        sessions[(tenant_id, session_id)] = Session(
            tenant_id=tenant_id,
            session_id=session_id,
            started_at=first.occurred_at,
            session_date=utc_date(first.occurred_at),
            anonymous_id=data["anonymous_id"],
            customer_id=data["customer_id"],
            source=data["source"],
            medium=data["medium"],
            campaign=data["campaign"],
            device=data["device"],
        )
    return sessions
