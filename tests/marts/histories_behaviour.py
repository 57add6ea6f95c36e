"""Hand-written histories for the behaviour marts (cart abandonment, product sales, funnel), and the
one way a test module lands a history and reads the marts' inputs back.

Each history's docstring says what it holds; the tests work their expected rows out from it by hand.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable

from tests.histories import History


def landed_sources(spark, root: Path, history: History, names: Iterable[str], context) -> dict[str, Any]:
    """Land `history`, build silver, and return the named inputs: silver tables by event type, and
    the `orders` mart (built from its own inputs with `context`, cached) when it is named."""
    from jobs.landing.files import land_files
    from jobs.marts import orders
    from jobs.silver import build_silver, read_silver

    names = tuple(names)
    history.write(root / "landing")
    warehouse = str(root / "warehouse")
    land_files(spark, warehouse, root / "landing", "test-run")
    wanted = {name for name in names if name != "orders"}
    if "orders" in names:
        wanted |= set(orders.INPUTS)
    build_silver(spark, warehouse, only=wanted)
    sources = {name: read_silver(spark, warehouse, name) for name in sorted(wanted)}
    if "orders" in names:
        sources["orders"] = orders.build(sources, context).cache()
    return sources


def cart_history() -> History:
    """Carts of two tenants, seen at an as-of time of 2026-01-10T12:00Z (abandoned if last touched
    before 2026-01-09T12:00Z).

    t1 (EUR):
    - k1, Jan 8: p1 x2 added in v1 at 12.5 (delivered twice), p2 x1 in v1 at 9.99, p1 x1 in v2 at
      1300, one p1 removed: abandoned, p1 (3 - 1) x 1300 + p2 999 = 3599 left.
    - k2, Jan 8: p3 x1 at 500 then two p3 removed, a p5 never added removed, p4 x1 at 700:
      abandoned, 0 + 0 + 700 = 700 left. t2's order o9 names a cart `k2`: not this one.
    - k8, Jan 8: p2 x1 at 1000, converted by the valid order o8.
    - k3, Jan 7: p1 x1 at 1300, converted by o3 created two days later and never confirmed.
    - k4, Jan 9: p1 x1 added at exactly 2026-01-09T12:00Z, 24 h before as-of: open.
    - k5, Jan 6 by its first add (stream_version 1); its later adds' clocks are off: p6 x1 at 400 on
      Jan 6 10:00, x1 at 450 on Jan 9 13:00, x1 at 420 on Jan 5 23:00. Its last event (version 3)
      occurred on Jan 5: abandoned, 3 x 420 = 1260 left.
    - k6, Jan 10: p1 x1 at 1300 at 11:00, delivered late (last in the file): open.
    - k9: a removal only, no add known: not a cart.
    t2 (GBP, and EUR in v1):
    - k1, Jan 8: p1 x2 at 900 GBP: abandoned, 1800 left (t1's k1 is another cart).
    - k7, Jan 8: p1 x1 in v1 at 8.5 (850 EUR), converted by o7.
    """
    h = History()
    add_to_cart(h, "k1", "p1", 2, "2026-01-08T10:00:00Z", unit_price=12.5, duplicate=True)
    add_to_cart(h, "k1", "p2", 1, "2026-01-08T10:02:00Z", unit_price=9.99)
    add_to_cart(h, "k1", "p1", 1, "2026-01-08T10:05:00Z", unit_price_cents=1300)
    _remove(h, "k1", "p1", 1, "2026-01-08T10:10:00Z")

    add_to_cart(h, "k2", "p3", 1, "2026-01-08T11:00:00Z", unit_price_cents=500)
    _remove(h, "k2", "p3", 2, "2026-01-08T11:05:00Z")
    _remove(h, "k2", "p5", 1, "2026-01-08T11:06:00Z")
    add_to_cart(h, "k2", "p4", 1, "2026-01-08T11:10:00Z", unit_price_cents=700)

    add_to_cart(h, "k8", "p2", 1, "2026-01-08T15:00:00Z", unit_price_cents=1000)
    _order(h, "o8", "k8", "2026-01-08T15:30:00Z", confirmed=True)

    add_to_cart(h, "k3", "p1", 1, "2026-01-07T09:00:00Z", unit_price_cents=1300)
    _order(h, "o3", "k3", "2026-01-09T10:00:00Z", confirmed=False)

    add_to_cart(h, "k4", "p1", 1, "2026-01-09T12:00:00Z", unit_price_cents=1300)

    add_to_cart(h, "k5", "p6", 1, "2026-01-06T10:00:00Z", unit_price_cents=400)
    add_to_cart(h, "k5", "p6", 1, "2026-01-09T13:00:00Z", unit_price_cents=450)
    add_to_cart(h, "k5", "p6", 1, "2026-01-05T23:00:00Z", unit_price_cents=420)

    _remove(h, "k9", "p1", 1, "2026-01-08T12:00:00Z")

    add_to_cart(h, "k1", "p1", 2, "2026-01-08T10:00:00Z", unit_price_cents=900, currency="GBP", tenant_id="t2")
    add_to_cart(h, "k7", "p1", 1, "2026-01-08T09:00:00Z", unit_price=8.5, tenant_id="t2")
    _order(h, "o7", "k7", "2026-01-08T09:30:00Z", confirmed=True, tenant_id="t2", currency="GBP")
    _order(h, "o9", "k2", "2026-01-08T12:00:00Z", confirmed=True, tenant_id="t2", currency="GBP")

    add_to_cart(h, "k6", "p1", 1, "2026-01-10T11:00:00Z", unit_price_cents=1300)
    return h


def product_history() -> History:
    """Views, cart events and orders of two tenants over Jan 5 and 6, 2026.

    t1 (EUR):
    - p1 viewed on Jan 5 at 09:00, at 09:05 (delivered twice) and at 00:30 +02:00 on Jan 6 (Jan 5
      in UTC), and on Jan 6 at 10:00; p2 viewed on Jan 5 at 09:10 and at 20:00 (delivered late).
    - p1 added four times on Jan 5 (one v1 add), removed once; p3 added once on Jan 5, never viewed;
      p2 removed once on Jan 6.
    - o1 (v1, Jan 5, valid): p1 x2 at 12.5, p2 x1 at 40.0; a second OrderCreated in its stream lists
      p9 x9 and is ignored (items come from the first by stream_version).
    - o2 (Jan 5): p1 x5, confirmed then cancelled. o4 (Jan 6): p4 x1, never confirmed.
    - o3 (Jan 6, valid, no session): p1 x1 at 1300, p5 x2 at 250.
    - o5 (v2, Jan 6, valid): p2 x1 at 4000, a promotion of 1000 and a refund of 500.
    t2 (GBP): p1 viewed on Jan 5; o7 (Jan 5, valid): p1 x1 at 999 GBP; on Jan 6 p1 sold in EUR (o8,
    v1, 5.00) and in GBP (o9, 999): the tenant switched currency that day.
    """
    h = History()
    view(h, "s1", "p1", "2026-01-05T09:00:00Z")
    view(h, "s1", "p1", "2026-01-05T09:05:00Z", duplicate=True)
    view(h, "s1", "p2", "2026-01-05T09:10:00Z")
    view(h, "s2", "p1", "2026-01-06T00:30:00+02:00")
    view(h, "s2", "p1", "2026-01-06T10:00:00Z")

    add_to_cart(h, "k1", "p1", 1, "2026-01-05T09:20:00Z", unit_price=12.5)
    add_to_cart(h, "k1", "p1", 1, "2026-01-05T09:25:00Z", unit_price_cents=1250)
    add_to_cart(h, "k1", "p1", 1, "2026-01-05T09:30:00Z", unit_price_cents=1250)
    add_to_cart(h, "k1", "p3", 1, "2026-01-05T09:40:00Z", unit_price_cents=300)
    _remove(h, "k1", "p1", 1, "2026-01-05T09:45:00Z")
    add_to_cart(h, "k2", "p1", 1, "2026-01-05T11:00:00Z", unit_price_cents=1250)
    _remove(h, "k2", "p2", 1, "2026-01-06T08:00:00Z")

    h.add(
        "OrderCreated", "order-o1",
        {"order_id": "o1", "cart_id": "k1", "customer_id": "c1", "session_id": "s1",
         "items": [{"product_id": "p1", "category": "shoes", "quantity": 2, "unit_price": 12.5},
                   {"product_id": "p2", "category": "bags", "quantity": 1, "unit_price": 40.0}],
         "total": 65.0},
        "2026-01-05T12:00:00Z",
    )
    h.add("OrderConfirmed", "order-o1", {"order_id": "o1"}, "2026-01-05T12:01:00Z")
    h.add("OrderCreated", "order-o1", _order_v3("o1", "k1", [("p9", 9, 100)]), "2026-01-05T12:02:00Z", schema_version=3)

    _order(h, "o2", "k2", "2026-01-05T13:00:00Z", confirmed=True, items=[("p1", 5, 1300)])
    h.add("OrderCancelled", "order-o2", {"order_id": "o2", "reason": "customer_request"}, "2026-01-05T14:00:00Z")
    _order(h, "o4", "k4", "2026-01-06T11:00:00Z", confirmed=False, items=[("p4", 1, 800)])
    _order(h, "o3", None, "2026-01-06T10:30:00Z", confirmed=True, items=[("p1", 1, 1300), ("p5", 2, 250)])

    h.add(
        "OrderCreated", "order-o5",
        {"order_id": "o5", "cart_id": "k5", "customer_id": "c5", "session_id": None,
         "items": [{"product_id": "p2", "category": "bags", "quantity": 1, "unit_price_cents": 4000}],
         "total_cents": 4000, "currency": "EUR"},
        "2026-01-06T12:00:00Z",
        schema_version=2,
    )
    h.add("PromotionApplied", "order-o5", {"order_id": "o5", "promo_code": "JAN", "discount_cents": 1000},
          "2026-01-06T12:00:05Z")
    h.add("OrderConfirmed", "order-o5", {"order_id": "o5"}, "2026-01-06T12:01:00Z")
    h.add("OrderRefunded", "order-o5", {"order_id": "o5", "amount_cents": 500}, "2026-01-06T18:00:00Z")

    view(h, "s9", "p1", "2026-01-05T10:00:00Z", tenant_id="t2")
    _order(h, "o7", "k7", "2026-01-05T10:30:00Z", confirmed=True, items=[("p1", 1, 999)], tenant_id="t2",
           currency="GBP")
    h.add(
        "OrderCreated", "order-o8",
        {"order_id": "o8", "cart_id": "k8", "customer_id": "c8", "session_id": None,
         "items": [{"product_id": "p1", "category": "shoes", "quantity": 1, "unit_price": 5.0}], "total": 5.0},
        "2026-01-06T00:10:00Z",
        tenant_id="t2",
    )
    h.add("OrderConfirmed", "order-o8", {"order_id": "o8"}, "2026-01-06T00:11:00Z", tenant_id="t2")
    _order(h, "o9", "k9", "2026-01-06T09:00:00Z", confirmed=True, items=[("p1", 1, 999)], tenant_id="t2",
           currency="GBP")

    view(h, "s1", "p2", "2026-01-05T20:00:00Z")
    return h


def funnel_history() -> History:
    """Sessions of two tenants and the events naming them.

    t1:
    - s1 (Jan 5): two views, a cart add, order o1 (valid).
    - s2 (Jan 5): a view on Jan 6, order o2 confirmed then cancelled.
    - s3 (Jan 6, its SessionStarted delivered twice): a cart add without any view, order o3 (valid).
    - s4 (Jan 6 00:30 +02:00, Jan 5 in UTC): nothing else.
    - s-unknown (never started): a view, a cart add and a valid order o4 name it.
    - a cart add and a valid order o5 without session.
    t2: s1 (Jan 5) with one view; order o7 (valid) names `s2`, which only t1 started.
    """
    h = History()
    _session(h, "s1", "2026-01-05T09:00:00Z")
    _session(h, "s2", "2026-01-05T10:00:00Z")
    _session(h, "s3", "2026-01-06T08:00:00Z", duplicate=True)
    _session(h, "s4", "2026-01-06T00:30:00+02:00")

    view(h, "s1", "p1", "2026-01-05T09:01:00Z")
    view(h, "s1", "p2", "2026-01-05T09:02:00Z")
    add_to_cart(h, "k1", "p1", 1, "2026-01-05T09:03:00Z", unit_price_cents=1000, session_id="s1")
    _order(h, "o1", "k1", "2026-01-05T09:10:00Z", confirmed=True, session_id="s1")

    view(h, "s2", "p1", "2026-01-06T09:00:00Z")
    _order(h, "o2", "k2", "2026-01-05T10:10:00Z", confirmed=True, session_id="s2")
    h.add("OrderCancelled", "order-o2", {"order_id": "o2", "reason": "customer_request"}, "2026-01-05T11:00:00Z")

    add_to_cart(h, "k3", "p1", 1, "2026-01-06T08:05:00Z", unit_price_cents=1000, session_id="s3")
    _order(h, "o3", "k3", "2026-01-06T08:10:00Z", confirmed=True, session_id="s3")

    view(h, "s-unknown", "p1", "2026-01-05T12:00:00Z")
    add_to_cart(h, "k4", "p1", 1, "2026-01-05T12:01:00Z", unit_price_cents=1000, session_id="s-unknown")
    _order(h, "o4", "k4", "2026-01-05T12:02:00Z", confirmed=True, session_id="s-unknown")

    add_to_cart(h, "k5", "p1", 1, "2026-01-05T13:00:00Z", unit_price_cents=1000, session_id=None)
    _order(h, "o5", "k5", "2026-01-05T13:01:00Z", confirmed=True, session_id=None)

    _session(h, "s1", "2026-01-05T12:00:00Z", tenant_id="t2")
    view(h, "s1", "p1", "2026-01-05T12:05:00Z", tenant_id="t2")
    _order(h, "o7", "k7", "2026-01-05T12:10:00Z", confirmed=True, session_id="s2", tenant_id="t2", currency="GBP")
    return h


def _session(h: History, session_id: str, occurred_at: str, *, tenant_id: str = "t1", duplicate: bool = False) -> None:
    event = h.add(
        "SessionStarted", f"session-{session_id}",
        {"session_id": session_id, "anonymous_id": f"a-{session_id}", "customer_id": None, "source": "google",
         "medium": "cpc", "campaign": None, "device": "mobile", "landing_page": "/"},
        occurred_at, tenant_id=tenant_id,
    )
    if duplicate:
        h.redeliver(event)


def view(h: History, session_id: str, product_id: str, occurred_at: str, *, tenant_id: str = "t1",
         duplicate: bool = False) -> None:
    event = h.add(
        "ProductViewed", f"session-{session_id}",
        {"session_id": session_id, "anonymous_id": f"a-{session_id}", "customer_id": None,
         "product_id": product_id, "category": "misc"},
        occurred_at, tenant_id=tenant_id,
    )
    if duplicate:
        h.redeliver(event)


def add_to_cart(h: History, cart_id: str, product_id: str, quantity: int, occurred_at: str, *,
                unit_price: float | None = None, unit_price_cents: int | None = None, currency: str = "EUR",
                session_id: str | None = None, tenant_id: str = "t1", duplicate: bool = False) -> None:
    """A CartItemAdded: v1 (decimal `unit_price`, EUR) when unit_price is given, else v2."""
    data: dict[str, Any] = {"cart_id": cart_id, "session_id": session_id, "customer_id": None,
                            "product_id": product_id, "category": "misc", "quantity": quantity}
    if unit_price is not None:
        data["unit_price"] = unit_price
        version = 1
    else:
        data |= {"unit_price_cents": unit_price_cents, "currency": currency}
        version = 2
    event = h.add("CartItemAdded", f"cart-{cart_id}", data, occurred_at, tenant_id=tenant_id, schema_version=version)
    if duplicate:
        h.redeliver(event)


def _remove(h: History, cart_id: str, product_id: str, quantity: int, occurred_at: str, *,
            tenant_id: str = "t1") -> None:
    h.add("CartItemRemoved", f"cart-{cart_id}", {"cart_id": cart_id, "product_id": product_id, "quantity": quantity},
          occurred_at, tenant_id=tenant_id)


def _order(h: History, order_id: str, cart_id: str | None, occurred_at: str, *, confirmed: bool,
           items: list[tuple[str, int, int]] = (("p1", 1, 1000),), session_id: str | None = None,
           tenant_id: str = "t1", currency: str = "EUR") -> None:
    """A v3 OrderCreated, confirmed a minute later when `confirmed`."""
    h.add("OrderCreated", f"order-{order_id}", _order_v3(order_id, cart_id, items, session_id, currency),
          occurred_at, tenant_id=tenant_id, schema_version=3)
    if confirmed:
        confirmed_at = datetime.fromisoformat(occurred_at) + timedelta(minutes=1)
        h.add("OrderConfirmed", f"order-{order_id}", {"order_id": order_id}, confirmed_at.isoformat(),
              tenant_id=tenant_id)


def _order_v3(order_id, cart_id, items, session_id=None, currency="EUR") -> dict[str, Any]:
    return {
        "order_id": order_id, "cart_id": cart_id, "customer_id": f"c-{order_id}", "session_id": session_id,
        "items": [{"product_id": p, "category": "misc", "quantity": q, "unit_price_cents": c} for p, q, c in items],
        "total_cents": sum(q * c for _p, q, c in items), "currency": currency, "order_source": "web",
    }
