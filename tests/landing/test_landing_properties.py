"""Properties of landing (issue #12, point 3): whatever the lines and however they are delivered,
landing never crashes and its ledger adds up.

Two levels:
- parsing (pure Python, no Spark, many examples): any bytes become an event or a rejection with a
  reason, never an exception, and what comes out can be written to bronze's columns; valid envelopes
  parse, and each kind of damage gets its own reason;
- landing on Spark and Delta (few examples, each costs a few Delta commits): lines drawn from a small
  pool of events (so that exact and conflicting duplicates are frequent) and damaged lines, cut into
  deliveries, files (plain or gzip, possibly empty) and batches; every file's ledger row is what the
  rule "first kept, same content a duplicate, other content quarantined" predicts from the lines
  written, and bronze holds each event once, in its first delivered version.
"""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, example, given, note
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from jobs.landing.parse import ParsedEvent, Rejection, UnreadableFile, canonical_json, parse_line, read_lines
from tests.histories import History
from tests.scenarios.deliveries import write_lines

# --- Parsing: any line ----------------------------------------------------------------------------

_INT64 = 2**63 - 1
_INT32 = 2**31 - 1

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12,
)
_names = st.text(min_size=1, max_size=16).filter(str.strip)
_offsets = st.sampled_from([timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))])
_instants = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=_offsets)


@st.composite
def envelopes(draw) -> dict:
    """An event that follows the envelope contract (any payload: landing does not read it)."""
    return {
        "event_id": draw(_names),
        "tenant_id": draw(_names),
        "stream_id": draw(st.from_regex(r"[a-z][a-z0-9_]{0,8}-[A-Za-z0-9-]{1,10}", fullmatch=True)),
        "stream_version": draw(st.integers(1, _INT64)),
        "global_position": draw(st.integers(0, _INT64)),
        "event_type": draw(st.sampled_from(["OrderConfirmed", "OrderShipped", "CustomerRegistered", "NotInCatalog"])),
        "schema_version": draw(st.integers(1, _INT32)),
        "occurred_at": draw(_instants).isoformat(),
        "recorded_at": draw(_instants).isoformat().replace("+00:00", "Z"),
        "data": draw(st.dictionaries(st.text(max_size=10), json_values, max_size=4)),
        "metadata": draw(st.dictionaries(st.text(max_size=10), json_values, max_size=2)),
    }


_SAMPLE = History().add("OrderConfirmed", "order-o1", {"order_id": "o1"}, "2026-01-05T10:00:00Z")


def _nested_event(depth: int, innermost: str) -> bytes:
    """A valid envelope whose payload nests `depth` objects deep (json.loads accepts just under 1,000)."""
    return json.dumps(_SAMPLE).replace('{"order_id": "o1"}', '{"a":' * depth + innermost + "}" * depth).encode()


def as_line(event: dict, ensure_ascii: bool = True) -> bytes:
    return json.dumps(event, ensure_ascii=ensure_ascii).encode("utf-8")


def assert_writable(outcome: ParsedEvent | Rejection, line_number: int) -> None:
    """What bronze or the quarantine would receive converts to their Arrow columns (as landing does),
    so that no single line can stop a batch."""
    assert outcome.line_number == line_number
    if isinstance(outcome, Rejection):
        assert outcome.reason and ":" in outcome.reason or outcome.reason == "empty_line"
        pa.array([outcome.reason, outcome.raw_text, outcome.event_id], pa.string())
        return
    assert isinstance(outcome, ParsedEvent)
    pa.array([outcome.event_id, outcome.tenant_id, outcome.stream_id, outcome.event_type, outcome.raw_text,
              canonical_json(outcome.data), canonical_json(outcome.metadata)], pa.string())
    pa.array([outcome.stream_version, outcome.global_position], pa.int64())
    pa.array([outcome.schema_version], pa.int32())
    pa.array([outcome.occurred_at, outcome.recorded_at], pa.timestamp("us", tz="UTC"))
    assert outcome.occurred_at.utcoffset() == timedelta(0) == outcome.recorded_at.utcoffset()


@hypothesis_settings(max_examples=400, deadline=None, database=None)
@given(raw=st.binary(max_size=300), line_number=st.integers(1, 10**6))
# Each of these stopped landing before the checks in jobs/landing/parse.py: a lone surrogate escaped in
# JSON (not writable as UTF-8), integers beyond bronze's BIGINT or INT, a timestamp leaving years 1-9999
# once in UTC, a number that reads as infinity.
@example(raw=b'{"event_id": "\\ud800"}', line_number=1)
@example(raw=b'{"event_id": "e", "data": {"x": "\\udfff"}}', line_number=1)
@example(raw=b'{"a": 1e999}', line_number=1)
@example(raw=b"\xef\xbb\xbf{}", line_number=1)
@example(raw=b"[" * 100_000, line_number=1)
@example(raw=_nested_event(900, '"\\ud800"'), line_number=1)
@example(raw=_nested_event(985, '"x"'), line_number=1)
def test_parsing_any_bytes_gives_an_event_or_a_rejection_with_a_reason(raw, line_number):
    assert_writable(parse_line(raw, line_number), line_number)


@hypothesis_settings(max_examples=300, deadline=None, database=None)
@given(event=envelopes(), changes=st.dictionaries(st.sampled_from(
    ["event_id", "tenant_id", "stream_id", "stream_version", "global_position", "schema_version", "occurred_at",
     "recorded_at", "data", "metadata"]), json_values | st.integers(-(2**80), 2**80) | st.just("\ud800"), max_size=3),
    ensure_ascii=st.booleans())
@example(event=_SAMPLE, changes={"stream_version": 2**64}, ensure_ascii=True)
@example(event=_SAMPLE, changes={"occurred_at": "0001-01-01T00:00:00+01:00"}, ensure_ascii=True)
@example(event=_SAMPLE, changes={"event_id": "\ud800"}, ensure_ascii=False)
def test_parsing_an_envelope_with_any_fields_replaced_never_raises(event, changes, ensure_ascii):
    event = {**event, **changes}
    try:
        raw = as_line(event, ensure_ascii)
    except UnicodeEncodeError:  # a lone surrogate cannot be written as UTF-8: as a JSON escape, it can
        raw = as_line(event, ensure_ascii=True)
    assert_writable(parse_line(raw, 3), 3)


@hypothesis_settings(max_examples=200, deadline=None, database=None)
@given(event=envelopes(), ensure_ascii=st.booleans(), separators=st.sampled_from([None, (",", ":"), (" , ", " : ")]))
def test_a_valid_envelope_parses_whatever_its_text_and_offsets(event, ensure_ascii, separators):
    raw = json.dumps(event, ensure_ascii=ensure_ascii, separators=separators).encode("utf-8")
    parsed = parse_line(raw, 1)
    assert isinstance(parsed, ParsedEvent), parsed
    assert_writable(parsed, 1)
    assert (parsed.event_id, parsed.stream_type) == (event["event_id"], event["stream_id"].split("-", 1)[0])
    assert parsed.occurred_at == datetime.fromisoformat(event["occurred_at"])
    assert parsed.content_sha256 == parse_line(as_line(event), 2).content_sha256


_STRING_FIELDS = ("event_id", "tenant_id", "stream_id", "event_type", "occurred_at", "recorded_at")
_INTEGER_FIELDS = ("stream_version", "schema_version", "global_position")
_OBJECT_FIELDS = ("data", "metadata")
_REQUIRED = _STRING_FIELDS + _INTEGER_FIELDS + _OBJECT_FIELDS


@st.composite
def damaged(draw) -> tuple[bytes, tuple[str, ...]]:
    """A valid envelope damaged in one way, and the reasons (prefixes) that damage must get."""
    event = draw(envelopes())
    kind = draw(st.sampled_from(
        ["truncated", "missing_field", "null_field", "wrong_type", "out_of_range", "invalid_utf8", "lone_surrogate",
         "bad_timestamp", "infinite_number", "not_an_object"]
    ))
    if kind == "truncated":
        line = as_line(event, ensure_ascii=draw(st.booleans()))
        # A proper prefix of an object lacks its closing brace; cut inside a character, it is not UTF-8.
        return line[: draw(st.integers(0, len(line) - 1))], ("invalid_json", "empty_line", "invalid_utf8")
    if kind in ("missing_field", "null_field"):
        name = draw(st.sampled_from(_REQUIRED))
        if kind == "missing_field":
            del event[name]
        else:
            event[name] = None
        return as_line(event), (f"missing_field: {name}",)
    if kind == "wrong_type":
        name = draw(st.sampled_from(_REQUIRED))
        wrong = {
            **{field: st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.booleans()
               | st.lists(st.integers(), max_size=2)
               | st.just({}) | st.sampled_from(["", "  "]) for field in _STRING_FIELDS},
            **{field: st.text(max_size=5) | st.floats(allow_nan=False, allow_infinity=False) | st.booleans()
               | st.just([1]) for field in _INTEGER_FIELDS},
            **{field: st.text(max_size=5) | st.integers() | st.lists(st.integers(), max_size=2)
               for field in _OBJECT_FIELDS},
        }[name]
        event[name] = draw(wrong)
        return as_line(event), (f"wrong_type: {name}",)
    if kind == "out_of_range":
        name = draw(st.sampled_from(_INTEGER_FIELDS))
        limit = _INT32 if name == "schema_version" else _INT64
        event[name] = draw(st.integers(limit + 1, 2**100) | st.integers(-(2**100), -1))
        return as_line(event), (f"out_of_range: {name}",)
    if kind == "invalid_utf8":
        line = as_line(event)
        at = draw(st.integers(0, len(line)))
        # 0xff never occurs in UTF-8; 0xc3 0x28 is a lead byte followed by no continuation byte.
        return line[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"])) + line[at:], ("invalid_utf8",)
    if kind == "lone_surrogate":
        event["data"]["text"] = draw(st.sampled_from(["\ud800", "a\udfffb", "\udbff"]))
        return as_line(event, ensure_ascii=True), ("invalid_unicode",)
    if kind == "bad_timestamp":
        name = draw(st.sampled_from(["occurred_at", "recorded_at"]))
        event[name] = draw(st.sampled_from(
            ["yesterday", "2026-01-05T10:00:00", "2026-13-01T00:00:00Z", "0001-01-01T00:00:00+01:00",
             "9999-12-31T23:00:00-05:00"]
        ))
        return as_line(event), (f"bad_timestamp: {name}",)
    if kind == "infinite_number":
        line = as_line(dict(event, data={"amount": 0.5}))
        return line.replace(b"0.5", draw(st.sampled_from([b"1e999", b"-1e400"]))), ("invalid_json",)
    not_an_object = st.lists(json_values, max_size=3) | json_values.filter(lambda value: not isinstance(value, dict))
    return json.dumps(draw(not_an_object)).encode(), ("not_an_object",)


@hypothesis_settings(max_examples=400, deadline=None, database=None)
@given(case=damaged())
def test_each_kind_of_damage_is_rejected_with_its_reason(case):
    line, reasons = case
    outcome = parse_line(line, 5)
    assert isinstance(outcome, Rejection), outcome
    assert outcome.reason.startswith(reasons), outcome.reason
    assert_writable(outcome, 5)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("files")


_file_numbers = itertools.count()


@hypothesis_settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30),
    damage=st.sampled_from(["none", "cut", "flip", "not_gzip", "garbage_after"]),
    where=st.floats(0, 1, exclude_max=True),
)
def test_reading_a_gz_file_yields_numbered_lines_or_says_why_it_stopped(scratch, lines, damage, where):
    content = b"".join(line + b"\n" for line in lines)
    compressed = gzip.compress(content, mtime=0)
    at = int(where * len(compressed))
    compressed = {
        "none": compressed,
        "cut": compressed[:at],
        "flip": compressed[:at] + bytes([compressed[at] ^ 0xFF]) + compressed[at + 1:],
        "not_gzip": content,
        "garbage_after": compressed + b"not gzip",
    }[damage]
    path = scratch / f"{next(_file_numbers)}.ndjson.gz"
    path.write_bytes(compressed)
    read, failure = [], None
    try:
        for item in read_lines(path):
            read.append(item)
    except UnreadableFile as error:
        failure = str(error)
        assert failure.startswith(("not_gzip", "truncated_gzip", "corrupt_gzip")), failure
    assert [number for number, _ in read] == list(range(1, len(read) + 1))
    if damage == "none" or not compressed:  # an empty file is read as no lines
        assert failure is None
    elif damage in ("cut", "not_gzip", "garbage_after"):
        assert failure is not None
    if damage == "none":
        assert [line for _, line in read] == [line.rstrip(b"\r") for line in lines]


# --- Landing on Spark and Delta: deliveries of lines from a small pool ------------------------------

POOL_SIZE = 4  # distinct event ids
BROKEN_KINDS = ("truncated", "missing_field", "wrong_type", "invalid_utf8", "random_bytes")


@dataclasses.dataclass(frozen=True)
class Line:
    """A line to write: event `event` (index into the pool) in `variant` (0 or 1: two contents under one
    id), serialised in `style`; or, with `broken` set, a line that can never be an event."""

    event: int = 0
    variant: int = 0
    style: int = 0
    broken: str | None = None
    noise: bytes = b""

    def __str__(self) -> str:
        return f"x:{self.broken}" if self.broken else f"e{self.event}.{self.variant}{'*' if self.style else ''}"


def pool() -> list[list[dict]]:
    """POOL_SIZE events of one history, each in two versions that differ in their payload only."""
    history = History()
    events = [
        history.add("OrderShipped", f"order-o{n}", {"order_id": f"o{n}", "carrier": "ups"}, f"2026-01-05T1{n}:00:00Z")
        for n in range(POOL_SIZE)
    ]
    return [[event, dict(event, data={**event["data"], "carrier": "dhl"})] for event in events]


def render(line: Line, events: list[list[dict]]) -> bytes:
    if line.broken is None:
        event = events[line.event][line.variant]
        # Style 1: other key order and separators, the same content.
        return json.dumps(event, sort_keys=True, separators=(",", ":")).encode() if line.style else as_line(event)
    valid = json.dumps(events[line.event][0]).encode()
    if line.broken == "truncated":
        return valid[: len(valid) // 2]
    if line.broken == "missing_field":
        return json.dumps({k: v for k, v in events[line.event][0].items() if k != "tenant_id"}).encode()
    if line.broken == "wrong_type":
        return json.dumps(dict(events[line.event][0], stream_version="1")).encode()
    if line.broken == "invalid_utf8":
        return valid.replace(b"ups", b"u\xffs")
    # Random bytes without a brace can never be a JSON object, nor without a newline more than one line.
    return line.noise.replace(b"\n", b"").replace(b"{", b"")


lines_strategy = st.one_of(
    st.builds(Line, event=st.integers(0, POOL_SIZE - 1), variant=st.integers(0, 1), style=st.integers(0, 1)),
    st.builds(Line, event=st.integers(0, POOL_SIZE - 1), broken=st.sampled_from(BROKEN_KINDS),
              noise=st.binary(max_size=30)),
)


@dataclasses.dataclass(frozen=True)
class File:
    lines: tuple[Line, ...]
    gz: bool = False

    def __str__(self) -> str:
        return f"[{' '.join(map(str, self.lines))}]{'.gz' if self.gz else ''}"


files_strategy = st.builds(File, lines=st.lists(lines_strategy, max_size=6).map(tuple), gz=st.booleans())
# Deliveries (one landing run each), each of one or two files.
deliveries_strategy = st.lists(st.lists(files_strategy, min_size=1, max_size=2).map(tuple), min_size=1, max_size=2)


def expected_ledger(deliveries) -> list[tuple[int, int, int, int]]:
    """Per file in landing order: (lines read, landed, duplicates, quarantined), by the rule of
    jobs/landing/files.py: the first version of an id is kept (files in path order, then lines), the
    same content again is a duplicate, another content is quarantined."""
    kept: dict[int, int] = {}
    ledger = []
    for delivery in deliveries:
        for file in delivery:
            landed = duplicates = quarantined = 0
            for line in file.lines:
                if line.broken is not None:
                    quarantined += 1
                elif line.event not in kept:
                    kept[line.event] = line.variant
                    landed += 1
                elif kept[line.event] == line.variant:
                    duplicates += 1
                else:
                    quarantined += 1
            ledger.append((len(file.lines), landed, duplicates, quarantined))
    return ledger


@pytest.fixture(scope="module")
def landing_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("landing-properties")


_examples = itertools.count()

# Every case in one example, so that each runs whatever Hypothesis draws: a conflict and an exact
# duplicate within a file, across files of a delivery and across deliveries; every kind of broken line;
# an empty file; gzip; a batch per file.
_EVERY_CASE = (
    (
        File((Line(0), Line(1), Line(0, style=1), Line(1, variant=1), Line(2, broken="truncated"),
              Line(0, broken="random_bytes", noise=b"\x00\xff\x10abc"))),
        File((Line(1), Line(2, variant=1), Line(3, broken="invalid_utf8")), gz=True),
    ),
    (
        File(()),
        File((Line(2), Line(2, variant=1, style=1), Line(0, variant=1), Line(3), Line(1, broken="missing_field"),
              Line(1, broken="wrong_type"))),
    ),
)


@hypothesis_settings(
    max_examples=3, deadline=None, database=None, phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(deliveries=deliveries_strategy, batch_lines=st.sampled_from([1, 250_000]))
@example(deliveries=_EVERY_CASE, batch_lines=1)
def test_landing_never_crashes_and_its_ledger_adds_up_file_by_file(spark, landing_root, deliveries, batch_lines):
    from jobs.landing.files import land_files

    note(" | ".join(" ".join(map(str, delivery)) for delivery in deliveries) + f"; batch_lines={batch_lines}")
    root = landing_root / f"example-{next(_examples)}"
    warehouse, landing = str(root / "warehouse"), root / "landing"
    events = pool()
    written = 0
    for number, delivery in enumerate(deliveries):
        for index, file in enumerate(delivery):
            name = f"file-{index}.ndjson" + (".gz" if file.gz else "")
            write_lines(landing / f"delivery-{number}", name, [render(line, events) for line in file.lines])
            written += len(file.lines)
        # One run per delivery, over the whole landing folder as it grows.
        report = land_files(spark, warehouse, landing, f"run-{number}", batch_lines=batch_lines)
        assert report.skipped_files == sum(len(d) for d in deliveries[:number])

    again = land_files(spark, warehouse, landing, "again", batch_lines=batch_lines)
    assert again.files == [] and again.skipped_files == sum(map(len, deliveries))

    ledger = spark.read.format("delta").load(f"{warehouse}/meta/landing_ledger").orderBy("source_file").collect()
    found = [(r["lines_read"], r["landed"], r["duplicates"], r["quarantined"]) for r in ledger]
    assert all(read == landed + duplicates + quarantined for read, landed, duplicates, quarantined in found)
    assert sum(r["lines_read"] for r in ledger) == written
    assert found == expected_ledger(deliveries)
    assert [r["file_error"] for r in ledger] == [
        None if file.lines else "empty_file: no lines" for delivery in deliveries for file in delivery
    ]

    bronze = spark.read.format("delta").load(f"{warehouse}/bronze/events").collect()
    first_versions = {}
    for line in (line for delivery in deliveries for file in delivery for line in file.lines if line.broken is None):
        first_versions.setdefault(events[line.event][0]["event_id"], line.variant)
    assert sorted(row["event_id"] for row in bronze) == sorted(first_versions)
    carriers = {row["event_id"]: json.loads(row["data"])["carrier"] for row in bronze}
    assert carriers == {event_id: ("ups", "dhl")[variant] for event_id, variant in first_versions.items()}
    quarantined = spark.read.format("delta").load(f"{warehouse}/bronze/quarantine").count()
    assert quarantined == sum(row[3] for row in found)
