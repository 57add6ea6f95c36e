"""The event catalog of the external contract (shared spec `events.md`): one place that declares each
event type, the payload schema of every version, its personal fields, and its one-step upcasters.

A new schema version needs three lines here: its payload schema, its upcaster from the previous
version, and nothing else; the generic loop in `jobs.upcasting` does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from jobs.upcasting import steps

# A payload upcaster turns the payload struct of version v into that of version v + 1.
Upcaster = Callable[["Column"], "Column"]  # noqa: F821 (pyspark Column, imported lazily)


@dataclass(frozen=True)
class EventType:
    name: str
    stream_type: str
    # Payload schema (Spark DDL) per schema version, 1-based and contiguous.
    schemas: Mapping[int, str]
    # upcasters[v] turns version v into v + 1.
    upcasters: Mapping[int, Upcaster] = field(default_factory=dict)
    # Newest-version payload fields without which the event means nothing. A null there after
    # parsing (missing, or of the wrong JSON type) sends the event to silver's invalid_payloads.
    required: tuple[str, ...] = ()
    # Payload fields holding personal data (see the privacy design in docs/).
    personal_fields: tuple[str, ...] = ()

    @property
    def newest_version(self) -> int:
        return max(self.schemas)

    @property
    def table_name(self) -> str:
        """Silver table name: CamelCase to snake_case (`OrderCreated` -> `order_created`)."""
        return "".join(f"_{c.lower()}" if c.isupper() else c for c in self.name).lstrip("_")

    def __post_init__(self) -> None:
        versions = sorted(self.schemas)
        if versions != list(range(1, len(versions) + 1)):
            raise ValueError(f"{self.name}: schema versions must be 1..n, got {versions}")
        missing = [v for v in versions[:-1] if v not in self.upcasters]
        if missing:
            raise ValueError(f"{self.name}: no upcaster from version(s) {missing}")


# v1 amounts are parsed as exact decimals, so the conversion to cents rounds the number as written.
_ITEMS_V1 = "ARRAY<STRUCT<product_id: STRING, category: STRING, quantity: INT, unit_price: DECIMAL(38,10)>>"
_ITEMS_V2 = "ARRAY<STRUCT<product_id: STRING, category: STRING, quantity: INT, unit_price_cents: BIGINT>>"

EVENT_TYPES: tuple[EventType, ...] = (
    # customer-<customer_id>
    EventType(
        "CustomerRegistered",
        "customer",
        {
            1: "customer_id STRING, email STRING, country STRING, referrer STRING",
            2: "customer_id STRING, email STRING, country STRING, "
            "acquisition STRUCT<source: STRING, medium: STRING, campaign: STRING>",
        },
        {1: steps.customer_registered_v1_to_v2},
        personal_fields=("email",), required=("customer_id",)),
    EventType(
        "CustomerEmailChanged",
        "customer",
        {1: "customer_id STRING, email STRING"},
        personal_fields=("email",), required=("customer_id", "email")),
    EventType("MarketingConsentChanged", "customer", {1: "customer_id STRING, channel STRING, granted BOOLEAN"}, required=("customer_id", "channel", "granted")),
    EventType("CustomerErasureRequested", "customer", {1: "customer_id STRING"}, required=("customer_id",)),
    # session-<session_id>
    EventType(
        "SessionStarted",
        "session",
        {
            1: "session_id STRING, anonymous_id STRING, customer_id STRING, source STRING, medium STRING, "
            "campaign STRING, device STRING, landing_page STRING"
        }, required=("session_id", "anonymous_id")),
    EventType(
        "ProductViewed",
        "session",
        {1: "session_id STRING, anonymous_id STRING, customer_id STRING, product_id STRING, category STRING"}, required=("session_id", "product_id")),
    EventType(
        "ExperimentExposed",
        "session",
        {1: "experiment_id STRING, variant STRING, session_id STRING, anonymous_id STRING, customer_id STRING"}, required=("experiment_id", "variant", "anonymous_id")),
    # cart-<cart_id>
    EventType(
        "CartItemAdded",
        "cart",
        {
            1: "cart_id STRING, session_id STRING, customer_id STRING, product_id STRING, category STRING, "
            "quantity INT, unit_price DECIMAL(38,10)",
            2: "cart_id STRING, session_id STRING, customer_id STRING, product_id STRING, category STRING, "
            "quantity INT, unit_price_cents BIGINT, currency STRING",
        },
        {1: steps.cart_item_added_v1_to_v2}, required=("cart_id", "product_id", "quantity", "unit_price_cents", "currency")),
    EventType("CartItemRemoved", "cart", {1: "cart_id STRING, product_id STRING, quantity INT"}, required=("cart_id", "product_id", "quantity")),
    # order-<order_id>
    EventType(
        "OrderCreated",
        "order",
        {
            1: f"order_id STRING, cart_id STRING, customer_id STRING, session_id STRING, "
            f"items {_ITEMS_V1}, "
            "total DECIMAL(38,10)",
            2: f"order_id STRING, cart_id STRING, customer_id STRING, session_id STRING, "
            f"items {_ITEMS_V2}, "
            "total_cents BIGINT, currency STRING",
            3: f"order_id STRING, cart_id STRING, customer_id STRING, session_id STRING, "
            f"items {_ITEMS_V2}, "
            "total_cents BIGINT, currency STRING, order_source STRING",
        },
        {1: steps.order_created_v1_to_v2, 2: steps.order_created_v2_to_v3}, required=("order_id", "items", "total_cents", "currency")),
    EventType("PromotionApplied", "order", {1: "order_id STRING, promo_code STRING, discount_cents BIGINT"}, required=("order_id", "discount_cents")),
    EventType("OrderConfirmed", "order", {1: "order_id STRING"}, required=("order_id",)),
    EventType("PaymentCaptured", "order", {1: "order_id STRING, amount_cents BIGINT, method STRING"}, required=("order_id", "amount_cents")),
    EventType("OrderShipped", "order", {1: "order_id STRING, carrier STRING"}, required=("order_id",)),
    EventType("OrderDelivered", "order", {1: "order_id STRING"}, required=("order_id",)),
    EventType("OrderCancelled", "order", {1: "order_id STRING, reason STRING"}, required=("order_id",)),
    EventType("OrderRefunded", "order", {1: "order_id STRING, amount_cents BIGINT"}, required=("order_id", "amount_cents")),
    # campaign-<campaign_id>
    EventType("EmailCampaignSent", "campaign", {1: "campaign_id STRING, customer_id STRING"}, required=("campaign_id", "customer_id")),
    EventType("EmailOpened", "campaign", {1: "campaign_id STRING, customer_id STRING"}, required=("campaign_id", "customer_id")),
    EventType("EmailClicked", "campaign", {1: "campaign_id STRING, customer_id STRING, url STRING"}, required=("campaign_id", "customer_id")),
    EventType(
        "CampaignSpendRecorded",
        "campaign",
        {1: "campaign_id STRING, channel STRING, spend_date DATE, cost_cents BIGINT, currency STRING"}, required=("campaign_id", "spend_date", "cost_cents", "currency")),
)

CATALOG: Mapping[str, EventType] = {event_type.name: event_type for event_type in EVENT_TYPES}


def event_type(name: str) -> EventType:
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"event type {name!r} is not in the catalog") from None
