"""Hand-made checks of the oracle's landing, orders and sales against the edge cases the specs imply.

Pure Python: no Spark. Each test writes a tiny history as NDJSON and reads it back through `land`.
"""

from __future__ import annotations

import datetime as dt
import gzip
import itertools
import json
from pathlib import Path
from typing import Any

from tests.oracle.events import Event, Landed, as_of, known_sessions, land, referrer_acquisition, to_cents
from tests.oracle.orders import orders
from tests.oracle.sales import basket_daily, cart_abandonment_daily, product_sales_daily

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


class Story:
    """Events in delivery order, numbered as the store would number them."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self._versions: dict[str, int] = {}
        self._positions = itertools.count(1)
        self._ids = itertools.count(1)

    def add(self, event_type: str, stream_id: str, data: dict[str, Any], at: dt.datetime, *,
            schema_version: int = 1, tenant_id: str = "t1") -> dict[str, Any]:
        version = self._versions.get(stream_id, 0) + 1
        self._versions[stream_id] = version
        line = {
            "event_id": f"e{next(self._ids)}",
            "tenant_id": tenant_id,
            "stream_id": stream_id,
            "stream_version": version,
            "global_position": next(self._positions),
            "event_type": event_type,
            "schema_version": schema_version,
            "occurred_at": at.isoformat(),
            "recorded_at": at.isoformat(),
            "data": data,
            "metadata": {"correlation_id": "c", "causation_id": "c"},
        }
        self.lines.append(line)
        return line

    def session(self, session_id: str, at: dt.datetime, source: str = "google", medium: str = "cpc",
                campaign: str | None = "spring") -> None:
        self.add("SessionStarted", f"session-{session_id}", {
            "session_id": session_id, "anonymous_id": f"anon-{session_id}", "customer_id": None, "source": source,
            "medium": medium, "campaign": campaign, "device": "mobile", "landing_page": "/",
        }, at)

    def order(self, order_id: str, at: dt.datetime, *, total_cents: int = 10000, session_id: str | None = "s1",
              cart_id: str | None = None, customer_id: str | None = "c1",
              items: list[dict[str, Any]] | None = None) -> None:
        items = items or [{"product_id": "p1", "category": "x", "quantity": 2, "unit_price_cents": total_cents // 2}]
        self.add("OrderCreated", f"order-{order_id}", {
            "order_id": order_id, "cart_id": cart_id, "customer_id": customer_id, "session_id": session_id,
            "items": items, "total_cents": total_cents, "currency": "EUR", "order_source": "web",
        }, at, schema_version=3)

    def then(self, event_type: str, order_id: str, at: dt.datetime, **data: Any) -> None:
        self.add(event_type, f"order-{order_id}", {"order_id": order_id, **data}, at)

    def cart_add(self, cart_id: str, product_id: str, quantity: int, price_cents: int, at: dt.datetime) -> None:
        self.add("CartItemAdded", f"cart-{cart_id}", {
            "cart_id": cart_id, "session_id": "s1", "customer_id": None, "product_id": product_id, "category": "x",
            "quantity": quantity, "unit_price_cents": price_cents, "currency": "EUR",
        }, at, schema_version=2)

    def cart_remove(self, cart_id: str, product_id: str, quantity: int, at: dt.datetime) -> None:
        self.add("CartItemRemoved", f"cart-{cart_id}",
                 {"cart_id": cart_id, "product_id": product_id, "quantity": quantity}, at)

    def write(self, path: Path) -> Path:
        path.write_text("".join(json.dumps(line) + "\n" for line in self.lines), encoding="utf-8")
        return path

    def land(self, tmp_path: Path) -> Landed:
        return land([self.write(tmp_path / "events.ndjson")])


def only(events: list[Event], event_type: str) -> Event:
    found = [event for event in events if event.event_type == event_type]
    assert len(found) == 1, found
    return found[0]


# ------------------------------------------------------------------------------------------------ landing


def test_version_1_payloads_are_upcast_to_the_newest_versions(tmp_path):
    story = Story()
    story.add("CustomerRegistered", "customer-c1", {
        "customer_id": "c1", "email": "a@example.com", "country": "DE", "referrer": "https://WWW.Blog.example/x?y=1",
    }, T0)
    story.add("CustomerRegistered", "customer-c2", {
        "customer_id": "c2", "email": "b@example.com", "country": "DE", "referrer": None,
    }, T0)
    story.add("CartItemAdded", "cart-k1", {
        "cart_id": "k1", "session_id": "s1", "customer_id": None, "product_id": "p1", "category": "x",
        "quantity": 1, "unit_price": 145.1,
    }, T0)
    story.add("OrderCreated", "order-o1", {
        "order_id": "o1", "cart_id": "k1", "customer_id": "c1", "session_id": "s1",
        "items": [{"product_id": "p1", "category": "x", "quantity": 3, "unit_price": 19.99}], "total": 59.97,
    }, T0)
    story.add("OrderCreated", "order-o2", {
        "order_id": "o2", "cart_id": None, "customer_id": "c1", "session_id": None,
        "items": [{"product_id": "p1", "category": "x", "quantity": 1, "unit_price_cents": 500}],
        "total_cents": 500, "currency": "GBP",
    }, T0, schema_version=2)
    landed = story.land(tmp_path)
    assert landed.quarantined == [] and landed.held_back == [] and landed.unknown == []

    registered = {
        event.data["customer_id"]: event for event in landed.events if event.event_type == "CustomerRegistered"
    }
    assert registered["c1"].data["acquisition"] == {"source": "blog.example", "medium": "referral", "campaign": None}
    assert registered["c2"].data["acquisition"] == {"source": "direct", "medium": "none", "campaign": None}
    assert "referrer" not in registered["c1"].data and registered["c1"].schema_version == 1  # as received

    cart = only(landed.events, "CartItemAdded").data
    assert (cart["unit_price_cents"], cart["currency"]) == (14510, "EUR") and "unit_price" not in cart

    created = {event.data["order_id"]: event.data for event in landed.events if event.event_type == "OrderCreated"}
    assert created["o1"]["total_cents"] == 5997 and created["o1"]["currency"] == "EUR"
    assert created["o1"]["items"] == [{"product_id": "p1", "category": "x", "quantity": 3, "unit_price_cents": 1999}]
    assert created["o1"]["order_source"] == "unknown" and created["o2"]["order_source"] == "unknown"
    assert created["o2"]["currency"] == "GBP"


def test_nearest_cent_and_referrer_hosts():
    assert [to_cents(x) for x in (145.1, 0.125, 0.135, 1.005, 12, 0.0049)] == [14510, 13, 14, 101, 1200, 0]
    assert referrer_acquisition("https://www.google.com/")["source"] == "google.com"
    assert referrer_acquisition("http://user@www.shop.example:8080/a")["source"] == "shop.example"
    assert referrer_acquisition("l.instagram.com/story")["source"] == "l.instagram.com"
    assert referrer_acquisition("")["medium"] == "none"


def test_duplicates_and_conflicting_duplicates(tmp_path):
    story = Story()
    first = story.add("OrderConfirmed", "order-o1", {"order_id": "o1"}, T0)
    story.lines.append(dict(first))  # an identical re-delivery, same file
    story.lines.append({**first, "data": {"order_id": "o2"}})  # same event_id, other content
    path = story.write(tmp_path / "a.ndjson")
    again = tmp_path / "b.ndjson.gz"  # re-delivered in another, compressed file, keys in another order
    again.write_bytes(gzip.compress((json.dumps(dict(reversed(list(first.items())))) + "\n").encode()))
    landed = land([path, again])
    assert [event.data for event in landed.events] == [{"order_id": "o1"}]  # the first delivery stays
    assert landed.duplicates == 2
    assert landed.quarantined == [(str(path), 3, "conflicting_duplicate")]


def test_broken_lines_are_quarantined_with_file_line_and_reason(tmp_path):
    story = Story()
    good = story.add("OrderConfirmed", "order-o1", {"order_id": "o1"}, T0)
    text = json.dumps(good)
    lines = [
        text[:40],  # 1: truncated
        "[1, 2]",  # 2: not an object
        json.dumps({key: value for key, value in good.items() if key != "tenant_id"} | {"event_id": "x3"}),
        json.dumps(good | {"event_id": "x4", "stream_version": "1"}),  # wrong type
        json.dumps(good | {"event_id": "x5", "occurred_at": "yesterday"}),
        json.dumps(good | {"event_id": "x6", "occurred_at": "2026-03-02T10:00:00"}),  # no offset
        json.dumps(good | {"event_id": "x7", "event_type": "PromotionApplied", "data": {"order_id": "o1"}}),
        "",  # blank: skipped
        json.dumps(good | {"event_id": "x9", "occurred_at": "2026-03-02T12:00:00+02:00"}),  # fine
    ]
    path = tmp_path / "broken.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    landed = land([path])
    assert [(line, reason) for _, line, reason in landed.quarantined] == [
        (1, "invalid_json"),
        (2, "not_a_json_object"),
        (3, "missing_field:tenant_id"),
        (4, "wrong_type:stream_version"),
        (5, "unparseable_timestamp:occurred_at"),
        (6, "unparseable_timestamp:occurred_at"),
        (7, "invalid_payload:missing:data.promo_code"),
    ]
    assert [event.occurred_at for event in landed.events] == [dt.datetime(2026, 3, 2, 10, 0, tzinfo=UTC)]


def test_newer_versions_are_held_back_and_unknown_types_kept(tmp_path):
    story = Story()
    story.session("s1", T0)
    story.add("SessionStarted", "session-s2", {"session_id": "s2", "new": True}, T0 + dt.timedelta(hours=1),
              schema_version=2)
    story.add("WishlistItemAdded", "session-s1", {"product_id": "p1"}, T0 + dt.timedelta(hours=2))
    landed = story.land(tmp_path)
    assert [event.event_type for event in landed.events] == ["SessionStarted"]
    assert [event.data for event in landed.held_back] == [{"session_id": "s2", "new": True}]
    assert [event.event_type for event in landed.unknown] == ["WishlistItemAdded"]
    assert as_of(landed) == T0 + dt.timedelta(hours=2)
    assert set(known_sessions(landed, as_of(landed))) == {("t1", "s1")}


# ------------------------------------------------------------------------------------------------ orders


def test_refunded_status_needs_the_whole_net_refunded(tmp_path):
    story = Story()
    for order_id in ("full", "part"):
        story.order(order_id, T0)
        story.then("PromotionApplied", order_id, T0, promo_code="X", discount_cents=1000)
        story.then("OrderConfirmed", order_id, T0)
        story.then("PaymentCaptured", order_id, T0, amount_cents=9000, method="card")
    story.then("OrderRefunded", "full", T0 + dt.timedelta(days=1), amount_cents=4000)
    story.then("OrderRefunded", "full", T0 + dt.timedelta(days=1), amount_cents=5000)
    story.then("OrderRefunded", "part", T0 + dt.timedelta(days=1), amount_cents=8999)
    found = orders(story.land(tmp_path), None)
    full, part = found[("t1", "full")], found[("t1", "part")]
    assert (full.status, full.net_cents, full.refunded_cents, full.revenue_cents) == ("refunded", 9000, 9000, 0)
    assert (part.status, part.revenue_cents) == ("paid", 1)
    assert full.is_valid and part.is_valid  # refunds do not make an order invalid


def test_cancelled_order_is_not_valid_and_not_counted(tmp_path):
    story = Story()
    story.session("s1", T0)
    story.order("o1", T0, customer_id="c1")
    story.then("OrderConfirmed", "o1", T0)
    story.then("OrderCancelled", "o1", T0 + dt.timedelta(hours=1), reason="customer")
    story.order("o2", T0 + dt.timedelta(hours=2), customer_id="c1")
    story.then("OrderConfirmed", "o2", T0 + dt.timedelta(hours=2))
    story.then("OrderShipped", "o2", T0 + dt.timedelta(hours=3), carrier="dhl")
    landed = story.land(tmp_path)
    found = orders(landed, None)
    assert (found[("t1", "o1")].status, found[("t1", "o1")].is_valid) == ("cancelled", False)
    assert (found[("t1", "o2")].status, found[("t1", "o2")].is_valid) == ("shipped", True)
    assert [order.is_first_valid_order for order in found.values()] == [False, True]
    assert [(row["valid_orders"], row["net_cents"]) for row in basket_daily(landed, None)] == [(1, 10000)]


def test_point_in_time_and_order_channel(tmp_path):
    story = Story()
    story.session("s1", T0, source="newsletter", medium="email", campaign="spring")
    story.order("o1", T0 + dt.timedelta(minutes=5), session_id="s1")
    story.then("OrderConfirmed", "o1", T0 + dt.timedelta(minutes=6))
    story.order("o2", T0 + dt.timedelta(minutes=7), session_id="unknown-session")
    story.order("o3", T0 + dt.timedelta(minutes=8), session_id=None)
    story.then("OrderCancelled", "o1", T0 + dt.timedelta(days=2), reason="late")
    landed = story.land(tmp_path)
    now = orders(landed, None)
    before = orders(landed, T0 + dt.timedelta(days=1))
    o1 = before[("t1", "o1")]
    assert (o1.channel_source, o1.channel_medium, o1.channel_campaign) == ("newsletter", "email", "spring")
    assert o1.is_valid and not now[("t1", "o1")].is_valid
    for order_id in ("o2", "o3"):
        order = now[("t1", order_id)]
        assert (order.channel_source, order.channel_medium, order.channel_campaign) == ("unknown", "unknown", None)
    assert set(orders(landed, T0 + dt.timedelta(minutes=7))) == {("t1", "o1"), ("t1", "o2")}


# ------------------------------------------------------------------------------------------------ sales


def test_basket_daily_average_is_mean_net_unrounded(tmp_path):
    story = Story()
    story.session("s1", T0)
    for order_id, total in (("o1", 1000), ("o2", 1001)):
        story.order(order_id, T0, total_cents=total)
        story.then("OrderConfirmed", order_id, T0)
    story.then("OrderRefunded", "o2", T0 + dt.timedelta(hours=1), amount_cents=1001)
    [row] = basket_daily(story.land(tmp_path), None)
    assert row == {
        "tenant_id": "t1", "order_date": T0.date(), "channel_source": "google", "order_source": "web",
        "valid_orders": 2, "revenue_cents": 1000, "net_cents": 2001, "discount_cents": 0,
        "avg_basket_cents": 1000.5, "avg_units_per_order": 2.0,
    }


def test_view_to_cart_rate_is_null_without_views(tmp_path):
    story = Story()
    story.add("ProductViewed", "session-s1", {
        "session_id": "s1", "anonymous_id": "a", "customer_id": None, "product_id": "p1", "category": "x",
    }, T0)
    story.cart_add("k1", "p1", 1, 500, T0)
    story.cart_add("k1", "p2", 1, 700, T0)
    story.cart_remove("k1", "p2", 1, T0 + dt.timedelta(days=1))
    rows = {(row["activity_date"], row["product_id"]): row for row in product_sales_daily(story.land(tmp_path), None)}
    assert rows[(T0.date(), "p1")]["view_to_cart_rate"] == 1.0
    assert rows[(T0.date(), "p2")]["views"] == 0 and rows[(T0.date(), "p2")]["view_to_cart_rate"] is None
    next_day = rows[(T0.date() + dt.timedelta(days=1), "p2")]
    assert (next_day["removes"], next_day["adds_to_cart"], next_day["view_to_cart_rate"]) == (1, 0, None)


def test_units_sold_count_valid_orders_at_item_prices(tmp_path):
    story = Story()
    items = [
        {"product_id": "p1", "category": "x", "quantity": 2, "unit_price_cents": 300},
        {"product_id": "p1", "category": "x", "quantity": 1, "unit_price_cents": 250},
    ]
    story.order("o1", T0, total_cents=850, items=items)
    story.then("PromotionApplied", "o1", T0, promo_code="X", discount_cents=100)
    story.then("OrderConfirmed", "o1", T0)
    story.order("o2", T0, total_cents=850, items=items)  # never confirmed: not sold
    [row] = product_sales_daily(story.land(tmp_path), None)
    assert (row["units_sold"], row["revenue_cents"], row["views"], row["view_to_cart_rate"]) == (3, 850, 0, None)


def test_cart_abandonment_24_hour_boundary(tmp_path):
    story = Story()
    story.cart_add("exactly", "p1", 1, 100, T0)  # last event exactly 24 h before as-of: open
    story.cart_add("abandoned", "p1", 3, 100, T0)
    story.cart_add("abandoned", "p1", 1, 120, T0)  # the latest add's price counts for p1: 4 - 1 left at 120
    story.cart_add("abandoned", "p2", 1, 999, T0)
    story.cart_remove("abandoned", "p1", 1, T0)
    story.cart_remove("abandoned", "p2", 5, T0 - dt.timedelta(microseconds=1))  # never below zero
    story.cart_add("converted", "p1", 1, 100, T0)
    story.order("o1", T0 + dt.timedelta(hours=1), cart_id="converted")  # never confirmed: still converted
    story.cart_add("late", "p1", 1, 100, T0 + dt.timedelta(hours=30))  # another day's cart
    landed = story.land(tmp_path)
    at = T0 + dt.timedelta(hours=24)
    rows = cart_abandonment_daily(landed, at)  # the cart added at T0 + 30 h is not visible yet
    assert rows == [{
        "tenant_id": "t1", "cart_date": T0.date(), "carts": 3, "converted": 1, "abandoned": 1, "open": 1,
        "abandonment_rate": 0.5, "abandoned_value_cents": 360,
    }]
    later = cart_abandonment_daily(landed, at + dt.timedelta(microseconds=1))
    assert (later[0]["abandoned"], later[0]["open"], later[0]["abandoned_value_cents"]) == (2, 0, 460)


def test_abandonment_rate_is_null_when_nothing_is_decided(tmp_path):
    story = Story()
    story.cart_add("k1", "p1", 1, 100, T0)
    rows = cart_abandonment_daily(story.land(tmp_path), None)
    assert [(row["open"], row["abandonment_rate"]) for row in rows] == [(1, None)]


def test_amounts_in_several_currencies_are_added_as_recorded(tmp_path):
    story = Story()
    story.order("o1", T0)
    story.add("OrderCreated", "order-o2", {
        "order_id": "o2", "cart_id": None, "customer_id": None, "session_id": None, "items": [],
        "total_cents": 5, "currency": "GBP",
    }, T0, schema_version=2)
    for order_id in ("o1", "o2"):
        story.then("OrderConfirmed", order_id, T0)
    assert sum(row["net_cents"] for row in basket_daily(story.land(tmp_path), None)) == 10000 + 5


# ------------------------------------------------------------------------------------------------ simulator


def test_the_simulators_files_land_and_every_mart_runs(tmp_path):
    from jobs.simulator import SimulatorSettings, simulate
    from jobs.simulator.settings import AnomalySettings

    summary = simulate(
        tmp_path, days=2, tenants=2, seed=11, start_date=dt.date(2026, 3, 2),
        settings=SimulatorSettings(
            events_per_tenant_per_day=300,
            anomalies=AnomalySettings(late_event_rate=0.05, exact_duplicate_rate=0.02),
        ),
    )
    landed = land(sorted(path for path in tmp_path.rglob("*") if path.name.endswith((".ndjson", ".ndjson.gz"))))
    reasons = [reason for _, _, reason in landed.quarantined]
    assert reasons.count("conflicting_duplicate") == summary.conflicting_duplicates
    assert len(reasons) - reasons.count("conflicting_duplicate") == summary.broken_lines
    assert landed.duplicates == summary.exact_duplicates
    assert len(landed.unknown) == summary.unknown_event_types
    assert len(landed.held_back) == summary.future_schema_versions
    moment = as_of(landed)
    assert orders(landed, moment) and known_sessions(landed, moment)
    assert basket_daily(landed, moment) and product_sales_daily(landed, moment)
    assert cart_abandonment_daily(landed, moment)
