"""Crypto-shredding, the pure part (no Spark): data keys wrapped by the master key, personal values
turned into tokens, and e-mail addresses found in free text turned into tokens too.

A token is `pii:v1:<key id>:<base64url(nonce + AES-GCM ciphertext)>`, authenticated with the key id,
so it names the key that opens it and nothing else. A value whose key was erased is written as
`pii:erased`: the key is never recreated, so there is nothing to encrypt it under.

Keys are of two kinds (docs/privacy.md):
- `customer`: one per (tenant, customer id); opens every personal value of that customer's events.
- `address`: one per e-mail address (keyed hash of the lowercased address, all tenants), for addresses
  in text that no customer can be read from (quarantined lines) or in events without a customer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jobs.config import ConfigError

TOKEN_PREFIX = "pii:v1:"
ERASED = "pii:erased"
CUSTOMER = "customer"
ADDRESS = "address"

# An e-mail address, also URL-encoded (`%40`) or JSON-escaped (`\u0040`) as producers and broken lines
# carry it. Deliberately broad: a false positive only encrypts a harmless string. Search it with
# `addresses_in`/`replace_addresses`, not EMAIL's own findall/sub: see `_address_matches`.
_LOCAL_PART = r"[A-Za-z0-9._%+\-]"
EMAIL = re.compile(_LOCAL_PART + r"+(?:@|%40|\\u0040)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_LOCAL_RUN = re.compile(_LOCAL_PART + "+")
TOKEN = re.compile(r"pii:v1:([0-9a-f]{16}):([A-Za-z0-9_\-]+=*)")

# Personal values are JSON-encoded before encryption, so a non-string value comes back as it was.
_NONCE_BYTES = 12
_KEY_BYTES = 32


class MasterKeyError(ConfigError):
    """The master key is malformed or is not the one the keys table was written with."""


class KeyErased(LookupError):
    """The value's key was deleted by an erasure: it cannot be read any more."""


def decode_master_key(text: str, where: str) -> bytes:
    """A master key as configured: 32 bytes in base64. `where` names the source, never the value."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (ValueError, TypeError):
        raise MasterKeyError(f"the master key from {where} is not base64") from None
    if len(key) != _KEY_BYTES:
        raise MasterKeyError(f"the master key from {where} must be {_KEY_BYTES} bytes (base64), got {len(key)}")
    return key


def new_master_key_text() -> str:
    return base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode("ascii")


def normalized_address(address: str) -> str:
    return address.replace("%40", "@").replace("\\u0040", "@").strip().lower()


@dataclass(frozen=True)
class Subject:
    """What a key belongs to: a customer of a tenant, or an address (tenant '' for every tenant)."""

    tenant_id: str
    kind: str
    subject: str


class MasterKey:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        # Address subjects are a keyed hash, so the keys table does not list addresses.
        self._address_hmac_key = hmac.new(key, b"lakehouse address subject v1", hashlib.sha256).digest()

    def __repr__(self) -> str:  # never print the key
        return "MasterKey(<hidden>)"

    def address_subject(self, address: str) -> Subject:
        digest = hmac.new(self._address_hmac_key, normalized_address(address).encode("utf-8"), hashlib.sha256)
        return Subject("", ADDRESS, digest.hexdigest())

    def wrap(self, key_id: str, data_key: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, key_id.encode("ascii"))

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], key_id.encode("ascii"))
        except InvalidTag:
            raise MasterKeyError(
                f"the master key does not open data key {key_id} of the keys table: it is not the master key "
                "this warehouse was written with (see privacy in conf/base.yaml)"
            ) from None


def new_key() -> tuple[str, bytes]:
    return secrets.token_hex(8), AESGCM.generate_key(bit_length=256)


class DataKey:
    __slots__ = ("key_id", "_aead")

    def __init__(self, key_id: str, key: bytes) -> None:
        self.key_id = key_id
        self._aead = AESGCM(key)

    def encrypt(self, value: Any) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        plaintext = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        sealed = nonce + self._aead.encrypt(nonce, plaintext, self.key_id.encode("ascii"))
        return f"{TOKEN_PREFIX}{self.key_id}:{base64.urlsafe_b64encode(sealed).decode('ascii')}"

    def decrypt(self, token_body: str) -> Any:
        sealed = base64.urlsafe_b64decode(token_body)
        plaintext = self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], self.key_id.encode("ascii"))
        return json.loads(plaintext)


# What a protector knows for a subject: its data key, or None when the subject was erased.
KeyLookup = Callable[[Subject], "DataKey | None"]


@dataclass(frozen=True)
class Owner:
    """Whose personal data an event carries: its customer, when one can be told."""

    tenant_id: str
    customer_id: str

    @property
    def subject(self) -> Subject:
        return Subject(self.tenant_id, CUSTOMER, self.customer_id)


def event_owner(tenant_id: str, stream_type: str, stream_id: str, data: Mapping[str, Any]) -> Owner | None:
    customer_id = data.get("customer_id")
    if isinstance(customer_id, str) and customer_id.strip():
        return Owner(tenant_id, customer_id)
    if stream_type == "customer":  # customer-<customer id>, by contract
        return Owner(tenant_id, stream_id.split("-", 1)[1])
    return None


def may_hold_address(text: str) -> bool:
    """A cheap test that rules out most texts before the regular expression runs."""
    return "@" in text or "%40" in text or "\\u0040" in text


def _address_matches(text: str) -> Iterator[re.Match[str]]:
    """EMAIL's matches, as `EMAIL.finditer(text)` finds them, in time linear in the text.

    finditer tries a match at every position, and each try scans the run of local-part characters
    after it: a line with one long run of letters and an `@` costs time quadratic in its length
    (40,000 characters took 14 s, a 3 MB line would take about a day). A match can start only on a
    local-part character, and if none starts at the first character of a run, none starts later in
    that run (any later start's local part, extended back to the run's start, would match there
    too). So each run is tried once, from where the search stands.
    """
    position = 0
    while (run := _LOCAL_RUN.search(text, position)) is not None:
        match = EMAIL.match(text, run.start())
        if match is None:
            position = run.end()
        else:
            yield match
            position = match.end()


def addresses_in(text: str) -> list[str]:
    """Every address in the text, as `EMAIL.findall` gives them."""
    return [match.group(0) for match in _address_matches(text)] if may_hold_address(text) else []


def replace_addresses(text: str, replacement: Callable[[str], str]) -> str:
    """The text with each address replaced by `replacement(address)`, as `EMAIL.sub` would."""
    if not may_hold_address(text):
        return text
    parts, end = [], 0
    for match in _address_matches(text):
        parts += [text[end:match.start()], replacement(match.group(0))]
        end = match.end()
    return "".join(parts) + text[end:]


def subjects_for_event(
    master: MasterKey, owner: Owner | None, personal: dict[str, Any], texts: Iterable[str]
) -> set[Subject]:
    """The keys protecting one event needs: its owner's, or else one per address it holds."""
    if owner is not None:
        return {owner.subject} if (personal or any(may_hold_address(text) for text in texts)) else set()
    found = [address for text in texts for address in addresses_in(text)]
    subjects = {master.address_subject(address) for address in found}
    subjects.update(master.address_subject(str(value)) for value in personal.values())
    return subjects


class Protector:
    """Encrypts one batch's personal values and addresses with keys looked up (or made) beforehand."""

    def __init__(self, master: MasterKey, lookup: KeyLookup) -> None:
        self.master = master
        self.lookup = lookup

    def value(self, value: Any, owner: Owner | None) -> str:
        subject = owner.subject if owner is not None else self.master.address_subject(str(value))
        key = self.lookup(subject)
        return key.encrypt(value) if key is not None else ERASED

    def text(self, text: str, owner: Owner | None = None) -> str:
        """Every address in the text replaced by a token (under the owner's key when there is one)."""
        return replace_addresses(text, lambda address: self.value(address, owner))

    def event_data(self, data: dict[str, Any], personal_fields: Iterable[str], owner: Owner | None) -> dict[str, Any]:
        """The payload with its personal fields encrypted; addresses elsewhere in it too."""
        protected = dict(data)
        for name in personal_fields:
            if protected.get(name) is not None:
                protected[name] = self.value(protected[name], owner)
        return protected


def decrypt_token(token: str, key_of: Callable[[str], "DataKey | None"]) -> Any:
    """The value behind a token; KeyErased when its key no longer exists."""
    match = TOKEN.fullmatch(token)
    if match is None:
        raise ValueError("not a personal-data token")
    key = key_of(match.group(1))
    if key is None:
        raise KeyErased(f"key {match.group(1)} does not exist (erased)")
    return key.decrypt(match.group(2))


def tokens_in(text: str) -> list[tuple[str, str]]:
    """(key id, token body) of every token in a text."""
    return TOKEN.findall(text)
