"""Hand-written event histories for tests, following the events.md contract."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any


class History:
    """Events in delivery order; stream versions and global positions are numbered as the store would."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._stream_versions: dict[str, int] = defaultdict(int)
        self._positions = itertools.count(1)
        self._ids = itertools.count(1)

    def add(
        self,
        event_type: str,
        stream_id: str,
        data: dict[str, Any],
        occurred_at: str,
        *,
        tenant_id: str = "t1",
        schema_version: int = 1,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        self._stream_versions[(tenant_id, stream_id)] += 1
        event = {
            "event_id": event_id or f"ev-{next(self._ids):04d}",
            "tenant_id": tenant_id,
            "stream_id": stream_id,
            "stream_version": self._stream_versions[(tenant_id, stream_id)],
            "global_position": next(self._positions),
            "event_type": event_type,
            "schema_version": schema_version,
            "occurred_at": occurred_at,
            "recorded_at": occurred_at,
            "data": data,
            "metadata": {"correlation_id": "c", "causation_id": "c"},
        }
        self.events.append(event)
        return event

    def redeliver(self, event: dict[str, Any]) -> None:
        """The same event delivered again (an exact duplicate)."""
        self.events.append(dict(event))

    def write(self, folder: Path, name: str = "events.ndjson", extra_lines: tuple[str, ...] = ()) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        lines = [json.dumps(event) for event in self.events] + list(extra_lines)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


def shop_history() -> History:
    """Two tenants, six orders of every kind the order and basket marts must tell apart.

    t1 orders (EUR):
    - o1 v1 (decimal amounts), session s1 (google/cpc/spring), confirmed and paid; created at
      01:30 +02:00 on Jan 6, which is Jan 5 in UTC.
    - o2 v2, session s1, a promotion of 500 delivered twice, confirmed.
    - o3 v3 web, session s2 (direct), confirmed then cancelled.
    - o4 v3 phone, no session, confirmed, refunded in full.
    - o5 v3 mobile_app, a session never started, confirmed, shipped, delivered (delivery's clock
      earlier than shipping's), its confirmation delivered twice.
    - o6 v3 web, session s2, never confirmed.
    t2 (GBP): o7 v3 web, naming a session id `s1` that only t1 started.
    """
    h = History()
    h.add("SessionStarted", "session-s1", _session("s1", "a1", "google", "cpc", "spring"), "2026-01-05T09:00:00Z")
    h.add("SessionStarted", "session-s2", _session("s2", "a2", "direct", "none", None), "2026-01-05T10:00:00Z")

    h.add(
        "OrderCreated",
        "order-o1",
        {"order_id": "o1", "cart_id": "k1", "customer_id": "c1", "session_id": "s1",
         "items": [{"product_id": "p1", "category": "shoes", "quantity": 2, "unit_price": 12.5}], "total": 25.0},
        "2026-01-06T01:30:00+02:00",
    )
    h.add("OrderConfirmed", "order-o1", {"order_id": "o1"}, "2026-01-06T01:31:00+02:00")
    h.add("PaymentCaptured", "order-o1", {"order_id": "o1", "amount_cents": 2500, "method": "card"}, "2026-01-06T01:32:00+02:00")

    h.add(
        "OrderCreated",
        "order-o2",
        {"order_id": "o2", "cart_id": "k2", "customer_id": "c2", "session_id": "s1",
         "items": [{"product_id": "p2", "category": "bags", "quantity": 1, "unit_price_cents": 4000}],
         "total_cents": 4000, "currency": "EUR"},
        "2026-01-05T12:00:00Z",
        schema_version=2,
    )
    promotion = h.add("PromotionApplied", "order-o2", {"order_id": "o2", "promo_code": "WINTER", "discount_cents": 500}, "2026-01-05T12:00:05Z")
    h.redeliver(promotion)
    h.add("OrderConfirmed", "order-o2", {"order_id": "o2"}, "2026-01-05T12:01:00Z")

    h.add("OrderCreated", "order-o3", _order_v3("o3", "c1", "s2", "web", [("p1", 1, 3000)]), "2026-01-05T13:00:00Z", schema_version=3)
    h.add("OrderConfirmed", "order-o3", {"order_id": "o3"}, "2026-01-05T13:01:00Z")
    h.add("OrderCancelled", "order-o3", {"order_id": "o3", "reason": "customer_request"}, "2026-01-05T14:00:00Z")

    h.add("OrderCreated", "order-o4", _order_v3("o4", "c3", None, "phone", [("p4", 1, 1000)]), "2026-01-05T15:00:00Z", schema_version=3)
    h.add("OrderConfirmed", "order-o4", {"order_id": "o4"}, "2026-01-05T15:01:00Z")
    h.add("OrderRefunded", "order-o4", {"order_id": "o4", "amount_cents": 1000}, "2026-01-05T18:00:00Z")

    h.add(
        "OrderCreated", "order-o5", _order_v3("o5", "c1", "s-never-started", "mobile_app", [("p1", 1, 500), ("p3", 3, 500)]),
        "2026-01-06T08:00:00Z", schema_version=3,
    )
    confirmation = h.add("OrderConfirmed", "order-o5", {"order_id": "o5"}, "2026-01-06T08:01:00Z")
    h.redeliver(confirmation)
    h.add("OrderShipped", "order-o5", {"order_id": "o5", "carrier": "dhl"}, "2026-01-06T12:00:00Z")
    h.add("OrderDelivered", "order-o5", {"order_id": "o5"}, "2026-01-06T11:00:00Z")

    h.add("OrderCreated", "order-o6", _order_v3("o6", "c4", "s2", "web", [("p2", 1, 1500)]), "2026-01-05T16:00:00Z", schema_version=3)

    h.add(
        "OrderCreated", "order-o7", _order_v3("o7", "c9", "s1", "web", [("p9", 1, 999)], currency="GBP"),
        "2026-01-05T17:00:00Z", tenant_id="t2", schema_version=3,
    )
    h.add("OrderConfirmed", "order-o7", {"order_id": "o7"}, "2026-01-05T17:01:00Z", tenant_id="t2")
    return h


def _session(session_id: str, anonymous_id: str, source: str, medium: str, campaign: str | None) -> dict[str, Any]:
    return {
        "session_id": session_id, "anonymous_id": anonymous_id, "customer_id": None, "source": source,
        "medium": medium, "campaign": campaign, "device": "desktop", "landing_page": "/",
    }


def _order_v3(order_id, customer_id, session_id, order_source, items, currency="EUR") -> dict[str, Any]:
    return {
        "order_id": order_id, "cart_id": f"k-{order_id}", "customer_id": customer_id, "session_id": session_id,
        "items": [{"product_id": p, "category": "misc", "quantity": q, "unit_price_cents": c} for p, q, c in items],
        "total_cents": sum(q * c for _p, q, c in items), "currency": currency, "order_source": order_source,
    }


def as_of(timestamp: str):
    """A BuildContext for marts built in tests."""
    from datetime import datetime

    from jobs.marts.contract import BuildContext

    return BuildContext(as_of=datetime.fromisoformat(timestamp))
