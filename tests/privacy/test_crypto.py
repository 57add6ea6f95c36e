"""Crypto-shredding's pure part: tokens, wrapped keys, addresses in free text, the blind content hash."""

from __future__ import annotations

import base64
import json
import signal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.landing.parse import parse_line
from jobs.privacy.crypto import (
    EMAIL,
    ERASED,
    DataKey,
    KeyErased,
    MasterKey,
    MasterKeyError,
    Owner,
    Protector,
    addresses_in,
    decode_master_key,
    decrypt_token,
    new_key,
    replace_addresses,
    tokens_in,
)

MASTER = MasterKey(bytes(range(32)))


def _protector(erased: set = frozenset()):
    keys = {}

    def lookup(subject):
        if subject in erased:
            return None
        if subject not in keys:
            keys[subject] = DataKey(*new_key())
        return keys[subject]

    return Protector(MASTER, lookup), keys


def test_a_value_encrypted_for_a_customer_opens_only_with_that_customers_key():
    protector, keys = _protector()
    owner = Owner("t1", "c1")
    token = protector.value("alice@example.com", owner)
    assert "alice" not in token and token.startswith("pii:v1:")
    by_id = {key.key_id: key for key in keys.values()}
    assert decrypt_token(token, by_id.get) == "alice@example.com"
    other = DataKey(*new_key())
    with pytest.raises(Exception):
        decrypt_token(token, lambda key_id: DataKey(key_id, b"\x00" * 32))
    with pytest.raises(KeyErased):
        decrypt_token(token, lambda key_id: None)
    assert other.key_id not in token


def test_a_value_of_an_erased_subject_is_written_as_erased_not_encrypted():
    owner = Owner("t1", "c1")
    protector, _keys = _protector(erased={owner.subject})
    assert protector.value("alice@example.com", owner) == ERASED


def test_every_address_in_free_text_is_replaced_whatever_its_encoding():
    protector, keys = _protector()
    text = 'broken {"email":"Alice@Example.com", "u":"x?e=alice%40example.com", "j":"alice\\u0040example.com"'
    protected = protector.text(text)
    assert "example" not in protected.lower()
    assert len(tokens_in(protected)) == 3
    # One key per address, whatever its case or encoding.
    assert len(keys) == 1


# Texts made of what addresses are made of, so that near misses, encodings and addresses run together
# (`a@b.com.x@c.de`) come up often.
_ADDRESSY = st.text(alphabet="ab1.-_%+@4u0\\ cm", max_size=40) | st.lists(
    st.sampled_from(["a", "x.y", "@", "%40", "\\u0040", "b.com", ".de", ".", "_", " ", "-", "1"]), max_size=12
).map("".join)


@settings(max_examples=800, deadline=None)
@given(_ADDRESSY)
def test_addresses_are_found_and_replaced_as_the_pattern_finds_them(text):
    assert addresses_in(text) == EMAIL.findall(text)
    assert replace_addresses(text, lambda address: f"<{len(address)}>") == EMAIL.sub(lambda m: f"<{len(m.group(0))}>", text)


def test_a_line_of_megabytes_with_an_at_sign_is_searched_in_one_pass():
    # Searched position by position, as the pattern's own findall does, this line would take about a
    # day (each position rescans the run of letters after it). The alarm only turns such a hang into
    # a failure; the linear search takes well under a second.
    line = '{"note": "' + "a" * 3_000_000 + '", "reply_to": "ann@example.com", "x": "' + "b" * 1_000_000 + '@"}'
    signal.signal(signal.SIGALRM, _took_too_long)
    signal.alarm(120)
    try:
        assert addresses_in(line) == ["ann@example.com"]
        assert replace_addresses(line, lambda address: "<address>").count("<address>") == 1
    finally:
        signal.alarm(0)


def _took_too_long(signum, frame):
    raise AssertionError("searching one line for addresses did not finish in 120 s: it is not linear")


def test_a_data_key_wrapped_by_one_master_key_does_not_open_with_another():
    key_id, key = new_key()
    wrapped = MASTER.wrap(key_id, key)
    assert MASTER.unwrap(key_id, wrapped) == key
    with pytest.raises(MasterKeyError, match="not the master key"):
        MasterKey(bytes(32)).unwrap(key_id, wrapped)


def test_a_malformed_master_key_is_refused_without_quoting_it():
    with pytest.raises(MasterKeyError, match="must be 32 bytes") as error:
        decode_master_key(base64.b64encode(b"short-secret").decode(), "environment variable X")
    assert "short-secret" not in str(error.value) and base64.b64encode(b"short-secret").decode() not in str(error.value)


def _line(email: str, **changes) -> bytes:
    event = {
        "event_id": "e1", "tenant_id": "t1", "stream_id": "customer-c1", "stream_version": 1, "global_position": 1,
        "event_type": "CustomerEmailChanged", "schema_version": 1, "occurred_at": "2026-01-05T10:00:00Z",
        "recorded_at": "2026-01-05T10:00:00Z", "data": {"customer_id": "c1", "email": email}, "metadata": {},
    }
    event.update(changes)
    return json.dumps(event).encode()


def test_the_content_hash_cannot_confirm_a_guessed_address_but_still_tells_other_changes():
    a, b = parse_line(_line("alice@example.com"), 1), parse_line(_line("guess@example.com"), 1)
    assert a.content_sha256 == b.content_sha256
    later = parse_line(_line("alice@example.com", occurred_at="2026-01-05T11:00:00Z"), 1)
    assert later.content_sha256 != a.content_sha256
