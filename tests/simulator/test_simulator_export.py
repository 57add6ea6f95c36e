"""The simulator's output, read back as a lander would, checked against the contract in events.md.

One three-week, two-tenant run with the default settings (the demo) is simulated once per module and
read into memory; each test checks one promise about it. The spec tables below are written out from
events.md on purpose, not imported from the simulator, so that the simulator cannot grade itself.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from jobs.simulator import SimulationSummary, SimulatorSettings, simulate

START = date(2026, 1, 5)
DAYS = 21
TENANTS = 2
SEED = 20260105

# events.md, "Catalog": stream type and payload fields per (event type, schema version).
STREAM_TYPE_OF = {
    "CustomerRegistered": "customer", "CustomerEmailChanged": "customer", "MarketingConsentChanged": "customer",
    "CustomerErasureRequested": "customer", "SessionStarted": "session", "ProductViewed": "session",
    "ExperimentExposed": "session", "CartItemAdded": "cart", "CartItemRemoved": "cart", "OrderCreated": "order",
    "PromotionApplied": "order", "OrderConfirmed": "order", "PaymentCaptured": "order", "OrderShipped": "order",
    "OrderDelivered": "order", "OrderCancelled": "order", "OrderRefunded": "order", "EmailCampaignSent": "campaign",
    "EmailOpened": "campaign", "EmailClicked": "campaign", "CampaignSpendRecorded": "campaign",
}
_ORDER_HEAD = {"order_id", "cart_id", "customer_id", "session_id", "items"}
_CART_HEAD = {"cart_id", "session_id", "customer_id", "product_id", "category", "quantity"}
PAYLOAD_FIELDS: dict[tuple[str, int], set[str]] = {
    ("CustomerRegistered", 1): {"customer_id", "email", "country", "referrer"},
    ("CustomerRegistered", 2): {"customer_id", "email", "country", "acquisition"},
    ("CustomerEmailChanged", 1): {"customer_id", "email"},
    ("MarketingConsentChanged", 1): {"customer_id", "channel", "granted"},
    ("CustomerErasureRequested", 1): {"customer_id"},
    ("SessionStarted", 1): {"session_id", "anonymous_id", "customer_id", "source", "medium", "campaign", "device",
                            "landing_page"},
    ("ProductViewed", 1): {"session_id", "anonymous_id", "customer_id", "product_id", "category"},
    ("ExperimentExposed", 1): {"experiment_id", "variant", "session_id", "anonymous_id", "customer_id"},
    ("CartItemAdded", 1): _CART_HEAD | {"unit_price"},
    ("CartItemAdded", 2): _CART_HEAD | {"unit_price_cents", "currency"},
    ("CartItemRemoved", 1): {"cart_id", "product_id", "quantity"},
    ("OrderCreated", 1): _ORDER_HEAD | {"total"},
    ("OrderCreated", 2): _ORDER_HEAD | {"total_cents", "currency"},
    ("OrderCreated", 3): _ORDER_HEAD | {"total_cents", "currency", "order_source"},
    ("PromotionApplied", 1): {"order_id", "promo_code", "discount_cents"},
    ("OrderConfirmed", 1): {"order_id"},
    ("PaymentCaptured", 1): {"order_id", "amount_cents", "method"},
    ("OrderShipped", 1): {"order_id", "carrier"},
    ("OrderDelivered", 1): {"order_id"},
    ("OrderCancelled", 1): {"order_id", "reason"},
    ("OrderRefunded", 1): {"order_id", "amount_cents"},
    ("EmailCampaignSent", 1): {"campaign_id", "customer_id"},
    ("EmailOpened", 1): {"campaign_id", "customer_id"},
    ("EmailClicked", 1): {"campaign_id", "customer_id", "url"},
    ("CampaignSpendRecorded", 1): {"campaign_id", "channel", "spend_date", "cost_cents", "currency"},
}
NEWEST_VERSION = {event_type: max(v for t, v in PAYLOAD_FIELDS if t == event_type) for event_type in STREAM_TYPE_OF}
ITEM_FIELDS = {1: {"product_id", "category", "quantity", "unit_price"},
               2: {"product_id", "category", "quantity", "unit_price_cents"}}
ENVELOPE_TYPES: dict[str, type] = {
    "event_id": str, "tenant_id": str, "stream_id": str, "stream_version": int, "global_position": int,
    "event_type": str, "schema_version": int, "occurred_at": str, "recorded_at": str, "data": dict, "metadata": dict,
}
EMAIL = re.compile(r"[a-z0-9._-]+@[a-z0-9.-]+\.[a-z]+")
UUID_LIKE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# --- reading an export the way a lander would ---------------------------------------------------


def utc(timestamp: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(timestamp)
    except (TypeError, ValueError):
        return None
    return parsed.astimezone(timezone.utc) if parsed.tzinfo is not None else None


def envelope_problem(event: Any) -> str | None:
    if not isinstance(event, dict):
        return "not an object"
    for name, expected in ENVELOPE_TYPES.items():
        value = event.get(name)
        if value is None or isinstance(value, bool) or not isinstance(value, expected):
            return f"{name} missing or not {expected.__name__}"
    if utc(event["occurred_at"]) is None or utc(event["recorded_at"]) is None:
        return "timestamp without offset or unparseable"
    return None


@dataclass
class Line:
    path: str
    number: int
    text: str
    category: str  # event, unknown_type, future_version, exact_duplicate, conflicting_duplicate, broken
    event: dict[str, Any] | None


@dataclass
class Export:
    lines: list[Line] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def of(self, *categories: str) -> list[Line]:
        return [line for line in self.lines if line.category in categories]

    @property
    def events(self) -> list[dict[str, Any]]:
        """First deliveries of catalog events."""
        return [line.event for line in self.lines if line.category == "event"]

    @property
    def well_formed(self) -> list[dict[str, Any]]:
        """First deliveries of every event with a valid envelope, known to the catalog or not."""
        return [line.event for line in self.of("event", "unknown_type", "future_version")]

    def typed(self, event_type: str, *categories: str) -> list[dict[str, Any]]:
        wanted = categories or ("event",)
        return [line.event for line in self.of(*wanted) if line.event["event_type"] == event_type]


def read_export(root: Path) -> Export:
    export = Export()
    first_text: dict[str, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        export.files.append(relative)
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as stream:
            for number, raw in enumerate(stream, start=1):
                text = raw.decode("utf-8").rstrip("\n")
                category, event = classify(text, first_text)
                export.lines.append(Line(relative, number, text, category, event))
    return export


def classify(text: str, first_text: dict[str, str]) -> tuple[str, dict[str, Any] | None]:
    try:
        event = json.loads(text)
    except ValueError:
        return "broken", None
    if envelope_problem(event):
        return "broken", None
    event_id = event["event_id"]
    if event_id in first_text:
        return ("exact_duplicate" if first_text[event_id] == text else "conflicting_duplicate"), event
    first_text[event_id] = text
    if event["event_type"] not in STREAM_TYPE_OF:
        return "unknown_type", event
    if event["schema_version"] > NEWEST_VERSION[event["event_type"]]:
        return "future_version", event
    return "event", event


def at(event: dict[str, Any], name: str = "occurred_at") -> datetime:
    parsed = utc(event[name])
    assert parsed is not None
    return parsed


def is_late(event: dict[str, Any]) -> bool:
    return at(event, "recorded_at") - at(event) > timedelta(hours=24)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulationSummary, Export]:
    out_dir = tmp_path_factory.mktemp("demo_export")
    summary = simulate(out_dir, days=DAYS, tenants=TENANTS, seed=SEED, start_date=START)
    return summary, read_export(out_dir)


@pytest.fixture(scope="module")
def export(demo: tuple[SimulationSummary, Export]) -> Export:
    return demo[1]


@pytest.fixture(scope="module")
def summary(demo: tuple[SimulationSummary, Export]) -> SimulationSummary:
    return demo[0]


END = datetime(START.year, START.month, START.day, tzinfo=timezone.utc) + timedelta(days=DAYS)
# Events of the last days may still have companions recorded after the export ends (late events,
# deliveries); checks that need a complete story look only before this instant.
SETTLED_BEFORE = END - timedelta(days=5)


# --- size and coverage --------------------------------------------------------------------------


def test_a_three_week_two_tenant_demo_run_has_20k_to_60k_events(summary: SimulationSummary) -> None:
    assert 20_000 <= summary.events_written <= 60_000


def test_every_event_type_and_schema_version_of_the_catalog_appears(export: Export) -> None:
    seen = {(event["event_type"], event["schema_version"]) for event in export.events}
    assert seen == set(PAYLOAD_FIELDS)


# --- the envelope -------------------------------------------------------------------------------


def test_every_well_formed_event_names_a_stream_of_its_type_and_carries_metadata(export: Export) -> None:
    for event in export.well_formed:
        stream_type, _, entity_id = event["stream_id"].partition("-")
        assert stream_type in {"customer", "session", "cart", "order", "campaign"} and entity_id, event["stream_id"]
        if event["event_type"] in STREAM_TYPE_OF:
            assert stream_type == STREAM_TYPE_OF[event["event_type"]], event
        assert event["stream_version"] >= 1 and event["global_position"] >= 1 and event["schema_version"] >= 1
        metadata = event["metadata"]
        assert isinstance(metadata["correlation_id"], str) and isinstance(metadata["causation_id"], str)
        assert set(metadata) <= {"correlation_id", "causation_id", "producer"}
        assert isinstance(metadata.get("producer", ""), str)


def test_ids_are_uuid_like_strings_and_event_ids_are_unique(export: Export) -> None:
    event_ids = [event["event_id"] for event in export.well_formed]
    assert len(event_ids) == len(set(event_ids))
    for event in export.well_formed:
        assert UUID_LIKE.match(event["event_id"]), event["event_id"]
        assert UUID_LIKE.match(event["stream_id"].partition("-")[2]) or event["stream_id"].startswith("campaign-")


def test_customer_ids_belong_to_one_tenant(export: Export) -> None:
    tenants_of: dict[str, set[str]] = defaultdict(set)
    for event in export.typed("CustomerRegistered"):
        tenants_of[event["data"]["customer_id"]].add(event["tenant_id"])
    assert tenants_of and all(len(tenants) == 1 for tenants in tenants_of.values())


def test_timestamps_carry_z_zero_and_non_utc_offsets(export: Export) -> None:
    def offset_kind(timestamp: str) -> str:
        if timestamp.endswith("Z"):
            return "Z"
        return "+00:00" if timestamp.endswith("+00:00") else "other"

    occurred = Counter(offset_kind(event["occurred_at"]) for event in export.well_formed)
    recorded = Counter(offset_kind(event["recorded_at"]) for event in export.well_formed)
    assert set(occurred) == {"Z", "+00:00", "other"}
    assert set(recorded) == {"Z", "+00:00", "other"}
    # Some local times fall on another calendar day than their UTC instant.
    assert any(event["occurred_at"][:10] != at(event).date().isoformat() for event in export.well_formed)


def test_stream_versions_are_contiguous_from_one_in_every_stream(export: Export) -> None:
    versions: dict[tuple[str, str], list[int]] = defaultdict(list)
    for event in export.well_formed:
        versions[(event["tenant_id"], event["stream_id"])].append(event["stream_version"])
    for stream, numbers in versions.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), stream


def test_global_positions_count_up_with_recorded_at_across_all_tenants(export: Export) -> None:
    by_position = sorted(export.well_formed, key=lambda event: event["global_position"])
    assert [event["global_position"] for event in by_position] == list(range(1, len(by_position) + 1))
    recorded = [at(event, "recorded_at") for event in by_position]
    assert all(earlier < later for earlier, later in zip(recorded, recorded[1:]))
    assert len({event["tenant_id"] for event in by_position}) == TENANTS


def test_stream_version_order_follows_recording_order(export: Export) -> None:
    positions: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for event in export.well_formed:
        positions[event["stream_id"]].append((event["stream_version"], event["global_position"]))
    for stream_id, pairs in positions.items():
        pairs.sort()
        assert [p for _, p in pairs] == sorted(p for _, p in pairs), stream_id


def test_each_file_holds_the_events_recorded_in_its_utc_hour(export: Export) -> None:
    for line in export.of("event", "unknown_type", "future_version"):
        recorded = at(line.event, "recorded_at")
        assert line.path.startswith(f"{recorded:%Y-%m-%d}/{recorded:%H}/"), (line.path, line.event["recorded_at"])


def test_producer_clocks_sometimes_disagree_with_stream_order_by_minutes(export: Export) -> None:
    streams: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in export.well_formed:
        streams[event["stream_id"]].append(event)
    skewed = 0
    for events in streams.values():
        events.sort(key=lambda event: event["stream_version"])
        for before, after in zip(events, events[1:]):
            if not is_late(before) and not is_late(after) and at(after) < at(before):
                assert at(before) - at(after) < timedelta(hours=1)
                # Network latency alone reorders events by under a second; a skewed clock by minutes.
                skewed += at(before) - at(after) >= timedelta(seconds=30)
    assert skewed > 0


# --- payloads -----------------------------------------------------------------------------------


def test_payload_fields_are_exactly_those_of_the_spec_for_each_type_and_version(export: Export) -> None:
    for event in export.events:
        key = (event["event_type"], event["schema_version"])
        assert set(event["data"]) == PAYLOAD_FIELDS[key], key
        if event["event_type"] == "OrderCreated":
            item_fields = ITEM_FIELDS[1 if event["schema_version"] == 1 else 2]
            assert event["data"]["items"] and all(set(item) == item_fields for item in event["data"]["items"])
        if key == ("CustomerRegistered", 2):
            assert set(event["data"]["acquisition"]) == {"source", "medium", "campaign"}


def test_future_schema_versions_are_the_newest_version_plus_one_extra_field(export: Export) -> None:
    future = export.typed("OrderCreated", "future_version")
    assert future, "an OrderCreated in a version newer than the contract"
    for event in export.of("future_version"):
        newest = NEWEST_VERSION[event.event["event_type"]]
        assert event.event["schema_version"] == newest + 1
        extra = set(event.event["data"]) - PAYLOAD_FIELDS[(event.event["event_type"], newest)]
        assert len(extra) == 1 and set(event.event["data"]) >= PAYLOAD_FIELDS[(event.event["event_type"], newest)]


def _decimals(number: float) -> int:
    text = repr(number)
    return len(text.split(".")[1]) if "." in text else 0


def test_v1_amounts_are_major_units_with_at_most_two_decimals(export: Export) -> None:
    amounts = [event["data"]["unit_price"] for event in export.events
               if event["event_type"] == "CartItemAdded" and event["schema_version"] == 1]
    for event in export.events:
        if event["event_type"] == "OrderCreated" and event["schema_version"] == 1:
            amounts.append(event["data"]["total"])
            amounts.extend(item["unit_price"] for item in event["data"]["items"])
    assert amounts
    for amount in amounts:
        assert isinstance(amount, (int, float)) and not isinstance(amount, bool)
        assert _decimals(amount) <= 2, amount


def test_v2_and_later_amounts_are_integer_cents_with_a_currency(export: Export) -> None:
    checked = 0
    for event in export.events:
        data = event["data"]
        for name in ("unit_price_cents", "total_cents", "cost_cents", "amount_cents", "discount_cents"):
            if name in data:
                assert isinstance(data[name], int) and not isinstance(data[name], bool) and data[name] > 0, event
                checked += 1
        if "unit_price_cents" in data or "total_cents" in data:
            assert re.fullmatch(r"[A-Z]{3}", data["currency"])
    assert checked > 1000


def test_each_tenant_uses_one_currency_from_v2_on_and_one_tenant_is_not_in_euro(
    export: Export, summary: SimulationSummary
) -> None:
    currencies: dict[str, set[str]] = defaultdict(set)
    for event in export.events:
        if "currency" in event["data"]:
            currencies[event["tenant_id"]].add(event["data"]["currency"])
    assert {tenant: {currency} for tenant, currency in summary.tenant_currencies.items()} == dict(currencies)
    assert any(currency != "EUR" for currency in summary.tenant_currencies.values())


def test_order_totals_are_the_sum_of_quantity_times_unit_price(export: Export) -> None:
    for event in export.typed("OrderCreated", "event", "future_version"):
        data = event["data"]
        if event["schema_version"] == 1:
            item_cents = sum(item["quantity"] * round(item["unit_price"] * 100) for item in data["items"])
            assert round(data["total"] * 100) == item_cents
        else:
            assert data["total_cents"] == sum(item["quantity"] * item["unit_price_cents"] for item in data["items"])


def test_order_items_are_what_is_left_in_their_cart(export: Export) -> None:
    left: dict[str, Counter[str]] = defaultdict(Counter)
    carts = sorted(export.typed("CartItemAdded", "event", "future_version") + export.typed("CartItemRemoved"),
                   key=lambda event: event["stream_version"])
    for event in carts:
        sign = 1 if event["event_type"] == "CartItemAdded" else -1
        left[event["data"]["cart_id"]][event["data"]["product_id"]] += sign * event["data"]["quantity"]
    orders = [event for event in export.typed("OrderCreated", "event", "future_version") if at(event) < SETTLED_BEFORE]
    with_cart = [event for event in orders if event["data"]["cart_id"] is not None]
    assert with_cart
    for order in with_cart:
        ordered = {item["product_id"]: item["quantity"] for item in order["data"]["items"]}
        remaining = {product: quantity for product, quantity in left[order["data"]["cart_id"]].items() if quantity > 0}
        assert ordered == remaining, order["data"]["order_id"]


# --- behaviour ----------------------------------------------------------------------------------


def test_schema_versions_switch_on_their_dates(export: Export) -> None:
    day = lambda offset: datetime(START.year, START.month, START.day, tzinfo=timezone.utc) + timedelta(days=offset)  # noqa: E731
    skew = timedelta(minutes=10)  # producer clocks may be a few minutes off
    windows = {
        ("OrderCreated", 1): (None, day(7)), ("OrderCreated", 2): (day(7), day(14)), ("OrderCreated", 3): (day(14), None),
        ("CartItemAdded", 1): (None, day(5)), ("CartItemAdded", 2): (day(5), None),
        ("CustomerRegistered", 1): (None, day(9)), ("CustomerRegistered", 2): (day(9), None),
    }
    for event in export.events:
        window = windows.get((event["event_type"], event["schema_version"]))
        if window:
            begins, ends = window
            assert begins is None or at(event) >= begins - skew, event
            assert ends is None or at(event) < ends + skew, event


def test_registrations_carry_a_referrer_before_and_an_acquisition_after_the_switch(export: Export) -> None:
    referrers = [event["data"]["referrer"] for event in export.events
                 if event["event_type"] == "CustomerRegistered" and event["schema_version"] == 1]
    assert None in referrers and any(isinstance(r, str) and r.startswith("https://") for r in referrers)
    acquisitions = [event["data"]["acquisition"] for event in export.events
                    if event["event_type"] == "CustomerRegistered" and event["schema_version"] == 2]
    assert {"source": "direct", "medium": "none", "campaign": None} in acquisitions
    assert any(acquisition["campaign"] for acquisition in acquisitions)


def test_sessions_come_from_search_social_email_and_direct_with_campaigns_where_paid(export: Export) -> None:
    sessions = export.typed("SessionStarted")
    channels = {(s["data"]["source"], s["data"]["medium"]) for s in sessions}
    assert {("google", "cpc"), ("google", "organic"), ("facebook", "paid_social"), ("newsletter", "email"),
            ("direct", "none")} <= channels
    for session in sessions:
        has_campaign = session["data"]["campaign"] is not None
        assert has_campaign == (session["data"]["medium"] not in ("organic", "none", "referral")), session["data"]
    assert {s["data"]["device"] for s in sessions} == {"desktop", "mobile", "tablet"}


def test_email_clicks_start_newsletter_sessions_of_their_campaign(export: Export) -> None:
    sessions = {(s["data"]["campaign"], s["data"]["customer_id"]) for s in export.typed("SessionStarted")
                if (s["data"]["source"], s["data"]["medium"]) == ("newsletter", "email")}
    clicks = [click for click in export.typed("EmailClicked") if at(click) < SETTLED_BEFORE]
    assert clicks
    for click in clicks:
        assert (click["data"]["campaign_id"], click["data"]["customer_id"]) in sessions


def test_email_campaigns_reach_customers_who_open_and_click(export: Export) -> None:
    sent = Counter(event["data"]["campaign_id"] for event in export.typed("EmailCampaignSent"))
    opened = Counter(event["data"]["campaign_id"] for event in export.typed("EmailOpened"))
    assert len(sent) >= 5 * TENANTS
    assert 0.1 < sum(opened.values()) / sum(sent.values()) < 0.6
    assert len(export.typed("EmailClicked")) < sum(opened.values())


def test_every_campaign_reports_its_spend_once_a_day(export: Export) -> None:
    spend_days: dict[str, list[str]] = defaultdict(list)
    for event in export.typed("CampaignSpendRecorded"):
        spend_days[event["data"]["campaign_id"]].append(event["data"]["spend_date"])
    settled_days = {(START + timedelta(days=d)).isoformat() for d in range(DAYS - 5)}
    paid = [campaign for campaign in spend_days if not campaign.startswith("newsletter-")]
    assert len(paid) == 7 * TENANTS
    for campaign in paid:
        assert len(spend_days[campaign]) == len(set(spend_days[campaign]))
        assert settled_days <= set(spend_days[campaign]), campaign
    channels = {event["data"]["channel"] for event in export.typed("CampaignSpendRecorded")}
    assert channels == {"email", "paid_search", "paid_social", "display", "affiliate"}


def test_most_carts_are_abandoned_and_some_removals_take_out_more_than_was_added(export: Export) -> None:
    carts = {event["data"]["cart_id"] for event in export.typed("CartItemAdded", "event", "future_version")}
    converted = {event["data"]["cart_id"] for event in export.typed("OrderCreated", "event", "future_version")}
    assert converted and converted <= carts | {None}
    assert len(converted - {None}) / len(carts) < 0.5
    net: Counter[tuple[str, str]] = Counter()
    for event in export.typed("CartItemAdded", "event", "future_version") + export.typed("CartItemRemoved"):
        sign = 1 if event["event_type"] == "CartItemAdded" else -1
        net[(event["data"]["cart_id"], event["data"]["product_id"])] += sign * event["data"]["quantity"]
    assert any(quantity < 0 for quantity in net.values())


def test_orders_run_their_lifecycle_with_cancellations_and_full_and_partial_refunds(export: Export) -> None:
    by_order: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for event in export.events + export.typed("OrderCreated", "future_version"):
        if event["stream_id"].startswith("order-"):
            by_order[event["data"]["order_id"]][event["event_type"]].append(event)
    cancelled = [o for o in by_order.values() if "OrderCancelled" in o]
    assert any("OrderConfirmed" in o for o in cancelled) and any("OrderConfirmed" not in o for o in cancelled)
    assert any("OrderDelivered" in o for o in by_order.values())
    full = partial = 0
    for order in by_order.values():
        if "OrderRefunded" not in order or "OrderCreated" not in order:
            continue
        created = order["OrderCreated"][0]["data"]
        gross = created.get("total_cents", round(created.get("total", 0) * 100))
        net = gross - sum(p["data"]["discount_cents"] for p in order.get("PromotionApplied", []))
        refunded = sum(r["data"]["amount_cents"] for r in order["OrderRefunded"])
        assert refunded <= net
        full += refunded == net
        partial += refunded < net
    assert full and partial
    assert export.typed("PromotionApplied")


def test_phone_and_marketplace_orders_have_no_session_and_no_cart(export: Export) -> None:
    orders = export.typed("OrderCreated", "event", "future_version")
    offline = [order for order in orders if order["data"]["session_id"] is None]
    assert offline and all(order["data"]["cart_id"] is None for order in offline)
    sources = Counter(order["data"].get("order_source") for order in orders if order["schema_version"] >= 3)
    assert {"web", "mobile_app", "phone", "marketplace"} <= set(sources)
    assert all(order["data"]["order_source"] in ("phone", "marketplace") for order in offline if order["schema_version"] >= 3)


def test_payments_capture_the_order_total_after_discounts(export: Export) -> None:
    totals: dict[str, int] = {}
    for order in export.typed("OrderCreated"):
        data = order["data"]
        totals[data["order_id"]] = data["total_cents"] if "total_cents" in data else round(data["total"] * 100)
    for promotion in export.typed("PromotionApplied"):
        if promotion["data"]["order_id"] in totals:
            totals[promotion["data"]["order_id"]] -= promotion["data"]["discount_cents"]
    payments = [p for p in export.typed("PaymentCaptured") if p["data"]["order_id"] in totals]
    assert payments
    assert all(p["data"]["amount_cents"] == totals[p["data"]["order_id"]] for p in payments)
    assert {p["data"]["method"] for p in payments} == {"card", "paypal", "transfer"}


def test_customers_change_email_and_consent_and_a_few_ask_for_erasure(export: Export) -> None:
    assert export.typed("CustomerEmailChanged")
    consents = export.typed("MarketingConsentChanged")
    assert {(c["data"]["channel"], c["data"]["granted"]) for c in consents} == {
        ("email", True), ("email", False), ("sms", True), ("sms", False)}
    erasures = export.typed("CustomerErasureRequested")
    registered = len(export.typed("CustomerRegistered"))
    assert 2 <= len(erasures) < 0.1 * registered


def test_a_broken_line_holds_the_email_address_of_a_customer_who_asked_for_erasure(export: Export) -> None:
    emails_of: dict[str, set[str]] = defaultdict(set)
    for event in export.typed("CustomerRegistered", "event", "future_version") + export.typed("CustomerEmailChanged"):
        emails_of[event["data"]["customer_id"]].add(event["data"]["email"])
    erased_emails = {email for erasure in export.typed("CustomerErasureRequested")
                     for email in emails_of[erasure["data"]["customer_id"]]}
    broken_emails = {email for line in export.of("broken") for email in EMAIL.findall(line.text)}
    assert broken_emails & erased_emails


def test_experiments_show_control_and_treatment_and_a_few_visitors_see_both(export: Export) -> None:
    variants: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for exposure in export.typed("ExperimentExposed"):
        data = exposure["data"]
        variants[data["experiment_id"]][data["anonymous_id"]].add(data["variant"])
    for settings in SimulatorSettings().experiments:
        seen = variants[settings.experiment_id]
        assert {v for vs in seen.values() for v in vs} == {name for name, _ in settings.variants}
        contaminated = sum(len(vs) > 1 for vs in seen.values())
        assert 0 < contaminated < 0.1 * len(seen)


# --- what the summary says is what the files hold -----------------------------------------------


def test_the_summary_counts_what_is_in_the_files(export: Export, summary: SimulationSummary) -> None:
    categories = Counter(line.category for line in export.lines)
    assert sorted(summary.files) == export.files
    assert summary.lines_written == len(export.lines)
    assert summary.events_written == categories["event"] + categories["exact_duplicate"]
    assert summary.exact_duplicates == categories["exact_duplicate"]
    assert summary.conflicting_duplicates == categories["conflicting_duplicate"]
    assert summary.broken_lines == categories["broken"] == sum(summary.broken_line_kinds.values())
    assert summary.unknown_event_types == categories["unknown_type"]
    assert summary.future_schema_versions == categories["future_version"]
    assert summary.late_events == sum(is_late(event) for event in export.events)
    assert summary.event_type_counts == dict(Counter(event["event_type"] for event in export.events))
    versions = Counter((event["event_type"], event["schema_version"]) for event in export.events)
    assert {(t, v): n for t, by_version in summary.schema_version_counts.items() for v, n in by_version.items()} == versions


def test_every_kind_of_anomaly_is_present_at_the_default_rates(summary: SimulationSummary) -> None:
    for kind in ("exact_duplicates", "conflicting_duplicates", "late_events", "broken_lines", "unknown_event_types",
                 "future_schema_versions"):
        assert getattr(summary, kind) > 0, kind


def test_the_summary_is_json_friendly(summary: SimulationSummary) -> None:
    as_dict = json.loads(json.dumps(summary.to_dict()))
    assert as_dict["events_written"] == summary.events_written
    assert as_dict["start_date"] == START.isoformat()
    assert as_dict["schema_version_counts"]["OrderCreated"].keys() == {"1", "2", "3"}


# --- anomalies at raised rates ------------------------------------------------------------------
# A second, shorter run with every anomaly at a few percent, so that measured rates are tight.

RAISED = {
    "exact_duplicate_rate": 0.03,
    "conflicting_duplicate_rate": 0.02,
    "late_event_rate": 0.03,
    "broken_line_rate": 0.02,
    "unknown_event_type_rate": 0.02,
    "future_schema_version_rate": 0.05,
    "erased_email_broken_line_rate": 1.0,
}
RAISED_DAYS = 8
RAISED_END = datetime(START.year, START.month, START.day, tzinfo=timezone.utc) + timedelta(days=RAISED_DAYS)


@pytest.fixture(scope="module")
def raised(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulationSummary, Export]:
    settings = SimulatorSettings.from_mapping({
        "events_per_tenant_per_day": 1500,
        # Newest versions from the start, so that every type that can get a future version does.
        "schema_switch_dates": {"CustomerRegistered": {2: 0}, "CartItemAdded": {2: 0}, "OrderCreated": {2: 0, 3: 1}},
        "behaviour": {"erasure_rate": 0.01},
        "anomalies": RAISED,
    })
    out_dir = tmp_path_factory.mktemp("raised_export")
    summary = simulate(out_dir, days=RAISED_DAYS, tenants=2, seed=SEED + 1, start_date=START, settings=settings)
    return summary, read_export(out_dir)


def assert_near(measured: float, configured: float) -> None:
    assert configured * 0.75 <= measured <= configured * 1.25, f"measured {measured:.4f}, configured {configured}"


def test_raised_run_counts_match_the_files(raised: tuple[SimulationSummary, Export]) -> None:
    summary, export = raised
    categories = Counter(line.category for line in export.lines)
    assert (summary.exact_duplicates, summary.conflicting_duplicates, summary.broken_lines,
            summary.unknown_event_types, summary.future_schema_versions) == (
        categories["exact_duplicate"], categories["conflicting_duplicate"], categories["broken"],
        categories["unknown_type"], categories["future_version"])
    assert summary.late_events == sum(is_late(event) for event in export.events)
    assert summary.lines_written == len(export.lines)


def test_exact_duplicates_are_byte_identical_redeliveries_at_their_rate(raised: tuple[SimulationSummary, Export]) -> None:
    _, export = raised
    duplicates = export.of("exact_duplicate")
    assert_near(len(duplicates) / len(export.events), RAISED["exact_duplicate_rate"])
    first_file = {line.event["event_id"]: line.path for line in export.of("event")}
    same_file = sum(first_file[line.event["event_id"]] == line.path for line in duplicates)
    assert 0 < same_file < len(duplicates), "some in the same file, some in a later one"


def test_conflicting_duplicates_reuse_an_event_id_with_other_content_at_their_rate(
    raised: tuple[SimulationSummary, Export]
) -> None:
    _, export = raised
    first = {line.event["event_id"]: line for line in export.of("event")}
    conflicts = export.of("conflicting_duplicate")
    assert_near(len(conflicts) / len(export.events), RAISED["conflicting_duplicate_rate"])
    for line in conflicts:
        original = first[line.event["event_id"]]
        assert line.text != original.text
        assert (line.path, line.number) > (original.path, original.number), "the original is delivered first"


def test_broken_lines_of_every_kind_appear_at_their_rate(raised: tuple[SimulationSummary, Export]) -> None:
    summary, export = raised
    leaked = summary.broken_line_kinds.get("truncated_with_email", 0)
    assert_near((len(export.of("broken")) - leaked) / len(export.events), RAISED["broken_line_rate"])
    assert set(summary.broken_line_kinds) == {
        "truncated", "wrong_type", "missing_field", "not_an_object", "bad_timestamp", "truncated_with_email"}
    texts = [line.text for line in export.of("broken")]
    assert any(text.startswith("[") for text in texts) and any('"stream_version":"' in text for text in texts)


def test_every_erasure_request_is_shadowed_by_a_broken_line_with_that_customers_email(
    raised: tuple[SimulationSummary, Export]
) -> None:
    _, export = raised
    email_of: dict[str, set[str]] = defaultdict(set)
    for event in export.typed("CustomerRegistered", "event", "future_version") + export.typed("CustomerEmailChanged"):
        email_of[event["data"]["customer_id"]].add(event["data"]["email"])
    broken_text = "\n".join(line.text for line in export.of("broken"))
    # (A registration recorded late, after the export ends, leaves nothing to compare with.)
    erasures = [e for e in export.typed("CustomerErasureRequested") if email_of[e["data"]["customer_id"]]]
    assert len(erasures) >= 3
    for erasure in erasures:
        assert any(email in broken_text for email in email_of[erasure["data"]["customer_id"]])


def test_late_events_land_in_a_later_days_file_at_their_rate(raised: tuple[SimulationSummary, Export]) -> None:
    _, export = raised
    # Only events old enough that even the latest possible delivery (3 days + 1 hour) is in the export.
    settled = [line for line in export.of("event") if at(line.event) < RAISED_END - timedelta(days=3, hours=2)]
    late = [line for line in settled if is_late(line.event)]
    assert_near(len(late) / len(settled), RAISED["late_event_rate"])
    for line in late:
        assert line.path[:10] > at(line.event).date().isoformat()
        assert at(line.event, "recorded_at") - at(line.event) < timedelta(days=3, hours=2)


def test_late_events_keep_stream_versions_contiguous(raised: tuple[SimulationSummary, Export]) -> None:
    _, export = raised
    versions: dict[str, list[int]] = defaultdict(list)
    for event in export.well_formed:
        versions[event["stream_id"]].append(event["stream_version"])
    late_streams = {event["stream_id"] for event in export.events if is_late(event)}
    assert late_streams
    for stream_id in late_streams:
        assert sorted(versions[stream_id]) == list(range(1, len(versions[stream_id]) + 1))


def test_unknown_event_types_appear_in_existing_streams_at_their_rate(raised: tuple[SimulationSummary, Export]) -> None:
    _, export = raised
    unknown = export.of("unknown_type")
    known = len(export.events) + len(export.of("future_version"))
    assert_near(len(unknown) / known, RAISED["unknown_event_type_rate"])
    stream_types = {line.event["stream_id"].partition("-")[0] for line in unknown}
    assert {"customer", "session", "cart", "order", "campaign"} <= stream_types | {"customer", "campaign"}
    assert "WishlistItemAdded" in {line.event["event_type"] for line in unknown}


def test_future_schema_versions_appear_at_their_rate(raised: tuple[SimulationSummary, Export]) -> None:
    _, export = raised
    future = export.of("future_version")
    future_types = {line.event["event_type"] for line in future}
    assert {"OrderCreated", "CartItemAdded", "CustomerRegistered"} <= future_types
    newest = [event for event in export.events
              if event["event_type"] in future_types and event["schema_version"] == NEWEST_VERSION[event["event_type"]]]
    assert_near(len(future) / (len(future) + len(newest)), RAISED["future_schema_version_rate"])
