"""Oracle for the marketing marts: funnel_daily, marketing_kpis_daily, campaign_performance.

Plain Python over the landed events (tests/oracle/events.py) and the order states (tests/oracle/orders.py),
written from the two specs only (/work/shared/spec/events.md, marts.md). Every mart is a
function `(landed, as_of) -> list[dict]`: one dict per row of the mart's grain, keyed by column name.
Only events with `occurred_at <= as_of` count. Rates are floats, None where the denominator is 0.

Choices where the spec leaves room (see also the report that came with these files):
- funnel_daily: the steps are independent (a session with an order but no view counts at `with_order`
  and not at `sessions_with_view`); a step event counts whatever its own date, on the session's date; step
  events naming a session whose SessionStarted is unknown are left out. `with_order` = any order (valid
  or not) whose `OrderCreated` names the session; `with_valid_order` = a valid one.
- marketing_kpis_daily: each metric is counted on its own date: sessions and visitors (distinct
  anonymous_id) on the session date; valid_orders, revenue_cents (net - refunded) and avg_basket_cents
  (mean net_cents, float, not rounded) on the order date, for every valid order (whether or not its
  session is known); new_customers on the UTC date of the customer's first CustomerRegistered; spend_cents
  on CampaignSpendRecorded's `spend_date`. A day has a row when it has a session, a valid order, a
  registration or a spend record (even one of 0 cents); a day with only invalid orders has none.
  conversion_rate = valid_orders / sessions (None when no session that day, even with orders);
  avg_basket_cents None when no valid order; cac_cents = spend_cents / new_customers as a float (not
  rounded), None when nobody registered that day (0.0 when there were registrations but no spend).
- campaign_performance: recipients/openers/clickers are distinct customer_ids of EmailCampaignSent/
  EmailOpened/EmailClicked; opens/clicks count events (after deduplication by event_id). Openers and
  clickers are not restricted to recipients (a rate may exceed 1 if a sent event is missing).
  open_rate/click_rate None when no recipient. Attribution: a valid order whose session is known and whose
  SessionStarted campaign equals the campaign id; attributed_revenue_cents = sum of (net - refunded).
  cost_cents = every CampaignSpendRecorded of the campaign, whatever its channel or spend_date (an event
  counts by its occurred_at only). romi None when cost is 0.
- Currency: amounts are added as recorded after upcasting, whatever their currency (the spec converts nothing).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from tests.oracle.events import Event, Landed, Session, customer_id_of, known_sessions, stream_order, visible
from tests.oracle.orders import Order, orders


# ----------------------------------------------------------------------------------------- shared helpers


def visible_events(landed: Landed, as_of: datetime, *event_types: str) -> list[Event]:
    """The landed events of the given types (all when none given) with occurred_at <= as_of, in stream order."""
    wanted = set(event_types)
    chosen = [e for e in visible(landed, as_of) if not wanted or e.event_type in wanted]
    return sorted(chosen, key=lambda e: (e.tenant_id, e.stream_id, *stream_order(e)))


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator as a float, None when the denominator is 0."""
    return None if denominator == 0 else numerator / denominator


def first_registrations(landed: Landed, as_of: datetime) -> dict[tuple[str, str], Event]:
    """(tenant_id, customer_id) -> the customer's first CustomerRegistered in stream order."""
    first: dict[tuple[str, str], Event] = {}
    for event in visible_events(landed, as_of, "CustomerRegistered"):
        first.setdefault((event.tenant_id, customer_id_of(event)), event)
    return first


def campaign_id_of(event: Event) -> str:
    """The campaign an event of a campaign stream is about: data.campaign_id, else the stream id's tail."""
    campaign_id = event.data.get("campaign_id")
    return campaign_id if campaign_id is not None else event.stream_id.removeprefix("campaign-")


def _session_keys(events: Iterable[Event]) -> set[tuple[str, str]]:
    return {(e.tenant_id, e.data["session_id"]) for e in events if e.data.get("session_id") is not None}


# ------------------------------------------------------------------------------------------- funnel_daily


def funnel_daily(landed: Landed, as_of: datetime) -> list[dict]:
    """tenant_id x session_date: sessions, sessions_with_view, with_add_to_cart, with_order, with_valid_order."""
    sessions = known_sessions(landed, as_of)
    viewed = _session_keys(visible_events(landed, as_of, "ProductViewed"))
    added = _session_keys(visible_events(landed, as_of, "CartItemAdded"))
    order_rows = list(orders(landed, as_of).values())
    ordered = {(o.tenant_id, o.session_id) for o in order_rows if o.session_id is not None}
    ordered_valid = {(o.tenant_id, o.session_id) for o in order_rows if o.session_id is not None and o.is_valid}

    counts: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for key, session in sessions.items():
        row = counts[(session.tenant_id, session.session_date)]
        row[0] += 1
        row[1] += key in viewed
        row[2] += key in added
        row[3] += key in ordered
        row[4] += key in ordered_valid
    columns = ("sessions", "sessions_with_view", "with_add_to_cart", "with_order", "with_valid_order")
    return [
        {"tenant_id": tenant_id, "session_date": day, **dict(zip(columns, values))}
        for (tenant_id, day), values in sorted(counts.items())
    ]


# ----------------------------------------------------------------------------------- marketing_kpis_daily


@dataclass
class _Day:
    sessions: int = 0
    visitors: set[str] = field(default_factory=set)
    valid_orders: int = 0
    revenue_cents: int = 0
    net_cents: int = 0
    new_customers: int = 0
    spend_cents: int = 0


def marketing_kpis_daily(landed: Landed, as_of: datetime) -> list[dict]:
    """tenant_id x activity_date: sessions, visitors, valid_orders, revenue_cents, avg_basket_cents,
    conversion_rate, new_customers, spend_cents, cac_cents (each metric on its own date; module docstring)."""
    order_rows = list(orders(landed, as_of).values())
    spends = visible_events(landed, as_of, "CampaignSpendRecorded")

    days: dict[tuple[str, date], _Day] = defaultdict(_Day)
    for session in known_sessions(landed, as_of).values():
        day = days[(session.tenant_id, session.session_date)]
        day.sessions += 1
        day.visitors.add(session.anonymous_id)
    for order in order_rows:
        if order.is_valid:
            day = days[(order.tenant_id, order.order_date)]
            day.valid_orders += 1
            day.revenue_cents += order.revenue_cents
            day.net_cents += order.net_cents
    for (tenant_id, _customer_id), registered in first_registrations(landed, as_of).items():
        days[(tenant_id, registered.occurred_at.date())].new_customers += 1
    for event in spends:
        days[(event.tenant_id, date.fromisoformat(event.data["spend_date"]))].spend_cents += event.data["cost_cents"]

    return [
        {
            "tenant_id": tenant_id,
            "activity_date": activity_date,
            "sessions": day.sessions,
            "visitors": len(day.visitors),
            "valid_orders": day.valid_orders,
            "revenue_cents": day.revenue_cents,
            "avg_basket_cents": ratio(day.net_cents, day.valid_orders),
            "conversion_rate": ratio(day.valid_orders, day.sessions),
            "new_customers": day.new_customers,
            "spend_cents": day.spend_cents,
            "cac_cents": ratio(day.spend_cents, day.new_customers),
        }
        for (tenant_id, activity_date), day in sorted(days.items())
    ]


# ----------------------------------------------------------------------------------- campaign_performance


@dataclass
class _Campaign:
    recipients: set[str] = field(default_factory=set)
    opens: int = 0
    openers: set[str] = field(default_factory=set)
    clicks: int = 0
    clickers: set[str] = field(default_factory=set)
    attributed_orders: int = 0
    attributed_revenue_cents: int = 0
    cost_cents: int = 0


def campaign_performance(landed: Landed, as_of: datetime) -> list[dict]:
    """tenant_id x campaign_id, for every campaign id seen in a campaign- stream or as a known session's
    campaign: recipients, opens, openers, clicks, clickers, open_rate, click_rate, attributed_orders,
    attributed_revenue_cents, cost_cents, romi."""
    sessions = known_sessions(landed, as_of)
    order_rows = list(orders(landed, as_of).values())
    campaign_events = [e for e in visible_events(landed, as_of) if e.stream_id.startswith("campaign-")]

    campaigns: dict[tuple[str, str], _Campaign] = defaultdict(_Campaign)
    for event in campaign_events:
        campaign = campaigns[(event.tenant_id, campaign_id_of(event))]
        customer_id = event.data.get("customer_id")
        if event.event_type == "EmailCampaignSent":
            campaign.recipients.add(customer_id)
        elif event.event_type == "EmailOpened":
            campaign.opens += 1
            campaign.openers.add(customer_id)
        elif event.event_type == "EmailClicked":
            campaign.clicks += 1
            campaign.clickers.add(customer_id)
        elif event.event_type == "CampaignSpendRecorded":
            campaign.cost_cents += event.data["cost_cents"]
    for session in sessions.values():
        if session.campaign is not None:
            campaigns.setdefault((session.tenant_id, session.campaign), _Campaign())  # a row even with nothing in it
    for order in order_rows:
        session: Session | None = sessions.get((order.tenant_id, order.session_id)) if order.session_id else None
        if order.is_valid and session is not None and session.campaign is not None:
            campaign = campaigns[(order.tenant_id, session.campaign)]
            campaign.attributed_orders += 1
            campaign.attributed_revenue_cents += order.revenue_cents

    rows = []
    for (tenant_id, campaign_id), c in sorted(campaigns.items()):
        recipients = len(c.recipients - {None})
        rows.append({
            "tenant_id": tenant_id,
            "campaign_id": campaign_id,
            "recipients": recipients,
            "opens": c.opens,
            "openers": len(c.openers - {None}),
            "clicks": c.clicks,
            "clickers": len(c.clickers - {None}),
            "open_rate": ratio(len(c.openers - {None}), recipients),
            "click_rate": ratio(len(c.clickers - {None}), recipients),
            "attributed_orders": c.attributed_orders,
            "attributed_revenue_cents": c.attributed_revenue_cents,
            "cost_cents": c.cost_cents,
            "romi": ratio(c.attributed_revenue_cents - c.cost_cents, c.cost_cents),
        })
    return rows
