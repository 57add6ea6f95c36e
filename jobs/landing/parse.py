"""Reading landing files line by line against the envelope contract (pure Python, no Spark).

Every line read ends as exactly one `ParsedEvent` or one `Rejection` with a reason, so that the
landing ledger can prove lines read = landed + duplicates + quarantined.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import math
import re
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

_STREAM_ID = re.compile(r"^[a-z][a-z0-9_]*-.+$")
# A JSON escape of a UTF-16 surrogate: the only way a line of valid UTF-8 decodes to a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# Python 3.11 reads at most microseconds; producers may write nanoseconds.
_FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclass(frozen=True)
class ParsedEvent:
    event_id: str
    tenant_id: str
    stream_id: str
    stream_type: str
    stream_version: int
    global_position: int
    event_type: str
    schema_version: int
    occurred_at: datetime  # UTC
    recorded_at: datetime  # UTC
    data: dict[str, Any]
    metadata: dict[str, Any]
    content_sha256: str  # of the canonical event, to tell exact from conflicting duplicates
    line_number: int
    raw_text: str  # the line as delivered, quarantined if it turns out to conflict with a kept event


@dataclass(frozen=True)
class Rejection:
    line_number: int
    reason: str
    raw_text: str
    event_id: str | None = None


class UnreadableFile(Exception):
    """The file as a whole cannot be read on from here (not gzip, cut short); lines before count."""


def parse_line(raw: bytes, line_number: int) -> ParsedEvent | Rejection:
    """One line of a landing file: an event that follows the envelope contract, or why not."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return Rejection(line_number, f"invalid_utf8: {error.reason} at byte {error.start}", _lossless_text(raw))
    if not text.strip():
        return Rejection(line_number, "empty_line", text)
    try:
        event = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (json.JSONDecodeError, RecursionError) as error:
        return Rejection(line_number, f"invalid_json: {getattr(error, 'msg', 'too deeply nested')}", text)
    except ValueError as error:
        return Rejection(line_number, f"invalid_json: {error}", text)
    try:
        if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(event):
            # Not text in UTF-8: it could be neither hashed nor written, and would stop the whole batch.
            return Rejection(line_number, "invalid_unicode: a \\u escape of a lone UTF-16 surrogate", text)
        return parse_event(event, line_number, text)
    except RecursionError:  # nested just within what json.loads accepts, walked again deeper in the stack
        return Rejection(line_number, "invalid_json: too deeply nested", text)


def parse_event(event: Any, line_number: int, text: str) -> ParsedEvent | Rejection:
    """A decoded event (from a file line or a database row) checked against the envelope contract."""
    if not isinstance(event, dict):
        return Rejection(line_number, f"not_an_object: a JSON {_json_type(event)}", text)
    problem = _envelope_problem(event)
    event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
    if problem:
        return Rejection(line_number, problem, text, event_id)
    occurred_at = _utc(event["occurred_at"])
    recorded_at = _utc(event["recorded_at"])
    if isinstance(occurred_at, str) or isinstance(recorded_at, str):
        field, value = ("occurred_at", occurred_at) if isinstance(occurred_at, str) else ("recorded_at", recorded_at)
        return Rejection(line_number, f"bad_timestamp: {field} {value}", text, event_id)
    return ParsedEvent(
        event_id=event["event_id"],
        tenant_id=event["tenant_id"],
        stream_id=event["stream_id"],
        stream_type=event["stream_id"].split("-", 1)[0],
        stream_version=event["stream_version"],
        global_position=event["global_position"],
        event_type=event["event_type"],
        schema_version=event["schema_version"],
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        data=event["data"],
        metadata=event["metadata"],
        content_sha256=content_sha256(event),
        line_number=line_number,
        raw_text=text,
    )


def content_sha256(event: dict[str, Any]) -> str:
    """The hash that tells exact from conflicting duplicates, blind to personal data.

    Bronze keeps it beside the encrypted payload; were personal values part of it, whoever holds the
    rest of the event could confirm a guessed e-mail address of an erased customer against it. Two
    deliveries that differ only in a personal value therefore count as exact duplicates.
    """
    from jobs.privacy.crypto import replace_addresses

    personal = _personal_fields().get(event["event_type"], ())
    if personal and any(event["data"].get(name) is not None for name in personal):
        event = {**event, "data": {**event["data"], **{name: "<personal>" for name in personal if event["data"].get(name) is not None}}}
    text = canonical_json(event)
    text = replace_addresses(text, lambda address: "<address>")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.cache
def _personal_fields() -> dict[str, tuple[str, ...]]:
    from jobs.events.catalog import EVENT_TYPES  # imported late: the catalog's upcasters import pyspark

    return {event_type.name: event_type.personal_fields for event_type in EVENT_TYPES if event_type.personal_fields}


def canonical_json(value: Any) -> str:
    """Key order and white space do not make two deliveries of an event different."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_STRING_FIELDS = ("event_id", "tenant_id", "stream_id", "event_type", "occurred_at", "recorded_at")
_POSITIVE_INT_FIELDS = ("stream_version", "schema_version")
# Within bronze's column types (BIGINT, INT): a larger number could not be written, and would stop the whole batch.
_INTEGER_RANGES = {"stream_version": (1, 2**63 - 1), "schema_version": (1, 2**31 - 1), "global_position": (0, 2**63 - 1)}
_OBJECT_FIELDS = ("data", "metadata")


def _envelope_problem(event: dict[str, Any]) -> str | None:
    for name in (*_STRING_FIELDS, *_POSITIVE_INT_FIELDS, "global_position", *_OBJECT_FIELDS):
        if name not in event or event[name] is None:
            return f"missing_field: {name}"
    for name in _STRING_FIELDS:
        if not isinstance(event[name], str):
            return f"wrong_type: {name} must be a string, got {_json_type(event[name])}"
        if not event[name].strip():
            return f"wrong_type: {name} is empty"
    for name in (*_POSITIVE_INT_FIELDS, "global_position"):
        value = event[name]
        # bool is an int in Python but not in JSON.
        if isinstance(value, bool) or not isinstance(value, int):
            return f"wrong_type: {name} must be an integer, got {_json_type(value)}"
        low, high = _INTEGER_RANGES[name]
        if not low <= value <= high:
            return f"out_of_range: {name} is {value}"
    for name in _OBJECT_FIELDS:
        if not isinstance(event[name], dict):
            return f"wrong_type: {name} must be an object, got {_json_type(event[name])}"
    if not _STREAM_ID.match(event["stream_id"]):
        return f"wrong_format: stream_id {event['stream_id']!r} is not <stream type>-<id>"
    return None


def _utc(value: str) -> datetime | str:
    """An ISO-8601 timestamp with an offset, as a UTC datetime; the problem as a string otherwise."""
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()))
    except ValueError:
        return f"{value!r} is not ISO-8601"
    if parsed.tzinfo is None:
        return f"{value!r} has no offset"
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        return f"{value!r} is out of range in UTC"


def _refuse_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON does not.
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    # 1e999 reads as infinity, which JSON cannot hold: written back, it would be the non-JSON `Infinity`.
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    try:
        canonical_json(value).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _lossless_text(raw: bytes) -> str:
    # Keeps every byte recoverable in the quarantine's text column.
    return raw.decode("utf-8", errors="backslashreplace")


def read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line without its end) for a plain or gzip file.

    Raises UnreadableFile when the file stops making sense; the lines yielded before stand.
    """
    opener = gzip.open if path.name.endswith(".gz") else open
    line_number = 0
    try:
        with opener(path, "rb") as stream:
            for line_number, raw in enumerate(stream, start=1):
                yield line_number, raw.rstrip(b"\r\n")
    except gzip.BadGzipFile as error:
        if line_number == 0:
            raise UnreadableFile(f"not_gzip: {error}") from error
        raise UnreadableFile(f"corrupt_gzip: after line {line_number}: {error}") from error
    except EOFError as error:
        raise UnreadableFile(f"truncated_gzip: after line {line_number}: {error}") from error
    except zlib.error as error:
        raise UnreadableFile(f"corrupt_gzip: after line {line_number}: {error}") from error
