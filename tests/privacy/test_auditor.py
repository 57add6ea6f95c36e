"""Erasure as an auditor checks it: a history with email changes and erasures (by event and by command,
one address also in a broken line, one in a conflicting duplicate) goes through the whole pipeline and
`maintain --retention-hours 0 --force`; then every file of the warehouse is read, and the output the
run printed, looking for the erased customers' addresses, their keys and the master key."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import io
import os
import re
import secrets
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from jobs import pipeline
from jobs.__main__ import main
from jobs.marts import MART_NAMES
from jobs.privacy.crypto import TOKEN, DataKey, MasterKey
from tests.histories import History, shop_history
from tests.privacy.audit import every_file, forms_of, key_forms, occurrences

pytestmark = pytest.mark.slow  # two pipeline runs of every mart and maintenance of every table at 0 hours: `make test-slow`

ERASED = {
    "c1": ("alice@example.com", "alice.new@example.org", "alice.third@example.net"),  # by event (t1)
    "c3": ("carol@example.com", "Carol.B@example.net"),  # by the erase command (t1)
    "c9": ("dave@example.com",),  # by event (t2)
}
KEPT = ("bob@example.com", "bob.b@example.org")
MASTER_KEY = secrets.token_bytes(32)


def _customer(history: History, customer: str, email: str, tenant: str = "t1") -> dict:
    return history.add(
        "CustomerRegistered", f"customer-{customer}",
        {"customer_id": customer, "email": email, "country": "FR", "referrer": None}, "2026-01-04T09:00:00Z", tenant_id=tenant,
    )


def _first_delivery(with_erasures: bool) -> tuple[History, list[str], dict]:
    history = shop_history()
    registered_c1 = _customer(history, "c1", ERASED["c1"][0])
    changed = history.add("CustomerEmailChanged", "customer-c1", {"customer_id": "c1", "email": ERASED["c1"][1]}, "2026-01-05T20:00:00Z")
    changed["metadata"] = {"correlation_id": "c", "causation_id": "c", "changed_by": ERASED["c1"][0]}
    _customer(history, "c2", KEPT[0])
    history.add("CustomerEmailChanged", "customer-c2", {"customer_id": "c2", "email": KEPT[1]}, "2026-01-05T21:00:00Z")
    registered_c3 = _customer(history, "c3", ERASED["c3"][0])
    history.add("CustomerEmailChanged", "customer-c3", {"customer_id": "c3", "email": ERASED["c3"][1]}, "2026-01-05T22:00:00Z")
    _customer(history, "c9", ERASED["c9"][0], tenant="t2")
    if with_erasures:
        history.add("CustomerErasureRequested", "customer-c1", {"customer_id": "c1"}, "2026-01-06T10:00:00Z")
        history.add("CustomerErasureRequested", "customer-c9", {"customer_id": "c9"}, "2026-01-06T10:00:00Z", tenant_id="t2")
    # A conflicting duplicate (quarantined with its raw text) and a broken line, both with addresses.
    history.events.append(dict(registered_c3, data={**registered_c3["data"], "country": "DE"}))
    broken = '{"event_id": "cut", "tenant_id": "t1", "data": {"customer_id": "c1", "email": "' + ERASED["c1"][0] + '", "cou'
    return history, [broken], registered_c1


def _second_delivery(registered_c1: dict) -> tuple[History, list[str]]:
    later = History()
    later.events = [dict(registered_c1)]  # re-delivered after the erasure
    later.add("CustomerEmailChanged", "customer-c1", {"customer_id": "c1", "email": ERASED["c1"][2]}, "2026-01-06T11:00:00Z", event_id="ev-late-1")
    later.add("OrderCreated", "order-o8", {
        "order_id": "o8", "cart_id": "k8", "customer_id": "c2", "session_id": "s1", "order_source": "web",
        "items": [{"product_id": "p2", "category": "bags", "quantity": 1, "unit_price_cents": 2000}],
        "total_cents": 2000, "currency": "EUR"}, "2026-01-06T12:00:00Z", schema_version=3, event_id="ev-late-2")
    later.add("OrderConfirmed", "order-o8", {"order_id": "o8"}, "2026-01-06T12:01:00Z", event_id="ev-late-3")
    broken = '{"event_id": "cut2", "tenant_id": "t1", "data": {"email": "' + ERASED["c3"][0].upper() + '"'
    return later, [broken]


def _run(settings, folder: Path, with_erasures: bool, output: io.StringIO) -> None:
    """Land the first delivery, erase c3 by command, then land the second and build, validate and
    publish (one publication keeps the test affordable on two cores; the marts see every event)."""
    progress = lambda message: print(message, file=output)  # noqa: E731
    first, broken, registered_c1 = _first_delivery(with_erasures)
    first.write(folder / "landing" / "day1", extra_lines=tuple(broken))
    pipeline.land(settings, folder / "landing", "run-1", progress)
    if with_erasures:
        with contextlib.redirect_stdout(output):
            command = ["erase", "--env", "ci", "--warehouse", settings.warehouse, "--tenant", "t1", "--customer", "c3"]
            assert main(command) == 0
    second, broken = _second_delivery(registered_c1)
    second.write(folder / "landing" / "day2", extra_lines=tuple(broken))
    pipeline.run(settings, folder / "landing", "run-2", progress)


@pytest.fixture(scope="module")
def audited(settings, spark, tmp_path_factory):
    """The history with erasures, and the same without, each through the pipeline; the first also
    maintained at 0 hours. Every mart is enabled, so that every mart is checked."""
    from jobs.maintenance import maintain
    from jobs.status import print_status

    folder = tmp_path_factory.mktemp("audited")
    output = io.StringIO()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LAKEHOUSE_MASTER_KEY", base64.b64encode(MASTER_KEY).decode())
        erased = dataclasses.replace(
            settings, warehouse=str(folder / "erased" / "warehouse"), marts=dataclasses.replace(settings.marts, enabled=MART_NAMES)
        )
        reference = dataclasses.replace(erased, warehouse=str(folder / "reference" / "warehouse"))
        _run(erased, folder / "erased", True, output)
        # The key table's files as they were before maintenance: old versions still hold the deleted keys.
        keys_before = {
            value for path, _raw, values in every_file(Path(erased.warehouse) / "keys")
            for value in values if isinstance(value, bytes)
        }
        maintain(erased, 0, force=True, progress=lambda m: print(m, file=output))
        with contextlib.redirect_stdout(output):
            print_status(erased)
        _run(reference, folder / "reference", False, io.StringIO())
    return erased, reference, keys_before, output.getvalue()


def _rows(spark, settings, table):
    return spark.read.format("delta").load(f"{settings.warehouse}/{table}").collect()


def _erased_key_ids(spark, settings) -> dict[str, str]:
    return {
        row["subject"]: row["key_id"] for row in _rows(spark, settings, "keys/data_keys")
        if row["kind"] == "customer" and row["subject"] in ERASED
    }


def test_no_file_and_no_output_of_the_run_holds_an_erased_customers_address(audited):
    erased, _reference, _keys_before, output = audited
    needles = {email: {form.encode() for form in forms_of(email)} for emails in ERASED.values() for email in emails}
    assert occurrences(Path(erased.warehouse), needles, {"the run's output": output}) == []


def test_no_key_that_opens_an_erased_customers_data_is_left_in_any_file(spark, audited):
    erased, _reference, keys_before, _output = audited
    master = MasterKey(MASTER_KEY)
    erased_ids = _erased_key_ids(spark, erased)
    assert set(erased_ids) == set(ERASED)
    # Every wrapped key any file still holds, and every token any file holds.
    keys, tokens = {}, []
    for _path, raw, values in every_file(Path(erased.warehouse)):
        for value in values:
            if isinstance(value, str):
                tokens.extend(TOKEN.findall(value))
        tokens.extend(TOKEN.findall(raw.decode("utf-8", "replace")))
    for row in _rows(spark, erased, "keys/data_keys"):
        if row["wrapped_key"] is not None:
            keys[row["key_id"]] = DataKey(row["key_id"], master.unwrap(row["key_id"], bytes(row["wrapped_key"])))
    # The erased customers' data is still there, encrypted: the test is not vacuous.
    assert {key_id for key_id, _body in tokens} >= set(erased_ids.values())
    # Files hold copies of tokens cut short: statistics keep prefixes (Delta's log the first 32 characters,
    # an 8-character body; Parquet's page index the first 64 bytes, 40), and compression cuts a copy in a
    # page's raw bytes. Searched in raw bytes, a cut copy may also run on into the next byte when that
    # byte happens to be a base64 character (a length, a compression tag): which byte follows depends on
    # the random keys, so an exact prefix cannot be required. A token its key does not open must be such a
    # copy: it begins like a token the key opens, on at least the 8 characters of the shortest prefix kept
    # (by chance 1 in 2^48), all of it but its last character when shorter.
    opened = {(key_id, body): _opened(keys[key_id], body) for key_id, body in set(tokens) if key_id in keys}
    whole = {token for token, value in opened.items() if value is not None}
    fragments = {token for token, value in opened.items() if value is None}
    assert all(any(k == key_id and _copied(body, b) for k, b in whole) for key_id, body in fragments), fragments
    readable = {str(opened[token]) for token in whole}
    assert not readable & {email for emails in ERASED.values() for email in emails}
    assert not {key_id for key_id, _ in tokens if key_id in keys} & set(erased_ids.values())
    # The mechanism still works for everyone else.
    assert set(KEPT) <= readable
    # Older versions of the key table held the deleted keys; after maintenance no file or log entry does.
    erased_wrapped = {value for value in keys_before if value not in {bytes(r["wrapped_key"]) for r in _rows(spark, erased, "keys/data_keys") if r["wrapped_key"]}}
    assert erased_wrapped
    everything = b"".join(raw for _path, raw, _values in every_file(Path(erased.warehouse)))
    for wrapped in erased_wrapped:
        for form in (wrapped, base64.b64encode(wrapped), wrapped.hex().encode()):
            assert form not in everything


def _copied(fragment: str, body: str) -> bool:
    """Whether a token body found in a file begins like `body`, as a cut copy of it does (see above)."""
    return len(os.path.commonprefix([fragment, body])) >= min(8, len(fragment) - 1)


def _opened(key: DataKey, body: str):
    """The value a token's body holds, or None if the key does not open it (a truncated copy)."""
    try:
        return key.decrypt(body)
    except (InvalidTag, ValueError):
        return None


def test_older_versions_of_the_key_table_are_gone_from_its_transaction_log(spark, audited):
    erased, _reference, _keys_before, _output = audited
    log = _rows(spark, erased, "meta/erasure_log")
    log_dir = Path(erased.warehouse) / "keys" / "data_keys" / "_delta_log"
    versions = {int(m.group(1)) for p in log_dir.iterdir() if (m := re.match(r"^(\d{20})\.(json|checkpoint)", p.name))}
    assert min(versions) >= max(row["keys_table_version"] for row in log)
    with pytest.raises(Exception, match="(?i)version"):
        spark.read.format("delta").option("versionAsOf", 0).load(f"{erased.warehouse}/keys/data_keys").collect()


def test_the_erasure_log_records_each_erasure_its_source_and_when_it_became_physical(spark, audited):
    erased, _reference, _keys_before, output = audited
    log = {(row["tenant_id"], row["customer_id"]): row for row in _rows(spark, erased, "meta/erasure_log")}
    assert {key: row["source"] for key, row in log.items()} == {("t1", "c1"): "event", ("t2", "c9"): "event", ("t1", "c3"): "cli"}
    assert all(row["physical_at"] is not None and row["physical_at"] >= row["erased_at"] for row in log.values())
    assert "Erasures: 3 physical, 0 pending" in output


def test_the_marts_equal_those_of_the_same_history_without_the_erasures(spark, audited):
    erased, reference, _keys_before, _output = audited
    for mart in MART_NAMES:
        with_erasures = spark.read.format("delta").load(pipeline.gold_path(erased, mart))
        without = spark.read.format("delta").load(pipeline.gold_path(reference, mart))
        columns = [c for c in without.columns if c != "is_erased"]
        assert sorted(map(tuple, with_erasures.select(columns).collect())) == sorted(map(tuple, without.select(columns).collect())), mart


def test_erased_customers_keep_their_customer_360_row_marked_erased_with_its_aggregates(spark, audited):
    erased, reference, _keys_before, _output = audited

    def rows(settings):
        table = spark.read.format("delta").load(pipeline.gold_path(settings, "customer_360"))
        return {(r["tenant_id"], r["customer_id"]): r for r in table.collect()}

    with_erasures, without = rows(erased), rows(reference)
    assert {key for key, row in with_erasures.items() if row["is_erased"]} == {("t1", "c1"), ("t1", "c3"), ("t2", "c9")}
    assert not any(row["is_erased"] for row in without.values())
    assert with_erasures[("t1", "c1")]["valid_orders"] == without[("t1", "c1")]["valid_orders"] > 0


def test_the_master_key_is_never_written_or_printed(audited):
    erased, _reference, _keys_before, output = audited
    needles = {f"master {label}": forms for label, forms in key_forms(MASTER_KEY).items()}
    assert occurrences(Path(erased.warehouse), needles, {"the run's output": output}) == []


# Direct identifiers by column name: a whole word of the name (`email`, `phone_number`, `last_name`,
# `billing_address`, `ip`); `email_consent` is a flag about a person, not an identifier, and passes.
DIRECT_IDENTIFIER = re.compile(r"(^|_)(e?mail|email_address|phone|phone_number|mobile|name|first_name|last_name|full_name|address|street|ip)$")
EMAIL_LIKE = re.compile(r"[A-Za-z0-9._%+\-]+(@|%40)[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")


def test_no_published_mart_holds_an_email_or_a_direct_identifier(spark, audited):
    erased, _reference, _keys_before, _output = audited
    published = {row["mart"] for row in _rows(spark, erased, "meta/publications")}
    assert published == set(MART_NAMES)
    problems = []
    for mart in sorted(published):
        table = spark.read.format("delta").load(pipeline.gold_path(erased, mart))
        problems += [f"{mart}.{column}: named like a direct identifier" for column in table.columns if DIRECT_IDENTIFIER.search(column)]
        for row in table.collect():
            problems += [f"{mart}.{column}: {value!r}" for column, value in row.asDict().items() if EMAIL_LIKE.search(str(value))]
    assert problems == []


def test_the_identifier_check_would_catch_what_it_looks_for():
    assert all(DIRECT_IDENTIFIER.search(name) for name in ("email", "customer_email", "phone_number", "last_name", "billing_address"))
    assert not any(DIRECT_IDENTIFIER.search(name) for name in ("email_consent", "customer_id", "campaign_id", "channel_medium"))
    assert EMAIL_LIKE.search("x bob@example.com y") and not EMAIL_LIKE.search("t1|c1|2026-01-05")
