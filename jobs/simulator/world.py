"""One tenant's shop and the people around it: visitors and their sessions, customers, carts, orders,
email and paid campaigns, and A/B experiments.

State is bounded so that a long history costs no more memory than a short one: the pools of known
visitors and customers are capped (a random member makes room for a newcomer), and sessions, carts
and orders live only as long as events of theirs wait to be recorded.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate
from typing import Any, Sequence

from jobs.simulator import payloads
from jobs.simulator.catalog import EVENT_TYPES, FUTURE_VERSION_EXTRAS, UNKNOWN_EVENT_TYPES
from jobs.simulator.clock import DAY_US, HOUR_US, MINUTE_US, SECOND_US, InstantFormatter, TimeStyle, midnight_us
from jobs.simulator.events import EventKind, Flow, PendingEvent, PendingLog, Producer, Stream
from jobs.simulator.payloads import Channel, LineItem, Product
from jobs.simulator.settings import FX_PER_EUR, ExperimentSettings, SimulatorSettings

# Merchants: id and what they sell (category -> price points in EUR cents).
TENANT_PROFILES: tuple[tuple[str, tuple[tuple[str, tuple[int, ...]], ...]], ...] = (
    ("alpine-outfitters", (("jackets", (12999, 19999, 24999)), ("boots", (8999, 12999, 15999)),
                           ("backpacks", (4999, 7999, 9999)), ("tents", (14999, 24999, 39999)),
                           ("accessories", (999, 1999, 2999)))),
    ("bella-moda", (("dresses", (3999, 5999, 8999)), ("tops", (1999, 2999, 3999)), ("shoes", (4999, 7999, 9999)),
                    ("bags", (2999, 5999, 12999)), ("jewellery", (1499, 2499, 4999)))),
    ("nordic-home", (("furniture", (14999, 29999, 49999)), ("lighting", (2999, 5999, 8999)),
                     ("textiles", (1499, 2999, 4999)), ("kitchen", (999, 2499, 3999)), ("decor", (999, 1999, 3499)))),
    ("urban-sneakers", (("sneakers", (8999, 11999, 15999)), ("apparel", (2999, 4999, 6999)),
                        ("socks", (799, 1299, 1999)), ("caps", (1999, 2999, 3499)), ("care", (999, 1499, 1999)))),
)

# Sessions per UTC hour, relative: quiet nights, an evening peak (European shops).
HOUR_WEIGHTS = (1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.0, 2.0, 3.0, 3.5, 3.8, 4.0,
                4.2, 4.0, 3.8, 3.8, 4.0, 4.5, 5.2, 6.0, 6.3, 5.5, 4.0, 2.2)
WEEKDAY_FACTORS = (0.95, 0.95, 1.0, 1.0, 1.05, 1.1, 1.05)  # Monday first
# Until enough sessions are seen, the number of events one session brings (its own, and the orders,
# registrations and campaign traffic that come with it); then the run's own ratio takes over.
INITIAL_EVENTS_PER_SESSION = 6.0
SESSIONS_BEFORE_OWN_RATIO = 200

DEVICES = ("desktop", "mobile", "tablet")
DEVICE_WEIGHTS = (0.45, 0.45, 0.10)

# (source, medium, referrer URL as a v1 registration shows it, share of sessions, conversion factor)
ORGANIC_CHANNELS: tuple[tuple[str, str, str | None, float, float], ...] = (
    ("google", "organic", "https://www.google.com/", 0.20, 1.0),
    ("bing", "organic", "https://www.bing.com/", 0.03, 1.0),
    ("direct", "none", None, 0.23, 1.4),
    ("styleblog.example", "referral", "https://www.styleblog.example/best-of-the-season", 0.03, 0.9),
)
# (campaign slug, source, medium, spend channel, share of sessions, conversion factor, cost per session in cents)
PAID_CAMPAIGNS: tuple[tuple[str, str, str, str, float, float, int], ...] = (
    ("brand-search", "google", "cpc", "paid_search", 0.12, 1.6, 45),
    ("generic-search", "google", "cpc", "paid_search", 0.10, 1.0, 70),
    ("bing-search", "bing", "cpc", "paid_search", 0.03, 1.1, 50),
    ("fb-prospecting", "facebook", "paid_social", "paid_social", 0.08, 0.6, 35),
    ("ig-retargeting", "instagram", "paid_social", "paid_social", 0.05, 0.9, 40),
    ("display-retargeting", "criteo", "display", "display", 0.04, 0.5, 25),
    ("affiliate-deals", "awin", "affiliate", "affiliate", 0.04, 1.3, 60),
)
REFERRER_OF_SOURCE = {
    "google": "https://www.google.com/",
    "bing": "https://www.bing.com/",
    "facebook": "https://www.facebook.com/",
    "instagram": "https://l.instagram.com/",
    "criteo": "https://www.criteo.com/",
    "awin": "https://www.awin1.com/",
}
RETURNING_DIRECT_BOOST = 2.5  # returning visitors type the address more often
EMAIL_CONVERSION_FACTOR = 2.5
CUSTOMER_CONVERSION_FACTOR = 1.5
EMAIL_COST_PER_RECIPIENT_CENTS = 0.3

COUNTRIES_BY_CURRENCY = {
    "EUR": (("DE", 0.45), ("AT", 0.15), ("NL", 0.15), ("FR", 0.15), ("BE", 0.10)),
    "GBP": (("GB", 0.85), ("IE", 0.15)),
}
OTHER_COUNTRIES = (("US", 0.4), ("CH", 0.2), ("SE", 0.2), ("DK", 0.1), ("PL", 0.1))
FIRST_NAMES = ("anna", "ben", "clara", "david", "emma", "felix", "greta", "hugo", "ines", "jonas", "lena",
               "lucas", "mia", "noah", "olivia", "paul", "sofia", "tom", "yara", "zoe")
LAST_NAMES = ("schmidt", "muller", "jansen", "dubois", "smith", "jones", "rossi", "novak", "berg", "weber",
              "martin", "visser", "brown", "fischer", "moreau")
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
PROMOTIONS = (("WELCOME10", 10, 0), ("SPRING15", 15, 0), ("VIP20", 20, 0), ("FREESHIP", 0, 495))
CARRIERS_BY_CURRENCY = {"GBP": ("royal-mail", "dpd", "evri"), "EUR": ("dhl", "dpd", "gls", "ups")}
PAYMENT_METHODS = ("card", "paypal", "transfer")
PAYMENT_WEIGHTS = (0.7, 0.25, 0.05)
UNCONFIRMED_CANCEL_REASONS = ("payment_failed", "fraud_suspected", "customer_request")
CONFIRMED_CANCEL_REASONS = ("customer_request", "out_of_stock", "address_invalid")
ORDER_NOTES = ("Please leave at the door", "Gift wrap, please", "Call before delivery")


class Visitor:
    __slots__ = ("anonymous_id", "device", "uses_app", "customer")

    def __init__(self, anonymous_id: str, device: str, uses_app: bool) -> None:
        self.anonymous_id = anonymous_id
        self.device = device
        self.uses_app = uses_app
        self.customer: Customer | None = None


class Customer:
    # The visitor's traits are copied rather than referenced: a customer <-> visitor reference cycle
    # would keep forgotten pairs alive until the cyclic garbage collector runs.
    __slots__ = ("customer_id", "email", "stream", "anonymous_id", "device", "uses_app", "email_consent",
                 "sms_consent", "is_erased")

    def __init__(self, customer_id: str, email: str, visitor: Visitor) -> None:
        self.customer_id = customer_id
        self.email = email
        self.stream = Stream("customer", customer_id)
        self.anonymous_id = visitor.anonymous_id
        self.device = visitor.device
        self.uses_app = visitor.uses_app
        self.email_consent = False
        self.sms_consent = False
        self.is_erased = False

    def as_visitor(self) -> Visitor:
        """The visitor behind this customer, e.g. when a click in an email brings them to the shop."""
        visitor = Visitor(self.anonymous_id, self.device, self.uses_app)
        visitor.customer = self
        return visitor


class PaidCampaign:
    __slots__ = ("channel", "spend_channel", "cost_per_session_cents", "stream")

    def __init__(self, channel: Channel, spend_channel: str, cost_per_session_cents: int) -> None:
        self.channel = channel
        self.spend_channel = spend_channel
        self.cost_per_session_cents = cost_per_session_cents
        self.stream = Stream("campaign", channel.campaign or "")


class CartLine:
    __slots__ = ("product", "added", "removed")

    def __init__(self, product: Product) -> None:
        self.product = product
        self.added = 0
        self.removed = 0


@dataclass(frozen=True)
class Producers:
    """The services that emit a tenant's events, each with its own way of writing time."""

    web: Producer
    app: Producer
    cart_service: Producer
    order_service: Producer
    payment_service: Producer
    fulfilment: Producer
    customer_service: Producer
    email_service: Producer
    ads_importer: Producer
    call_center: Producer
    marketplace: Producer

    @classmethod
    def of_tenant(cls, local_offset_minutes: int) -> "Producers":
        return cls(
            web=Producer("web-frontend", TimeStyle(0, 3, "Z")),
            app=Producer("mobile-app", TimeStyle(local_offset_minutes, 3)),
            cart_service=Producer("cart-service", TimeStyle(0, 3, "Z")),
            order_service=Producer("order-service", TimeStyle(0, 6, "+00:00")),
            payment_service=Producer("payment-service", TimeStyle(0, 3, "Z")),
            # The warehouse system is older: local time, whole seconds, no producer name in metadata.
            fulfilment=Producer(None, TimeStyle(local_offset_minutes, 0)),
            customer_service=Producer("customer-service", TimeStyle(0, 0, "+00:00")),
            email_service=Producer("email-service", TimeStyle(0, 3, "Z")),
            # Ad platforms report in the ad account's time zone.
            ads_importer=Producer("ads-importer", TimeStyle(-8 * 60, 0)),
            call_center=Producer("call-center", TimeStyle(local_offset_minutes, 0)),
            marketplace=Producer("marketplace-connector", TimeStyle(0, 6, "Z")),
        )


def tenant_id_of(index: int) -> str:
    name = TENANT_PROFILES[index % len(TENANT_PROFILES)][0]
    round_ = index // len(TENANT_PROFILES)
    return name if round_ == 0 else f"{name}-{round_ + 1}"


def price_in_currency(price_eur_cents: int, currency: str) -> int:
    """A shelf price in another currency, kept at a .99 price point."""
    if currency == "EUR":
        return price_eur_cents
    major = price_eur_cents * FX_PER_EUR[currency] / 100
    return max(99, round(major) * 100 - 1)


def stochastic_round(expected: float, rng: random.Random) -> int:
    """An integer count whose mean is `expected` (small expectations still happen sometimes)."""
    whole = math.floor(expected)
    return whole + (1 if rng.random() < expected - whole else 0)


class TenantWorld:
    """Generates one tenant's events into the shared pending log, one day plan and one hour at a time."""

    def __init__(
        self,
        index: int,
        *,
        settings: SimulatorSettings,
        seed: int,
        start_date: date,
        log: PendingLog,
        formatter: InstantFormatter,
    ) -> None:
        self._rng = random.Random(f"simulator:{seed}:tenant:{index}")
        self._settings = settings
        self._behaviour = settings.behaviour
        self._anomalies = settings.anomalies
        self._log = log
        self._formatter = formatter
        self._start_date = start_date
        self.tenant_id = tenant_id_of(index)
        self.currency = settings.currency_of_tenant(index)
        self._domain = f"{self.tenant_id}.example"
        self._experiment_key = f"simulator:{seed}".encode()[:64]
        self._switches = self._switch_table(settings, start_date)
        self._products, self._product_cum_weights = self._make_products(index, settings.products_per_tenant)
        self._categories = tuple(dict.fromkeys(product.category for product in self._products))
        self._paid_campaigns = self._make_paid_campaigns()
        self._channels, self._new_visitor_cum, self._returning_cum = self._make_channels()
        countries = COUNTRIES_BY_CURRENCY.get(self.currency, OTHER_COUNTRIES)
        self._countries = tuple(code for code, _ in countries)
        self._country_cum = tuple(accumulate(weight for _, weight in countries))
        self._producers = Producers.of_tenant(local_offset_minutes=60 if index % 2 == 0 else 120)
        self._hour_cum = tuple(accumulate(HOUR_WEIGHTS))
        self._visitors: list[Visitor] = []
        self._customers: list[Customer] = []
        self._events_emitted = 0
        self._web_sessions = 0
        self._day_index = 0
        self._session_starts_by_hour: list[list[int]] = [[] for _ in range(24)]
        self._active_experiments: tuple[ExperimentSettings, ...] = ()
        self._paid_sessions_today: dict[str, int] = {}
        self._email_cost_today: dict[str, tuple[Stream, int]] = {}
        self._late_rate = self._anomalies.late_event_rate
        self._skew_rate = self._behaviour.clock_skew_rate
        self._unknown_rate = self._anomalies.unknown_event_type_rate
        self._future_rate = self._anomalies.future_schema_version_rate

    # --- set-up ---------------------------------------------------------------------------------

    @staticmethod
    def _switch_table(settings: SimulatorSettings, start_date: date) -> dict[str, tuple[tuple[int, int], ...]]:
        """event type -> ((start instant, version), ...), newest version first."""
        table: dict[str, list[tuple[int, int]]] = {}
        for switch in settings.schema_switch_dates:
            starts_us = midnight_us(switch.start_date(start_date))
            table.setdefault(switch.event_type, []).append((starts_us, switch.schema_version))
        return {event_type: tuple(sorted(entries, key=lambda e: -e[1])) for event_type, entries in table.items()}

    def _make_products(self, index: int, count: int) -> tuple[tuple[Product, ...], tuple[float, ...]]:
        rng = self._rng
        categories = TENANT_PROFILES[index % len(TENANT_PROFILES)][1]
        products: list[Product] = []
        taken: set[str] = set()
        while len(products) < count:
            category, price_points = categories[len(products) % len(categories)]
            product_id = f"{category[:3]}-{rng.getrandbits(32):08x}"
            if product_id in taken:
                continue
            taken.add(product_id)
            price_eur_cents = rng.choice(price_points)
            products.append(
                Product(product_id, category, price_eur_cents, price_in_currency(price_eur_cents, self.currency))
            )
        # A few products sell most: Zipf-like popularity over a shuffled ranking.
        ranks = list(range(count))
        rng.shuffle(ranks)
        return tuple(products), tuple(accumulate(1.0 / (rank + 1) ** 0.9 for rank in ranks))

    def _make_paid_campaigns(self) -> dict[str, PaidCampaign]:
        campaigns: dict[str, PaidCampaign] = {}
        for slug, source, medium, spend_channel, _, factor, cost_cents in PAID_CAMPAIGNS:
            campaign_id = f"{slug}-{self._rng.getrandbits(24):06x}"
            channel = Channel(source, medium, campaign_id, REFERRER_OF_SOURCE.get(source), factor)
            campaigns[campaign_id] = PaidCampaign(channel, spend_channel, cost_cents)
        return campaigns

    def _make_channels(self) -> tuple[tuple[Channel, ...], tuple[float, ...], tuple[float, ...]]:
        channels: list[Channel] = []
        weights: list[float] = []
        for source, medium, referrer_url, share, factor in ORGANIC_CHANNELS:
            channels.append(Channel(source, medium, None, referrer_url, factor))
            weights.append(share)
        for campaign, (*_, share, _, _) in zip(self._paid_campaigns.values(), PAID_CAMPAIGNS):
            channels.append(campaign.channel)
            weights.append(share)
        returning = [w * RETURNING_DIRECT_BOOST if c.source == "direct" else w for c, w in zip(channels, weights)]
        return tuple(channels), tuple(accumulate(weights)), tuple(accumulate(returning))

    # --- emitting -------------------------------------------------------------------------------

    def _new_id(self) -> str:
        digits = f"{self._rng.getrandbits(128):032x}"
        return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"

    def _version(self, event_type: str, at_us: int) -> int:
        for starts_us, version in self._switches.get(event_type, ()):
            if at_us >= starts_us:
                return version
        return 1

    def _emit(
        self,
        stream: Stream,
        event_type: str,
        version: int,
        data: dict[str, Any],
        at_us: int,
        producer: Producer,
        flow: Flow,
    ) -> None:
        """Hands one event to the store, deciding on the way whether it is late, skewed, in a future
        schema version, or followed by an event of an unknown type."""
        rng = self._rng
        kind = EventKind.CATALOG
        if event_type in FUTURE_VERSION_EXTRAS and version == EVENT_TYPES[event_type][1]:
            if rng.random() < self._future_rate:
                extra_field, values = FUTURE_VERSION_EXTRAS[event_type]
                data[extra_field] = rng.choice(values)
                version += 1
                kind = EventKind.FUTURE_VERSION
        # Store latency: milliseconds to a second.
        recorded_us = at_us + 2_000 + int(rng.random() * 900_000)
        occurred_us = at_us
        is_late = False
        inject_unknown = False
        draw = rng.random()
        if draw < self._late_rate:
            if kind is EventKind.CATALOG:
                max_late_hours = 24 * self._anomalies.max_late_days + 1
                recorded_us = at_us + rng.randint(25 * HOUR_US, max_late_hours * HOUR_US)
                is_late = True
        elif draw < self._late_rate + self._skew_rate:
            skew_us = rng.randint(30 * SECOND_US, self._behaviour.max_clock_skew_minutes * MINUTE_US)
            occurred_us += skew_us if rng.random() < 0.5 else -skew_us
        elif draw < self._late_rate + self._skew_rate + self._unknown_rate:
            inject_unknown = True
        self._push(stream, event_type, version, data, occurred_us, recorded_us, producer, flow, kind, is_late)
        if inject_unknown:
            self._emit_unknown_type(stream, at_us + rng.randint(1, 30) * SECOND_US, producer, flow)

    def _push(
        self,
        stream: Stream,
        event_type: str,
        version: int,
        data: dict[str, Any],
        occurred_us: int,
        recorded_us: int,
        producer: Producer,
        flow: Flow,
        kind: EventKind,
        is_late: bool,
    ) -> None:
        event_id = self._new_id()
        causation_id = flow.last_event_id or flow.correlation_id
        flow.last_event_id = event_id
        occurred_at = self._formatter.format(occurred_us, producer.time_style)
        self._log.push(
            recorded_us,
            PendingEvent(
                event_id, self.tenant_id, stream, event_type, version, occurred_at, data,
                flow.correlation_id, causation_id, producer.name, kind, is_late,
            ),
        )
        self._events_emitted += 1

    def _emit_unknown_type(self, stream: Stream, at_us: int, producer: Producer, flow: Flow) -> None:
        rng = self._rng
        entity_id = stream.entity_id
        data: dict[str, Any]
        if stream.stream_type == "customer":
            data = {"customer_id": entity_id, "tier": rng.choice(("bronze", "silver", "gold"))}
        elif stream.stream_type == "session":
            data = {"session_id": entity_id, "product_id": self._pick_product().product_id}
        elif stream.stream_type == "cart":
            data = {"cart_id": entity_id, "shared_via": rng.choice(("whatsapp", "email", "link"))}
        elif stream.stream_type == "order":
            data = {"order_id": entity_id, "note": rng.choice(ORDER_NOTES)}
        else:
            data = {"campaign_id": entity_id, "daily_budget_cents": rng.randint(5, 50) * 1000, "currency": self.currency}
        recorded_us = at_us + 2_000 + int(rng.random() * 900_000)
        event_type = UNKNOWN_EVENT_TYPES[stream.stream_type]
        self._push(stream, event_type, 1, data, at_us, recorded_us, producer, flow, EventKind.UNKNOWN_TYPE, False)

    def _emit_leaked_email(self, customer: Customer, at_us: int) -> None:
        """A producer's line that breaks in transit but still shows the customer's email address."""
        data = {"customer_id": customer.customer_id, "email": customer.email}
        flow = Flow(self._new_id())
        self._push(
            customer.stream, "CustomerEmailChanged", 1, data, at_us, at_us + 5_000, self._producers.customer_service, flow,
            EventKind.LEAKED_EMAIL, False,
        )

    # --- the day plan ---------------------------------------------------------------------------

    def plan_day(self, day_index: int, day_start_us: int) -> None:
        """Decides the day's traffic and emits what is not driven by web sessions."""
        self._day_index = day_index
        if day_index > 0:
            self._emit_spend_of_previous_day(day_start_us)
        session_count = self._session_count()
        self._plan_session_starts(session_count, day_start_us)
        self._active_experiments = tuple(
            experiment for experiment in self._settings.experiments
            if experiment.start_day <= day_index and (experiment.end_day is None or day_index < experiment.end_day)
        )
        self._plan_customer_changes(day_start_us)
        interval = self._behaviour.email_campaign_interval_days
        if day_index % interval == 1 % interval:
            self._send_email_campaign(day_start_us)
        self._plan_offline_orders(session_count, day_start_us)

    def _session_count(self) -> int:
        weekday = (self._start_date + timedelta(days=self._day_index)).weekday()
        target_events = self._settings.events_per_tenant_per_day * WEEKDAY_FACTORS[weekday] * self._rng.uniform(0.9, 1.1)
        if self._web_sessions >= SESSIONS_BEFORE_OWN_RATIO:
            events_per_session = self._events_emitted / self._web_sessions
        else:
            events_per_session = INITIAL_EVENTS_PER_SESSION
        return max(1, round(target_events / events_per_session))

    def _plan_session_starts(self, session_count: int, day_start_us: int) -> None:
        rng = self._rng
        by_hour: list[list[int]] = [[] for _ in range(24)]
        total = self._hour_cum[-1]
        for _ in range(session_count):
            hour = bisect.bisect_right(self._hour_cum, rng.random() * total)
            by_hour[min(hour, 23)].append(day_start_us + min(hour, 23) * HOUR_US + rng.randrange(HOUR_US))
        for starts in by_hour:
            starts.sort()
        self._session_starts_by_hour = by_hour

    def run_hour(self, hour_of_day: int) -> None:
        """Emits the web sessions that start in this hour."""
        for start_us in self._session_starts_by_hour[hour_of_day]:
            self._web_session(start_us)
        self._session_starts_by_hour[hour_of_day] = []

    # --- visitors and sessions ------------------------------------------------------------------

    def _web_session(self, start_us: int) -> None:
        rng = self._rng
        visitors = self._visitors
        is_new = not visitors or rng.random() < self._behaviour.new_visitor_share
        visitor = self._new_visitor() if is_new else visitors[rng.randrange(len(visitors))]
        cum = self._new_visitor_cum if is_new else self._returning_cum
        channel = self._channels[bisect.bisect_right(cum, rng.random() * cum[-1])]
        if channel.campaign is not None:
            self._paid_sessions_today[channel.campaign] = self._paid_sessions_today.get(channel.campaign, 0) + 1
        self._web_sessions += 1
        self._run_session(start_us, visitor, channel, self._landing_page(), Flow(self._new_id()))

    def _new_visitor(self) -> Visitor:
        rng = self._rng
        device = rng.choices(DEVICES, DEVICE_WEIGHTS)[0]
        visitor = Visitor(self._new_id(), device, uses_app=device == "mobile" and rng.random() < 0.5)
        self._remember(self._visitors, visitor, self._settings.max_visitors_per_tenant)
        return visitor

    def _remember(self, pool: list[Any], member: Any, cap: int) -> None:
        # Bounded memory: past the cap, a random known member is forgotten to make room.
        if len(pool) < cap:
            pool.append(member)
        else:
            pool[self._rng.randrange(cap)] = member

    def _landing_page(self) -> str:
        draw = self._rng.random()
        if draw < 0.3:
            return "/"
        if draw < 0.65:
            return f"/c/{self._rng.choice(self._categories)}"
        if draw < 0.95:
            return f"/p/{self._pick_product().product_id}"
        return "/sale"

    def _pick_product(self) -> Product:
        cum = self._product_cum_weights
        return self._products[bisect.bisect_right(cum, self._rng.random() * cum[-1])]

    def _run_session(self, start_us: int, visitor: Visitor, channel: Channel, landing_page: str, flow: Flow) -> None:
        rng = self._rng
        behaviour = self._behaviour
        session = Stream("session", self._new_id())
        producer = self._producers.app if visitor.uses_app else self._producers.web
        customer = visitor.customer if visitor.customer is not None and not visitor.customer.is_erased else None
        customer_id = customer.customer_id if customer else None
        at_us = start_us
        self._emit(
            session, "SessionStarted", 1,
            payloads.session_started(session.entity_id, visitor.anonymous_id, customer_id, channel, visitor.device, landing_page),
            at_us, producer, flow,
        )
        order_probability = behaviour.order_rate * channel.conversion_factor
        if customer is not None:
            order_probability *= CUSTOMER_CONVERSION_FACTOR
        for experiment in self._active_experiments:
            assignment = self._assignment(experiment, visitor.anonymous_id)
            if assignment is None:
                continue
            variant, other_variant = assignment
            for shown in (variant, other_variant) if other_variant else (variant,):
                at_us += rng.randint(1, 3) * SECOND_US
                self._emit(
                    session, "ExperimentExposed", 1,
                    {"experiment_id": experiment.experiment_id, "variant": shown, "session_id": session.entity_id,
                     "anonymous_id": visitor.anonymous_id, "customer_id": customer_id},
                    at_us, producer, flow,
                )
            order_probability = with_experiment_effect(order_probability, experiment, variant)

        will_order = rng.random() < order_probability
        wants_cart = will_order or rng.random() < behaviour.abandoned_cart_rate
        registers_while_browsing = customer is None and not will_order and rng.random() < behaviour.registration_rate
        view_count = 1 + min(int(rng.expovariate(1 / 2.5)), 19)
        register_after_view = rng.randrange(view_count) if registers_while_browsing else -1
        wanted_lines = (1 + (rng.random() < 0.35) + (rng.random() < 0.12)) if wants_cart else 0
        cart: Stream | None = None
        lines: dict[str, CartLine] = {}
        product = self._pick_product()
        for view in range(view_count):
            at_us += rng.randint(5, 120) * SECOND_US
            product = self._pick_product()
            self._emit(
                session, "ProductViewed", 1,
                {"session_id": session.entity_id, "anonymous_id": visitor.anonymous_id, "customer_id": customer_id,
                 "product_id": product.product_id, "category": product.category},
                at_us, producer, flow,
            )
            if len(lines) < wanted_lines and rng.random() < 0.6:
                cart = cart or Stream("cart", self._new_id())
                at_us += rng.randint(5, 60) * SECOND_US
                self._add_to_cart(cart, session, customer_id, product, lines, at_us, flow)
            if view == register_after_view:
                at_us += rng.randint(20, 300) * SECOND_US
                customer = self._register(visitor, channel, at_us, flow)
                customer_id = customer.customer_id
        if wants_cart and not lines:
            cart = cart or Stream("cart", self._new_id())
            at_us += rng.randint(5, 60) * SECOND_US
            self._add_to_cart(cart, session, customer_id, product, lines, at_us, flow)
        if cart is not None and rng.random() < behaviour.item_removal_rate:
            at_us += rng.randint(10, 300) * SECOND_US
            self._remove_from_cart(cart, lines, at_us, flow)
        if not will_order or cart is None:
            return
        items = [LineItem(line.product, line.added - line.removed) for line in lines.values() if line.added > line.removed]
        if not items:
            # Everything was taken out again: the visitor puts something back before paying. A line
            # a client bug over-removed stands below zero (marts.md: added minus removed per product),
            # so one add to it may leave nothing to order: the visitor adds until the cart holds some.
            at_us += rng.randint(10, 120) * SECOND_US
            product = self._pick_product()
            self._add_to_cart(cart, session, customer_id, product, lines, at_us, flow)
            line = lines[product.product_id]
            while line.added <= line.removed:
                at_us += rng.randint(10, 120) * SECOND_US
                self._add_to_cart(cart, session, customer_id, product, lines, at_us, flow)
            items = [LineItem(product, line.added - line.removed)]
        if customer is None:
            # Orders need an account: guests register at checkout.
            at_us += rng.randint(30, 240) * SECOND_US
            customer = self._register(visitor, channel, at_us, flow)
        at_us += rng.randint(60, 600) * SECOND_US
        order_source = "mobile_app" if visitor.uses_app else "web"
        self._place_order(at_us, customer, session.entity_id, cart.entity_id, items, order_source, self._producers.order_service, flow)

    def _assignment(self, experiment: ExperimentSettings, anonymous_id: str) -> tuple[str, str | None] | None:
        """The feature flag's decision for a visitor: None when not in the experiment, else the variant
        and, for a contaminated visitor, a second variant they also get to see."""
        digest = hashlib.blake2b(
            f"{experiment.experiment_id}|{anonymous_id}".encode(), digest_size=15, key=self._experiment_key
        ).digest()
        scale = float(1 << 40)
        if int.from_bytes(digest[0:5], "big") / scale >= experiment.exposure_rate:
            return None
        variant = pick_variant(experiment, int.from_bytes(digest[5:10], "big") / scale)
        if int.from_bytes(digest[10:15], "big") / scale >= experiment.contamination_rate:
            return variant, None
        names = [name for name, _ in experiment.variants]
        return variant, names[(names.index(variant) + 1) % len(names)]

    def _add_to_cart(
        self,
        cart: Stream,
        session: Stream,
        customer_id: str | None,
        product: Product,
        lines: dict[str, CartLine],
        at_us: int,
        flow: Flow,
    ) -> None:
        draw = self._rng.random()
        quantity = 1 if draw < 0.7 else 2 if draw < 0.92 else 3
        line = lines.get(product.product_id)
        if line is None:
            line = lines[product.product_id] = CartLine(product)
        line.added += quantity
        version = self._version("CartItemAdded", at_us)
        data = payloads.cart_item_added(version, cart.entity_id, session.entity_id, customer_id, product, quantity, self.currency)
        self._emit(cart, "CartItemAdded", version, data, at_us, self._producers.cart_service, flow)

    def _remove_from_cart(self, cart: Stream, lines: dict[str, CartLine], at_us: int, flow: Flow) -> None:
        rng = self._rng
        candidates = [line for line in lines.values() if line.added > line.removed]
        if not candidates:
            return
        line = rng.choice(candidates)
        left = line.added - line.removed
        if rng.random() < self._behaviour.over_removal_share:
            quantity = left + 1  # a client bug removes more than is in the cart
        elif left > 1 and rng.random() < 0.5:
            quantity = 1
        else:
            quantity = left
        line.removed += quantity
        self._emit(
            cart, "CartItemRemoved", 1,
            {"cart_id": cart.entity_id, "product_id": line.product.product_id, "quantity": quantity},
            at_us, self._producers.cart_service, flow,
        )

    # --- customers ------------------------------------------------------------------------------

    def _register(self, visitor: Visitor, channel: Channel, at_us: int, flow: Flow) -> Customer:
        rng = self._rng
        customer = Customer(self._new_id(), self._new_email(), visitor)
        country = self._countries[bisect.bisect_right(self._country_cum, rng.random() * self._country_cum[-1])]
        version = self._version("CustomerRegistered", at_us)
        data = payloads.customer_registered(version, customer.customer_id, customer.email, country, channel)
        self._emit(customer.stream, "CustomerRegistered", version, data, at_us, self._producers.customer_service, flow)
        for channel_name, share in (("email", 0.55), ("sms", 0.2)):
            if rng.random() < share:
                at_us += rng.randint(1, 5) * SECOND_US
                self._emit_consent(customer, channel_name, True, at_us, flow)
        visitor.customer = customer
        self._remember(self._customers, customer, self._settings.max_customers_per_tenant)
        return customer

    def _new_email(self) -> str:
        rng = self._rng
        return f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}{rng.randint(1, 9999)}@{rng.choice(EMAIL_DOMAINS)}"

    def _emit_consent(self, customer: Customer, channel_name: str, granted: bool, at_us: int, flow: Flow) -> None:
        if channel_name == "email":
            customer.email_consent = granted
        else:
            customer.sms_consent = granted
        self._emit(
            customer.stream, "MarketingConsentChanged", 1,
            {"customer_id": customer.customer_id, "channel": channel_name, "granted": granted},
            at_us, self._producers.customer_service, flow,
        )

    def _plan_customer_changes(self, day_start_us: int) -> None:
        rng = self._rng
        behaviour = self._behaviour
        for rate, change in (
            (behaviour.email_change_rate, self._change_email),
            (behaviour.consent_change_rate, self._change_consent),
            (behaviour.erasure_rate, self._request_erasure),
        ):
            for _ in range(stochastic_round(len(self._customers) * rate, rng)):
                if self._customers:
                    customer = self._customers[rng.randrange(len(self._customers))]
                    change(customer, day_start_us + rng.randrange(DAY_US))

    def _change_email(self, customer: Customer, at_us: int) -> None:
        customer.email = self._new_email()
        self._emit(
            customer.stream, "CustomerEmailChanged", 1,
            {"customer_id": customer.customer_id, "email": customer.email},
            at_us, self._producers.customer_service, Flow(self._new_id()),
        )

    def _change_consent(self, customer: Customer, at_us: int) -> None:
        channel_name = "email" if self._rng.random() < 0.7 else "sms"
        granted = not (customer.email_consent if channel_name == "email" else customer.sms_consent)
        self._emit_consent(customer, channel_name, granted, at_us, Flow(self._new_id()))

    def _request_erasure(self, customer: Customer, at_us: int) -> None:
        rng = self._rng
        day_start_us = at_us - at_us % DAY_US
        if rng.random() < self._anomalies.erased_email_broken_line_rate:
            self._emit_leaked_email(customer, max(day_start_us, at_us - rng.randint(1, 120) * MINUTE_US))
        self._emit(
            customer.stream, "CustomerErasureRequested", 1, {"customer_id": customer.customer_id},
            at_us, self._producers.customer_service, Flow(self._new_id()),
        )
        # Forgotten: no campaign, session or order will name this customer again.
        self._customers.remove(customer)
        customer.is_erased = True

    # --- orders ---------------------------------------------------------------------------------

    def _place_order(
        self,
        at_us: int,
        customer: Customer,
        session_id: str | None,
        cart_id: str | None,
        items: Sequence[LineItem],
        order_source: str,
        producer: Producer,
        flow: Flow,
    ) -> None:
        rng = self._rng
        order = Stream("order", self._new_id())
        version = self._version("OrderCreated", at_us)
        currency = "EUR" if version == 1 else self.currency
        data = payloads.order_created(
            version, order.entity_id, cart_id, customer.customer_id, session_id, items, currency, order_source
        )
        self._emit(order, "OrderCreated", version, data, at_us, producer, flow)
        gross_cents = payloads.order_total_cents(items, version)
        discount_cents = 0
        if rng.random() < self._behaviour.promotion_rate:
            promo_code, percent, fixed_cents = rng.choice(PROMOTIONS)
            discount_cents = min(gross_cents - 1, fixed_cents or max(1, gross_cents * percent // 100))
            at_us += rng.randint(1, 3) * SECOND_US
            self._emit(
                order, "PromotionApplied", 1,
                {"order_id": order.entity_id, "promo_code": promo_code, "discount_cents": discount_cents},
                at_us, self._producers.order_service, flow,
            )
        self._order_lifecycle(order, at_us, gross_cents - discount_cents, items, version, currency, flow)

    def _order_lifecycle(
        self,
        order: Stream,
        created_us: int,
        net_cents: int,
        items: Sequence[LineItem],
        version: int,
        currency: str,
        flow: Flow,
    ) -> None:
        """Everything that happens to an order after it is created, emitted now at its future times."""
        rng = self._rng
        behaviour = self._behaviour
        order_id = order.entity_id
        at_us = created_us
        if rng.random() < behaviour.cancel_before_confirmation_rate:
            at_us += rng.randint(5, 60) * MINUTE_US
            self._emit(order, "OrderCancelled", 1, {"order_id": order_id, "reason": rng.choice(UNCONFIRMED_CANCEL_REASONS)},
                       at_us, self._producers.order_service, flow)
            return
        at_us += rng.randint(30, 600) * SECOND_US
        self._emit(order, "OrderConfirmed", 1, {"order_id": order_id}, at_us, self._producers.order_service, flow)
        if rng.random() < behaviour.cancel_after_confirmation_rate:
            at_us += rng.randint(1, 24) * HOUR_US
            self._emit(order, "OrderCancelled", 1, {"order_id": order_id, "reason": rng.choice(CONFIRMED_CANCEL_REASONS)},
                       at_us, self._producers.order_service, flow)
            return
        method = rng.choices(PAYMENT_METHODS, PAYMENT_WEIGHTS)[0]
        # Cards and PayPal are captured when the parcel leaves; a transfer has to arrive first.
        if method == "transfer":
            at_us += rng.randint(20, 72) * HOUR_US
            self._emit_payment(order_id, net_cents, method, at_us, order, flow)
            at_us += rng.randint(2, 24) * HOUR_US
        else:
            at_us += rng.randint(12, 60) * HOUR_US
            self._emit_payment(order_id, net_cents, method, at_us, order, flow)
            at_us += rng.randint(1, 30) * MINUTE_US
        carriers = CARRIERS_BY_CURRENCY.get(currency, CARRIERS_BY_CURRENCY["EUR"])
        self._emit(order, "OrderShipped", 1, {"order_id": order_id, "carrier": rng.choice(carriers)}, at_us, self._producers.fulfilment, flow)
        if rng.random() < 0.02:
            return  # lost in transit: never delivered
        at_us += rng.randint(20, 96) * HOUR_US
        self._emit(order, "OrderDelivered", 1, {"order_id": order_id}, at_us, self._producers.fulfilment, flow)
        if rng.random() < behaviour.refund_rate:
            self._refund(order, net_cents, items, version, at_us, flow)

    def _emit_payment(self, order_id: str, amount_cents: int, method: str, at_us: int, order: Stream, flow: Flow) -> None:
        self._emit(order, "PaymentCaptured", 1, {"order_id": order_id, "amount_cents": amount_cents, "method": method},
                   at_us, self._producers.payment_service, flow)

    def _refund(self, order: Stream, net_cents: int, items: Sequence[LineItem], version: int, delivered_us: int, flow: Flow) -> None:
        rng = self._rng
        at_us = delivered_us + rng.randint(1, 10) * DAY_US + rng.randrange(DAY_US)
        if rng.random() >= self._behaviour.partial_refund_share:
            amounts = [net_cents]
        elif rng.random() < 0.2 and net_cents > 1:
            first_cents = max(1, round(net_cents * 0.4))
            amounts = [first_cents, net_cents - first_cents]  # two partial refunds that add up to everything
        else:
            returned = rng.choice(items)
            amounts = [max(1, min(payloads.unit_price_cents(returned.product, version), net_cents - 1))]
        for amount_cents in amounts:
            self._emit(order, "OrderRefunded", 1, {"order_id": order.entity_id, "amount_cents": amount_cents},
                       at_us, self._producers.payment_service, flow)
            at_us += rng.randint(1, 5) * DAY_US

    def _plan_offline_orders(self, session_count: int, day_start_us: int) -> None:
        """Orders taken by phone or through a marketplace: no session and no cart."""
        rng = self._rng
        expected = session_count * self._behaviour.order_rate * self._behaviour.offline_order_share
        for _ in range(stochastic_round(expected, rng)):
            if not self._customers:
                return
            customer = self._customers[rng.randrange(len(self._customers))]
            at_us = day_start_us + 8 * HOUR_US + rng.randrange(12 * HOUR_US)
            items = [LineItem(self._pick_product(), rng.randint(1, 2)) for _ in range(rng.randint(1, 2))]
            by_phone = rng.random() < 0.7
            self._place_order(
                at_us, customer, None, None, merge_items(items), "phone" if by_phone else "marketplace",
                self._producers.call_center if by_phone else self._producers.marketplace, Flow(self._new_id()),
            )

    # --- campaigns ------------------------------------------------------------------------------

    def _send_email_campaign(self, day_start_us: int) -> None:
        rng = self._rng
        behaviour = self._behaviour
        recipients = [customer for customer in self._customers if customer.email_consent]
        if not recipients:
            return
        send_date = (self._start_date + timedelta(days=self._day_index)).strftime("%Y%m%d")
        campaign_id = f"newsletter-{send_date}-{rng.getrandbits(16):04x}"
        campaign = Stream("campaign", campaign_id)
        channel = Channel("newsletter", "email", campaign_id, None, EMAIL_CONVERSION_FACTOR)
        send_us = day_start_us + 7 * HOUR_US + rng.randrange(2 * HOUR_US)
        for position, customer in enumerate(recipients):
            at_us = send_us + position * 20_000  # the mailer sends about 50 a second
            flow = Flow(self._new_id())
            self._emit(campaign, "EmailCampaignSent", 1, {"campaign_id": campaign_id, "customer_id": customer.customer_id},
                       at_us, self._producers.email_service, flow)
            if rng.random() >= behaviour.email_open_rate:
                continue
            at_us += min(int(rng.expovariate(1 / (3 * HOUR_US))), 72 * HOUR_US) + SECOND_US
            self._emit(campaign, "EmailOpened", 1, {"campaign_id": campaign_id, "customer_id": customer.customer_id},
                       at_us, self._producers.email_service, flow)
            if rng.random() < 0.02:
                self._emit_consent(customer, "email", False, at_us + rng.randint(1, 10) * MINUTE_US, flow)
                continue
            if rng.random() >= behaviour.email_click_rate:
                continue
            at_us += rng.randint(10, 600) * SECOND_US
            category = rng.choice(self._categories)
            url = (f"https://{self._domain}/c/{category}"
                   f"?utm_source=newsletter&utm_medium=email&utm_campaign={campaign_id}")
            self._emit(campaign, "EmailClicked", 1, {"campaign_id": campaign_id, "customer_id": customer.customer_id, "url": url},
                       at_us, self._producers.email_service, flow)
            self._run_session(at_us + rng.randint(2, 20) * SECOND_US, customer.as_visitor(), channel, f"/c/{category}", flow)
        cost_cents = max(1, math.ceil(len(recipients) * EMAIL_COST_PER_RECIPIENT_CENTS))
        self._email_cost_today[campaign_id] = (campaign, cost_cents)

    def _emit_spend_of_previous_day(self, day_start_us: int) -> None:
        """Ad platforms and the mailer report yesterday's cost in the early morning."""
        rng = self._rng
        spend_date = (self._start_date + timedelta(days=self._day_index - 1)).isoformat()
        flow = Flow(self._new_id())
        at_us = day_start_us + 2 * HOUR_US + rng.randrange(3 * HOUR_US)
        for campaign_id, paid in self._paid_campaigns.items():
            sessions = self._paid_sessions_today.get(campaign_id, 0)
            # Impressions cost something even on a day without clicks.
            cost_cents = round(sessions * paid.cost_per_session_cents * rng.uniform(0.8, 1.25)) + rng.randint(50, 500)
            at_us += rng.randint(1, 60) * SECOND_US
            self._emit_spend(paid.stream, campaign_id, paid.spend_channel, spend_date, cost_cents, at_us, self._producers.ads_importer, flow)
        for campaign_id, (stream, cost_cents) in self._email_cost_today.items():
            at_us += rng.randint(1, 60) * SECOND_US
            self._emit_spend(stream, campaign_id, "email", spend_date, cost_cents, at_us, self._producers.email_service, flow)
        self._paid_sessions_today = {}
        self._email_cost_today = {}

    def _emit_spend(
        self, stream: Stream, campaign_id: str, channel: str, spend_date: str, cost_cents: int, at_us: int,
        producer: Producer, flow: Flow,
    ) -> None:
        self._emit(
            stream, "CampaignSpendRecorded", 1,
            {"campaign_id": campaign_id, "channel": channel, "spend_date": spend_date, "cost_cents": cost_cents,
             "currency": self.currency},
            at_us, producer, flow,
        )


def with_experiment_effect(order_probability: float, experiment: ExperimentSettings, variant: str) -> float:
    """The order probability of a session that saw `variant`: the configured true effect, applied."""
    effect = experiment.effect_of(variant)
    if experiment.effect_kind == "relative":
        changed = order_probability * (1.0 + effect)
    else:
        changed = order_probability + effect
    return min(1.0, max(0.0, changed))


def pick_variant(experiment: ExperimentSettings, draw: float) -> str:
    """The variant whose share of the split contains `draw` (uniform in [0, 1))."""
    cumulative = 0.0
    for name, share in experiment.split:
        cumulative += share
        if draw < cumulative:
            return name
    return experiment.split[-1][0]


def merge_items(items: Sequence[LineItem]) -> list[LineItem]:
    """One line per product, quantities added up."""
    quantities: dict[str, int] = {}
    products: dict[str, Product] = {}
    for item in items:
        quantities[item.product.product_id] = quantities.get(item.product.product_id, 0) + item.quantity
        products[item.product.product_id] = item.product
    return [LineItem(products[product_id], quantity) for product_id, quantity in quantities.items()]
