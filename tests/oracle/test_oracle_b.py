"""Hand-made histories for the oracle's marketing and customer marts (pure Python, no Spark)."""

from __future__ import annotations

import math
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest

from tests.oracle.customers import (
    chi_square_sf,
    customer_360,
    experiment_results,
    quintile_scores,
    regularized_upper_gamma,
    srm_p_value,
)
from tests.oracle.events import Event, Landed
from tests.oracle.marketing import campaign_performance, funnel_daily, marketing_kpis_daily

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


class History:
    """Events of one tenant, in the newest schema versions, numbered as a store would number them."""

    def __init__(self, tenant_id: str = "t1") -> None:
        self.tenant_id = tenant_id
        self.events: list[Event] = []
        self.versions: Counter[str] = Counter()

    def add(self, stream_id: str, event_type: str, at: datetime, version: int | None = None, **data) -> Event:
        self.versions[stream_id] += 1
        event = Event(
            event_id=f"e{len(self.events) + 1}",
            tenant_id=self.tenant_id,
            stream_id=stream_id,
            stream_version=version if version is not None else self.versions[stream_id],
            global_position=len(self.events) + 1,
            event_type=event_type,
            schema_version=1,
            occurred_at=at,
            recorded_at=at,
            data=data,
        )
        self.events.append(event)
        return event

    def landed(self, *others: History) -> Landed:
        events = [e for history in (self, *others) for e in history.events]
        return Landed(events=events, held_back=[], unknown=[], quarantined=[], duplicates=0)

    # --- helpers per stream type
    def session(self, sid: str, at: datetime, anonymous_id: str = "a1", campaign: str | None = None,
                customer_id: str | None = None) -> None:
        self.add(f"session-{sid}", "SessionStarted", at, session_id=sid, anonymous_id=anonymous_id,
                 customer_id=customer_id, source="google", medium="cpc" if campaign else "organic",
                 campaign=campaign, device="mobile", landing_page="/")

    def view(self, sid: str, at: datetime, anonymous_id: str = "a1") -> None:
        self.add(f"session-{sid}", "ProductViewed", at, session_id=sid, anonymous_id=anonymous_id,
                 customer_id=None, product_id="p1", category="shoes")

    def add_to_cart(self, cart: str, sid: str, at: datetime, currency: str = "EUR") -> None:
        self.add(f"cart-{cart}", "CartItemAdded", at, cart_id=cart, session_id=sid, customer_id=None,
                 product_id="p1", category="shoes", quantity=1, unit_price_cents=1000, currency=currency)

    def exposed(self, sid: str, at: datetime, anonymous_id: str, variant: str, experiment: str = "x1") -> None:
        self.add(f"session-{sid}", "ExperimentExposed", at, experiment_id=experiment, variant=variant,
                 session_id=sid, anonymous_id=anonymous_id, customer_id=None)

    def order(self, oid: str, at: datetime, total_cents: int, sid: str | None = None, customer_id: str | None = None,
              confirmed: bool = True, cancelled: bool = False, discount_cents: int = 0, refund_cents: int = 0,
              currency: str = "EUR") -> None:
        stream = f"order-{oid}"
        self.add(stream, "OrderCreated", at, order_id=oid, cart_id=None, customer_id=customer_id, session_id=sid,
                 items=[{"product_id": "p1", "category": "shoes", "quantity": 1, "unit_price_cents": total_cents}],
                 total_cents=total_cents, currency=currency, order_source="web")
        if discount_cents:
            self.add(stream, "PromotionApplied", at + timedelta(minutes=1), order_id=oid, promo_code="X",
                     discount_cents=discount_cents)
        if confirmed:
            self.add(stream, "OrderConfirmed", at + timedelta(minutes=2), order_id=oid)
        if cancelled:
            self.add(stream, "OrderCancelled", at + timedelta(minutes=3), order_id=oid, reason="changed mind")
        if refund_cents:
            self.add(stream, "OrderRefunded", at + timedelta(minutes=4), order_id=oid, amount_cents=refund_cents)

    def register(self, cid: str, at: datetime, country: str = "DE", source: str = "direct") -> None:
        self.add(f"customer-{cid}", "CustomerRegistered", at, customer_id=cid, email=f"{cid}@example.com",
                 country=country, acquisition={"source": source, "medium": "none", "campaign": None})

    def consent(self, cid: str, at: datetime, granted: bool, channel: str = "email",
                version: int | None = None) -> None:
        self.add(f"customer-{cid}", "MarketingConsentChanged", at, version, customer_id=cid, channel=channel,
                 granted=granted)

    def spend(self, campaign: str, spend_date: date, cost_cents: int, at: datetime, currency: str = "EUR") -> None:
        self.add(f"campaign-{campaign}", "CampaignSpendRecorded", at, campaign_id=campaign, channel="paid_search",
                 spend_date=spend_date.isoformat(), cost_cents=cost_cents, currency=currency)


def by_key(rows: list[dict], *key: str) -> dict[tuple, dict]:
    return {tuple(row[name] for name in key): row for row in rows}


# ------------------------------------------------------------------------------------------------ funnel


def test_funnel_leaves_out_steps_of_unknown_sessions_and_counts_steps_on_the_session_date():
    h = History()
    h.session("s1", T0)
    h.view("s1", T0 + DAY)  # a step on a later date counts on the session's date
    h.add_to_cart("c1", "s1", T0 + DAY)
    h.order("o1", T0 + DAY, 5000, sid="s1")
    h.session("s2", T0 + HOUR)
    h.order("o2", T0 + 2 * HOUR, 3000, sid="s2", cancelled=True)  # an order, not a valid one
    # s3 has no SessionStarted: its view, add and order are left out, and its date has no row.
    h.view("s3", T0 + 2 * DAY)
    h.add_to_cart("c3", "s3", T0 + 2 * DAY)
    h.order("o3", T0 + 2 * DAY, 4000, sid="s3")

    rows = funnel_daily(h.landed(), T0 + 3 * DAY)

    assert rows == [{"tenant_id": "t1", "session_date": T0.date(), "sessions": 2, "sessions_with_view": 1,
                     "with_add_to_cart": 1, "with_order": 2, "with_valid_order": 1}]


def test_funnel_ignores_events_after_the_as_of_time():
    h = History()
    h.session("s1", T0)
    h.view("s1", T0 + 2 * HOUR)
    h.session("s2", T0 + DAY)

    rows = funnel_daily(h.landed(), T0 + HOUR)

    assert rows == [{"tenant_id": "t1", "session_date": T0.date(), "sessions": 1, "sessions_with_view": 0,
                     "with_add_to_cart": 0, "with_order": 0, "with_valid_order": 0}]


# ----------------------------------------------------------------------------------------- marketing KPIs


def test_kpis_cac_is_none_without_registrations_and_each_metric_counts_on_its_own_date():
    h = History()
    h.session("s1", T0, anonymous_id="a1")
    h.session("s2", T0 + HOUR, anonymous_id="a1")
    h.session("s3", T0 + 2 * HOUR, anonymous_id="a2")
    h.order("o1", T0 + 3 * HOUR, 10000, sid="s1", discount_cents=1000, refund_cents=500)  # net 9000, revenue 8500
    h.order("o2", T0 + 4 * HOUR, 3000, sid="s2")
    h.order("o3", T0 + 5 * HOUR, 7000, sid="s3", cancelled=True)
    h.spend("camp", T0.date(), 1200, T0 + DAY)  # recorded the next day, counted on its spend_date
    h.register("c1", T0 + DAY)
    h.spend("camp", (T0 + DAY).date(), 600, T0 + DAY + HOUR)
    h.spend("camp", (T0 + 2 * DAY).date(), 800, T0 + 2 * DAY)  # a day with spend only

    rows = by_key(marketing_kpis_daily(h.landed(), T0 + 3 * DAY), "activity_date")

    first, second, third = (rows[(T0 + n * DAY).date(),] for n in range(3))
    assert first == {"tenant_id": "t1", "activity_date": T0.date(), "sessions": 3, "visitors": 2, "valid_orders": 2,
                     "revenue_cents": 11500, "avg_basket_cents": 6000.0, "conversion_rate": 2 / 3,
                     "new_customers": 0, "spend_cents": 1200, "cac_cents": None}
    assert second["sessions"] == 0 and second["conversion_rate"] is None and second["avg_basket_cents"] is None
    assert (second["new_customers"], second["spend_cents"], second["cac_cents"]) == (1, 600, 600.0)
    assert (third["sessions"], third["spend_cents"], third["cac_cents"]) == (0, 800, None)
    assert len(rows) == 3


def test_amounts_in_two_currencies_are_added_as_recorded():
    h = History()
    h.order("o1", T0, 1000, currency="EUR")
    h.spend("camp", T0.date(), 100, T0, currency="GBP")
    (row,) = marketing_kpis_daily(h.landed(), T0 + DAY)
    assert (row["revenue_cents"], row["spend_cents"]) == (1000, 100)


# ----------------------------------------------------------------------------------- campaign performance


def test_campaign_romi_is_none_without_cost_and_rates_use_distinct_customers():
    h = History()
    for cid in ("c1", "c2", "c3", "c4"):
        h.add("campaign-news", "EmailCampaignSent", T0, campaign_id="news", customer_id=cid)
    h.add("campaign-news", "EmailOpened", T0 + HOUR, campaign_id="news", customer_id="c1")
    h.add("campaign-news", "EmailOpened", T0 + 2 * HOUR, campaign_id="news", customer_id="c1")
    h.add("campaign-news", "EmailOpened", T0 + 2 * HOUR, campaign_id="news", customer_id="c2")
    h.add("campaign-news", "EmailClicked", T0 + 3 * HOUR, campaign_id="news", customer_id="c2", url="/x")
    h.session("s1", T0 + 3 * HOUR, campaign="news")
    h.order("o1", T0 + 4 * HOUR, 5000, sid="s1", refund_cents=1000)
    h.order("o2", T0 + 5 * HOUR, 9000, sid="s1", cancelled=True)  # not valid: not attributed
    h.session("s2", T0, campaign="search")  # seen only as a session's campaign
    h.spend("search", T0.date(), 2000, T0)
    h.session("s3", T0, campaign="search")
    h.order("o3", T0 + HOUR, 3000, sid="s3")
    h.order("o4", T0 + HOUR, 3000, sid="s-unknown")  # its session is unknown: attributed to nothing
    h.session("s4", T0, campaign="free")  # a session's campaign with no spend and no orders

    rows = by_key(campaign_performance(h.landed(), T0 + DAY), "campaign_id")

    assert set(rows) == {("news",), ("search",), ("free",)}
    assert rows["news",] == {"tenant_id": "t1", "campaign_id": "news", "recipients": 4, "opens": 3, "openers": 2,
                             "clicks": 1, "clickers": 1, "open_rate": 0.5, "click_rate": 0.25,
                             "attributed_orders": 1, "attributed_revenue_cents": 4000, "cost_cents": 0, "romi": None}
    assert (rows["search",]["attributed_revenue_cents"], rows["search",]["romi"]) == (3000, 0.5)
    assert rows["search",]["open_rate"] is None
    assert (rows["free",]["attributed_orders"], rows["free",]["romi"]) == (0, None)


# ------------------------------------------------------------------------------------------- customer_360


def test_customer_360_consent_erasure_windows_and_unregistered_customers():
    h = History()
    as_of = datetime(2026, 6, 30, 12, 0, tzinfo=timezone.utc)
    h.register("c1", datetime(2025, 1, 1, tzinfo=timezone.utc), country="FR", source="newsletter.example")
    # Stream order decides, not occurred_at: version 3 (granted=False) is the latest although it occurred first.
    h.consent("c1", datetime(2025, 2, 2, tzinfo=timezone.utc), granted=True, version=2)
    h.consent("c1", datetime(2025, 2, 1, tzinfo=timezone.utc), granted=False, version=3)
    h.consent("c1", datetime(2025, 2, 3, tzinfo=timezone.utc), granted=True, channel="sms", version=4)
    h.order("o1", datetime(2026, 6, 30, 1, tzinfo=timezone.utc), 1000, customer_id="c1")  # day 0
    h.order("o2", datetime(2026, 6, 1, 1, tzinfo=timezone.utc), 2000, customer_id="c1")  # 29 days before: in 30d
    h.order("o3", datetime(2026, 5, 31, 23, tzinfo=timezone.utc), 3000, customer_id="c1")  # 30 days: not in 30d
    h.order("o4", datetime(2026, 4, 1, 1, tzinfo=timezone.utc), 4000, customer_id="c1", refund_cents=4000)  # 90 d
    h.order("o5", datetime(2026, 4, 2, 1, tzinfo=timezone.utc), 5000, customer_id="c1", cancelled=True)
    h.order("o6", datetime(2026, 7, 1, 1, tzinfo=timezone.utc), 6000, customer_id="c1")  # after as-of
    h.register("c2", datetime(2026, 1, 1, tzinfo=timezone.utc), country="DE")
    h.consent("c2", datetime(2026, 1, 2, tzinfo=timezone.utc), granted=True)
    h.add("customer-c2", "CustomerErasureRequested", datetime(2026, 7, 2, tzinfo=timezone.utc), customer_id="c2")
    h.order("o7", datetime(2026, 6, 20, tzinfo=timezone.utc), 700, customer_id="c3")  # never registered

    rows = by_key(customer_360(h.landed(), as_of), "customer_id")

    c1 = rows["c1",]
    assert c1["registered_at"] == datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert (c1["acquisition_source"], c1["acquisition_medium"], c1["acquisition_campaign"]) == (
        "newsletter.example", "none", None)
    assert (c1["country"], c1["email_consent"]) == ("FR", False)
    assert (c1["valid_orders"], c1["revenue_cents"], c1["avg_basket_cents"]) == (4, 6000, 2500.0)
    assert (c1["first_valid_order_date"], c1["last_valid_order_date"]) == (date(2026, 4, 1), date(2026, 6, 30))
    assert (c1["valid_orders_30d"], c1["valid_orders_90d"], c1["valid_orders_365d"]) == (2, 3, 4)
    assert (c1["revenue_90d_cents"], c1["days_since_last_order"]) == (6000, 0)
    c2 = rows["c2",]  # erased after the as-of time: erased all the same
    assert (c2["is_erased"], c2["country"], c2["valid_orders"], c2["recency_score"]) == (True, "DE", 0, None)
    assert not c1["is_erased"]
    c3 = rows["c3",]
    assert (c3["registered_at"], c3["country"], c3["email_consent"], c3["valid_orders"]) == (None, None, False, 1)
    assert c3["days_since_last_order"] == 10
    # RFM among c1 and c3: c1 is more recent, more frequent and richer.
    assert (c1["recency_score"], c1["frequency_score"], c1["monetary_score"]) == (5, 5, 5)
    assert (c3["recency_score"], c3["frequency_score"], c3["monetary_score"]) == (3, 3, 3)
    registered_only = customer_360(h.landed(), as_of, include_unregistered=False)
    assert [row["customer_id"] for row in registered_only] == ["c1", "c2"]


def test_quintile_scores_share_ties_and_rank_the_best_last():
    assert quintile_scores({k: k for k in range(10)}) == {k: k // 2 + 1 for k in range(10)}
    assert quintile_scores({"a": 1, "b": 1, "c": 1, "d": 1, "e": 2}) == {"a": 4, "b": 4, "c": 4, "d": 4, "e": 5}
    assert quintile_scores({"a": 1, "b": 2, "c": 2, "d": 2, "e": 2}) == {"a": 1, "b": 5, "c": 5, "d": 5, "e": 5}
    assert quintile_scores({"only": 7}) == {"only": 5}


# ------------------------------------------------------------------------------------------- experiments


def test_experiment_excludes_contaminated_visitors_and_compares_with_control():
    h = History()
    # control: a1..a4, a1 and a2 convert (a2's order before exposure does not count, a later one does)
    for anon in ("a1", "a2", "a3", "a4"):
        h.session(f"s{anon}", T0, anonymous_id=anon)
        h.exposed(f"s{anon}", T0 + HOUR, anon, "control")
    h.order("o1", T0 + 2 * HOUR, 1000, sid="sa1", discount_cents=100, refund_cents=200)  # revenue 700
    h.order("o2", T0 + 30 * timedelta(minutes=1), 5000, sid="sa2")  # before exposure
    h.order("o3", T0 + HOUR, 2000, sid="sa2")  # at exposure time: counts
    h.order("o3b", T0 + 3 * HOUR, 2000, sid="sa3", cancelled=True)
    # treatment: b1, b2 and one whose session is unknown (exposure still counts), b1 converts
    for anon in ("b1", "b2"):
        h.session(f"s{anon}", T0, anonymous_id=anon)
        h.exposed(f"s{anon}", T0 + HOUR, anon, "treatment")
    h.exposed("s-unknown", T0 + HOUR, "b3", "treatment")
    h.order("o4", T0 + 2 * HOUR, 3000, sid="sb1")
    # contaminated: first control, then treatment; its conversion counts nowhere
    h.session("sz", T0, anonymous_id="z")
    h.exposed("sz", T0 + 2 * HOUR, "z", "treatment")
    h.exposed("sz", T0 + HOUR, "z", "control")  # earlier occurred_at: the first exposure
    h.order("o5", T0 + 3 * HOUR, 9000, sid="sz")

    rows = by_key(experiment_results(h.landed(), T0 + DAY), "variant")

    control, treatment = rows["control",], rows["treatment",]
    assert (control["visitors"], control["converters"], control["revenue_cents"]) == (4, 2, 2700)
    assert (control["contaminated_visitors"], treatment["contaminated_visitors"]) == (1, 1)  # per experiment
    assert control["revenue_per_visitor_cents"] == 675.0
    assert all(control[name] is None for name in ("uplift_absolute", "uplift_relative", "uplift_ci95_low",
                                                  "uplift_ci95_high", "p_value"))
    assert (treatment["visitors"], treatment["converters"], treatment["revenue_cents"]) == (3, 1, 3000)
    p_t, p_c = 1 / 3, 1 / 2
    assert treatment["uplift_absolute"] == pytest.approx(p_t - p_c)
    assert treatment["uplift_relative"] == pytest.approx((p_t - p_c) / p_c)
    half = 1.959963984540054 * math.sqrt(p_t * (1 - p_t) / 3 + p_c * (1 - p_c) / 4)
    assert treatment["uplift_ci95_low"] == pytest.approx(p_t - p_c - half)
    assert treatment["uplift_ci95_high"] == pytest.approx(p_t - p_c + half)
    pooled = 3 / 7
    z = (p_t - p_c) / math.sqrt(pooled * (1 - pooled) * (1 / 3 + 1 / 4))
    assert treatment["p_value"] == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))
    srm = chi_square_sf((4 - 3.5) ** 2 / 3.5 * 2, 1)
    assert control["srm_p_value"] == treatment["srm_p_value"] == pytest.approx(srm)
    assert experiment_results(h.landed(), T0 + DAY, require_known_session=True)[1]["visitors"] == 2


def test_experiment_without_control_and_with_a_configured_split():
    h = History()
    for n in range(6):
        h.exposed(f"s{n}", T0, f"a{n}", "a" if n < 4 else "b")
    rows = by_key(experiment_results(h.landed(), T0, splits={"x1": {"a": 2, "b": 1}}), "variant")
    assert rows["a",]["uplift_absolute"] is None and rows["b",]["p_value"] is None
    assert rows["a",]["srm_p_value"] == pytest.approx(1.0)  # 4:2 is exactly the configured 2:1
    rows = by_key(experiment_results(h.landed(), T0), "variant")
    assert rows["a",]["srm_p_value"] == pytest.approx(chi_square_sf(2 / 3, 1))
    assert srm_p_value({"a": 3, "b": 0}, {"a": 1, "b": 0}) is None
    assert srm_p_value({"a": 3, "b": 1}, {"a": 1, "b": 0}) == 0.0


def test_chi_square_tail():
    assert chi_square_sf(3.841458820694124, 1) == pytest.approx(0.05, rel=1e-9)
    assert chi_square_sf(5.991464547107979, 2) == pytest.approx(0.05, rel=1e-9)
    assert chi_square_sf(0.0, 3) == 1.0
    assert chi_square_sf(2.0, 2) == pytest.approx(math.exp(-1.0), rel=1e-12)
    special = pytest.importorskip("scipy.special")
    for a in (0.5, 1.0, 1.5, 2.0, 3.5, 10.0, 50.0):
        for x in (0.01, 0.3, 1.0, 2.5, 7.0, 20.0, 80.0):
            assert regularized_upper_gamma(a, x) == pytest.approx(float(special.gammaincc(a, x)), rel=1e-9, abs=1e-15)
