"""Hand-written histories for the marketing marts (customer_360, campaign_performance,
marketing_kpis_daily), and landing one into the marts' inputs.

Each history is tiny and says in its docstring what its events are meant to show; the tests work
their expected rows out by hand from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.histories import History


def landed_sources(spark, folder: Path, history: History, inputs: tuple[str, ...], context) -> dict[str, Any]:
    """The history landed into bronze, upcast into silver, and read back with the orders mart built."""
    from jobs.landing.files import land_files
    from jobs.marts import orders
    from jobs.silver import build_silver, read_silver

    history.write(folder / "landing")
    warehouse = str(folder / "warehouse")
    land_files(spark, warehouse, folder / "landing", "test-run")
    names = dict.fromkeys([*orders.INPUTS, *(name for name in inputs if name != "orders")])
    build_silver(spark, warehouse, only=names)
    sources = {name: read_silver(spark, warehouse, name) for name in names}
    sources["orders"] = orders.build(sources, context).cache()
    return sources


def customer_history() -> History:
    """Customers of t1 (EUR) and t2 (GBP), for customer_360 as of 2026-03-31T12:00Z.

    t1:
    - c1: registered with v1 (referrer https://www.google.com/...), DE. Email consent granted, then
      withdrawn by a later stream version whose producer clock says it happened earlier; an sms
      consent after that. o1 5000 at exactly as-of minus 30 days, refunded 2000; o2 3000 one second
      later; o3 9000 confirmed then cancelled.
    - c2: registered with v2 (newsletter/email/spring), FR, delivered twice; email consent granted.
      o4 2000 at exactly as-of minus 90 days; o5 4000 with a 1000 promotion on the as-of day, its
      confirmation delivered twice.
    - c3: never registered. o6 1000 at exactly as-of minus 365 days, o7 1000 one second later.
    - c4: registered with v1 without referrer and a null country; o8 never confirmed.
    - c5: registered with v2 (direct/none), NL; o9 8000 the day before as-of; erasure requested.
    - o10 700, confirmed, without a customer.
    t2: c1 (same id as t1's), registered with v2 (google/cpc/winter), GB; o11 1234 GBP on the as-of day.
    """
    h = History()
    register(h, "c1", "DE", "2025-12-01T10:00:00Z", referrer="https://www.google.com/search?q=shoes")
    h.add("MarketingConsentChanged", "customer-c1", consent("c1", "email", True), "2026-01-01T09:00:00Z")
    h.add("MarketingConsentChanged", "customer-c1", consent("c1", "email", False), "2025-12-15T09:00:00Z")
    h.add("MarketingConsentChanged", "customer-c1", consent("c1", "sms", True), "2026-01-02T09:00:00Z")
    h.redeliver(register(h, "c2", "FR", "2025-11-01T08:00:00Z", acquisition=("newsletter", "email", "spring")))
    h.add("MarketingConsentChanged", "customer-c2", consent("c2", "email", True), "2025-11-01T08:05:00Z")
    register(h, "c4", None, "2026-03-19T10:00:00Z", referrer=None)
    register(h, "c5", "NL", "2026-02-01T10:00:00Z", acquisition=("direct", "none", None))

    place_order(h, "o1", "c1", None, 5000, "2026-03-01T12:00:00Z", refund=2000)
    place_order(h, "o2", "c1", None, 3000, "2026-03-01T12:00:01Z")
    place_order(h, "o3", "c1", None, 9000, "2026-03-10T10:00:00Z", cancelled=True)
    place_order(h, "o4", "c2", None, 2000, "2025-12-31T12:00:00Z")
    confirmation = place_order(h, "o5", "c2", None, 4000, "2026-03-31T08:00:00Z", discount=1000)
    h.redeliver(confirmation)
    place_order(h, "o6", "c3", None, 1000, "2025-03-31T12:00:00Z")
    place_order(h, "o7", "c3", None, 1000, "2025-03-31T12:00:01Z")
    place_order(h, "o8", "c4", None, 2500, "2026-03-20T10:00:00Z", confirmed=False)
    place_order(h, "o9", "c5", None, 8000, "2026-03-30T12:00:00Z")
    place_order(h, "o10", None, None, 700, "2026-03-15T10:00:00Z")
    h.add("CustomerErasureRequested", "customer-c5", {"customer_id": "c5"}, "2026-03-31T10:00:00Z")

    register(h, "c1", "GB", "2026-01-05T10:00:00Z", acquisition=("google", "cpc", "winter"), tenant_id="t2")
    place_order(h, "o11", "c1", None, 1234, "2026-03-31T00:00:00Z", tenant_id="t2", currency="GBP")
    return h


def campaign_history() -> History:
    """Campaigns of t1 (EUR) and t2 (GBP), for campaign_performance as of 2026-02-10T12:00Z.

    t1:
    - nl-1 (newsletter): sent to c1 (that send delivered twice), c2, c3, and to c1 again; opened by c1
      twice and by c2 (c2's open delivered last, late); clicked once by c1. Spend 300 + 200 EUR.
      Session s1 (campaign nl-1): o1 4000 valid, 1000 refunded; o2 2000 confirmed then cancelled.
    - spring: only a session's campaign (s2), with o3 3000 valid. No spend, no email.
    - summer: only a spend of 1000 EUR.
    - nl-2: sent to c1, nothing else.
    - s3 has no campaign (null), with o4 1500 valid; o5 500 valid names a session never started.
    - autumn: only a session's campaign (s5), with no order, no spend, no email.
    - ghost: named only by s4's second SessionStarted, delivered before its first (campaign null) and
      with an earlier clock: s4's campaign is its first's (by stream_version), so ghost is no campaign.
    t2: nl-1 (same id as t1's): sent to c9, spend 700 GBP, session s1 (campaign nl-1) with o9 1400 GBP.
    """
    newsletter = ("newsletter", "email", "nl-1")
    h = History()
    h.redeliver(h.add("EmailCampaignSent", "campaign-nl-1", email("nl-1", "c1"), "2026-02-01T07:00:00Z"))
    h.add("EmailCampaignSent", "campaign-nl-1", email("nl-1", "c2"), "2026-02-01T07:00:01Z")
    h.add("EmailCampaignSent", "campaign-nl-1", email("nl-1", "c3"), "2026-02-01T07:00:02Z")
    h.add("EmailCampaignSent", "campaign-nl-1", email("nl-1", "c1"), "2026-02-01T07:00:03Z")
    h.add("EmailOpened", "campaign-nl-1", email("nl-1", "c1"), "2026-02-01T09:00:00Z")
    h.add("EmailClicked", "campaign-nl-1", {**email("nl-1", "c1"), "url": "https://shop.example/c/shoes"},
          "2026-02-01T09:01:00Z")
    start_session(h, "s1", "a1", "2026-02-01T09:02:00Z", newsletter, customer_id="c1")
    place_order(h, "o1", "c1", "s1", 4000, "2026-02-01T09:10:00Z", refund=1000)
    place_order(h, "o2", "c1", "s1", 2000, "2026-02-01T09:20:00Z", cancelled=True)
    h.add("EmailOpened", "campaign-nl-1", email("nl-1", "c1"), "2026-02-02T09:00:00Z")
    record_spend(h, "nl-1", "email", "2026-02-01", 300, "EUR", "2026-02-02T03:00:00Z")
    record_spend(h, "nl-1", "email", "2026-02-02", 200, "EUR", "2026-02-03T03:00:00Z")

    start_session(h, "s2", "a2", "2026-02-03T10:00:00Z", ("google", "cpc", "spring"))
    place_order(h, "o3", "c4", "s2", 3000, "2026-02-03T10:30:00Z")
    record_spend(h, "summer", "paid_social", "2026-02-04", 1000, "EUR", "2026-02-05T03:00:00Z")
    start_session(h, "s3", "a3", "2026-02-05T10:00:00Z", DIRECT)
    place_order(h, "o4", "c5", "s3", 1500, "2026-02-05T10:30:00Z")
    place_order(h, "o5", "c6", "s-never-started", 500, "2026-02-06T10:30:00Z")
    h.add("EmailCampaignSent", "campaign-nl-2", email("nl-2", "c1"), "2026-02-08T07:00:00Z")
    first = start_session(h, "s4", "a4", "2026-02-06T10:00:00Z", DIRECT)
    second = start_session(h, "s4", "a4", "2026-02-06T09:00:00Z", ("newsletter", "email", "ghost"))
    h.events.remove(first)
    h.events.append(first)  # delivered after the second
    assert second["stream_version"] > first["stream_version"]
    start_session(h, "s5", "a5", "2026-02-07T10:00:00Z", ("partner", "affiliate", "autumn"))

    h.add("EmailCampaignSent", "campaign-nl-1", email("nl-1", "c9"), "2026-02-01T07:00:00Z", tenant_id="t2")
    record_spend(h, "nl-1", "email", "2026-02-01", 700, "GBP", "2026-02-02T03:00:00Z", tenant_id="t2")
    start_session(h, "s1", "a9", "2026-02-01T09:00:00Z", newsletter, customer_id="c9", tenant_id="t2")
    place_order(h, "o9", "c9", "s1", 1400, "2026-02-01T09:30:00Z", tenant_id="t2", currency="GBP")

    h.add("EmailOpened", "campaign-nl-1", email("nl-1", "c2"), "2026-02-01T10:00:00Z")  # late
    return h


def kpi_history() -> History:
    """Days of t1 (EUR) and t2 (GBP), for marketing_kpis_daily as of 2026-01-12T12:00Z.

    t1:
    - Jan 9: only a spend (spring, 800), recorded on Jan 10.
    - Jan 10: sessions s1 and s2 of visitor a1, s3 of a2 (started at 00:30 +02:00 on Jan 11, which
      is Jan 10 in UTC). o1 4000 in s1, refunded in full; o2 2500 by phone with a 500 promotion, its
      confirmation delivered twice; o3 1000 never confirmed. c1 registers (v1, with a referrer),
      c2 registers (v2, delivered twice). Spend spring 1000 and nl 500, recorded on Jan 11.
    - Jan 11: session s4 of a3; o4 3000 confirmed then cancelled. c3 registers at 01:00 +02:00 on
      Jan 12 (Jan 11 in UTC). Spend spring 300, recorded on Jan 12.
    - Jan 12: c1 registers a second time, which is not a new customer.
    t2:
    - Jan 10: session s1 of a1 (same ids as t1's), o9 999 GBP in it.
    - Jan 11: session s2 of a5, nothing else.
    """
    h = History()
    record_spend(h, "spring", "paid_search", "2026-01-09", 800, "EUR", "2026-01-10T03:00:00Z")
    start_session(h, "s1", "a1", "2026-01-10T09:00:00Z", ("google", "cpc", "spring"))
    start_session(h, "s2", "a1", "2026-01-10T15:00:00Z", DIRECT)
    start_session(h, "s3", "a2", "2026-01-11T00:30:00+02:00", DIRECT)
    start_session(h, "s4", "a3", "2026-01-11T10:00:00Z", DIRECT)
    place_order(h, "o1", "c1", "s1", 4000, "2026-01-10T09:30:00Z", refund=4000)
    confirmation = place_order(h, "o2", "c2", None, 2500, "2026-01-10T11:00:00Z", discount=500, order_source="phone")
    h.redeliver(confirmation)
    place_order(h, "o3", "c1", "s2", 1000, "2026-01-10T16:00:00Z", confirmed=False)
    place_order(h, "o4", None, "s4", 3000, "2026-01-11T10:30:00Z", cancelled=True)
    register(h, "c1", "DE", "2026-01-10T10:00:00Z", referrer="https://www.bing.com/")
    h.redeliver(register(h, "c2", "AT", "2026-01-10T12:00:00Z", acquisition=DIRECT))
    register(h, "c3", "DE", "2026-01-12T01:00:00+02:00", acquisition=DIRECT)
    register(h, "c1", "DE", "2026-01-12T09:00:00Z", acquisition=DIRECT)
    record_spend(h, "spring", "paid_search", "2026-01-10", 1000, "EUR", "2026-01-11T03:00:00Z")
    record_spend(h, "nl", "email", "2026-01-10", 500, "EUR", "2026-01-11T03:01:00Z")
    record_spend(h, "spring", "paid_search", "2026-01-11", 300, "EUR", "2026-01-12T03:00:00Z")

    start_session(h, "s1", "a1", "2026-01-10T09:00:00Z", ("google", "cpc", None), tenant_id="t2")
    place_order(h, "o9", "c9", "s1", 999, "2026-01-10T09:30:00Z", tenant_id="t2", currency="GBP")
    start_session(h, "s2", "a5", "2026-01-11T08:00:00Z", DIRECT, tenant_id="t2")
    return h


DIRECT = ("direct", "none", None)


def place_order(
    h: History,
    order_id: str,
    customer_id: str | None,
    session_id: str | None,
    total_cents: int,
    created_at: str,
    *,
    confirmed: bool = True,
    cancelled: bool = False,
    discount: int = 0,
    refund: int = 0,
    order_source: str = "web",
    currency: str = "EUR",
    tenant_id: str = "t1",
) -> dict[str, Any]:
    """An OrderCreated v3 of one item, then its promotion, confirmation, cancellation and refund, a
    minute apart each; returns the last event (to deliver it again)."""
    stream = f"order-{order_id}"
    data = {
        "order_id": order_id, "cart_id": None, "customer_id": customer_id, "session_id": session_id,
        "items": [{"product_id": "p1", "category": "misc", "quantity": 1, "unit_price_cents": total_cents}],
        "total_cents": total_cents, "currency": currency, "order_source": order_source,
    }
    minute = _minutes_after(created_at)
    last = h.add("OrderCreated", stream, data, created_at, tenant_id=tenant_id, schema_version=3)
    if discount:
        last = h.add("PromotionApplied", stream, {"order_id": order_id, "promo_code": "P", "discount_cents": discount},
                     next(minute), tenant_id=tenant_id)
    if confirmed:
        last = h.add("OrderConfirmed", stream, {"order_id": order_id}, next(minute), tenant_id=tenant_id)
    if cancelled:
        last = h.add("OrderCancelled", stream, {"order_id": order_id, "reason": "customer_request"}, next(minute),
                     tenant_id=tenant_id)
    if refund:
        last = h.add("OrderRefunded", stream, {"order_id": order_id, "amount_cents": refund}, next(minute),
                     tenant_id=tenant_id)
    return last


def register(
    h: History,
    customer_id: str,
    country: str | None,
    at: str,
    *,
    referrer: str | None = None,
    acquisition: tuple[str, str, str | None] | None = None,
    tenant_id: str = "t1",
) -> dict[str, Any]:
    """A CustomerRegistered: v2 when an acquisition (source, medium, campaign) is given, else v1."""
    data: dict[str, Any] = {"customer_id": customer_id, "email": f"{customer_id}@example.com", "country": country}
    if acquisition is None:
        data["referrer"] = referrer
        version = 1
    else:
        data["acquisition"] = dict(zip(("source", "medium", "campaign"), acquisition))
        version = 2
    return h.add("CustomerRegistered", f"customer-{customer_id}", data, at, tenant_id=tenant_id, schema_version=version)


def start_session(
    h: History,
    session_id: str,
    anonymous_id: str,
    at: str,
    channel: tuple[str, str, str | None],
    *,
    customer_id: str | None = None,
    tenant_id: str = "t1",
) -> dict[str, Any]:
    source, medium, campaign = channel
    data = {
        "session_id": session_id, "anonymous_id": anonymous_id, "customer_id": customer_id, "source": source,
        "medium": medium, "campaign": campaign, "device": "mobile", "landing_page": "/",
    }
    return h.add("SessionStarted", f"session-{session_id}", data, at, tenant_id=tenant_id)


def record_spend(
    h: History, campaign_id: str, channel: str, spend_date: str, cost_cents: int, currency: str, at: str,
    *, tenant_id: str = "t1",
) -> dict[str, Any]:
    data = {"campaign_id": campaign_id, "channel": channel, "spend_date": spend_date, "cost_cents": cost_cents,
            "currency": currency}
    return h.add("CampaignSpendRecorded", f"campaign-{campaign_id}", data, at, tenant_id=tenant_id)


def consent(customer_id: str, channel: str, granted: bool) -> dict[str, Any]:
    return {"customer_id": customer_id, "channel": channel, "granted": granted}


def email(campaign_id: str, customer_id: str) -> dict[str, Any]:
    return {"campaign_id": campaign_id, "customer_id": customer_id}


def _minutes_after(timestamp: str):
    from datetime import datetime, timedelta

    start = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    for minutes in range(1, 60):
        yield (start + timedelta(minutes=minutes)).isoformat()

