"""Each line of a landing file is an event following the envelope contract, or a reason why not."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone

import pytest

from jobs.landing.parse import ParsedEvent, Rejection, UnreadableFile, parse_line, read_lines
from tests.histories import History


def _event(**changes) -> dict:
    event = History().add("OrderConfirmed", "order-o1", {"order_id": "o1"}, "2026-01-05T10:00:00+02:00")
    event.update(changes)
    return event


def _line(event) -> bytes:
    return json.dumps(event).encode("utf-8")


def test_a_valid_line_becomes_an_event_with_utc_timestamps():
    parsed = parse_line(_line(_event()), 1)
    assert isinstance(parsed, ParsedEvent)
    assert parsed.occurred_at == datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
    assert parsed.stream_type == "order"


def test_key_order_and_white_space_do_not_change_the_content_hash():
    event = _event()
    reordered = json.dumps(dict(reversed(list(event.items()))), indent=1).replace("\n", " ").encode()
    assert parse_line(reordered, 1).content_sha256 == parse_line(_line(event), 2).content_sha256


def test_nanosecond_timestamps_are_read():
    parsed = parse_line(_line(_event(occurred_at="2026-01-05T10:00:00.123456789Z")), 1)
    assert parsed.occurred_at.microsecond == 123456


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"event_id": "e1", "tenant', "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b"   ", "empty_line"),
        (b"\xff\xfe{}", "invalid_utf8"),
        (b'{"a": NaN}', "invalid_json"),
    ],
)
def test_a_line_that_is_not_a_json_object_is_rejected_with_its_reason(raw, reason):
    rejection = parse_line(raw, 7)
    assert isinstance(rejection, Rejection)
    assert rejection.reason.startswith(reason) and rejection.line_number == 7


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"tenant_id": None}, "missing_field: tenant_id"),
        ({"stream_version": "1"}, "wrong_type: stream_version must be an integer, got string"),
        ({"schema_version": True}, "wrong_type: schema_version must be an integer, got boolean"),
        ({"stream_version": 0}, "out_of_range: stream_version"),
        ({"data": []}, "wrong_type: data must be an object"),
        ({"stream_id": "o1"}, "wrong_format: stream_id"),
        ({"occurred_at": "yesterday"}, "bad_timestamp: occurred_at"),
        ({"recorded_at": "2026-01-05T10:00:00"}, "bad_timestamp: recorded_at '2026-01-05T10:00:00' has no offset"),
    ],
)
def test_an_envelope_that_breaks_the_contract_is_rejected_naming_the_field(changes, reason):
    rejection = parse_line(_line(_event(**changes)), 1)
    assert isinstance(rejection, Rejection) and rejection.reason.startswith(reason)
    assert rejection.event_id == "ev-0001"


def test_a_missing_field_is_named():
    event = _event()
    del event["metadata"]
    assert parse_line(_line(event), 1).reason == "missing_field: metadata"


def test_invalid_utf8_is_kept_byte_for_byte_in_the_raw_text():
    rejection = parse_line(b"ab\xffcd", 1)
    assert rejection.raw_text == "ab\\xffcd"


def test_gzip_and_plain_files_read_the_same_numbered_lines(tmp_path):
    content = b"one\ntwo\r\nthree"
    (tmp_path / "a.ndjson").write_bytes(content)
    (tmp_path / "a.ndjson.gz").write_bytes(gzip.compress(content))
    plain = list(read_lines(tmp_path / "a.ndjson"))
    assert plain == [(1, b"one"), (2, b"two"), (3, b"three")]
    assert list(read_lines(tmp_path / "a.ndjson.gz")) == plain


def test_a_gzip_file_cut_short_keeps_the_lines_before_and_says_so(tmp_path):
    compressed = gzip.compress(b"".join(b'{"n": %d}\n' % i for i in range(5000)))
    (tmp_path / "cut.ndjson.gz").write_bytes(compressed[: len(compressed) // 2])
    lines = []
    with pytest.raises(UnreadableFile, match="truncated_gzip"):
        for item in read_lines(tmp_path / "cut.ndjson.gz"):
            lines.append(item)
    assert lines and lines[-1][0] == len(lines)


def test_a_file_named_gz_that_is_not_gzip_is_reported(tmp_path):
    (tmp_path / "fake.ndjson.gz").write_bytes(b'{"event_id": "e1"}\n')
    with pytest.raises(UnreadableFile, match="not_gzip"):
        list(read_lines(tmp_path / "fake.ndjson.gz"))
