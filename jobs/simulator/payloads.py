"""Payloads (`data`) of the catalog's event types, per schema version, exactly as `events.md` names them.

Version 1 amounts are major units (JSON numbers, at most two decimals, all EUR); from version 2 on,
integer cents with the tenant's currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class Product:
    product_id: str
    category: str
    price_eur_cents: int  # what v1 events (always EUR) show
    price_cents: int  # in the tenant's currency, what v2+ events show


@dataclass(frozen=True)
class Channel:
    """Where a session comes from, and how that channel shows in a v1 registration (a referrer URL)."""

    source: str
    medium: str
    campaign: str | None
    referrer_url: str | None
    conversion_factor: float  # multiplies the base order probability of its sessions


@dataclass(frozen=True)
class LineItem:
    product: Product
    quantity: int


def major_units(cents: int) -> float:
    # cents / 100 prints with at most two decimals: float repr is the shortest round-trip text.
    return cents / 100


def unit_price_cents(product: Product, schema_version: int) -> int:
    return product.price_eur_cents if schema_version == 1 else product.price_cents


def customer_registered(version: int, customer_id: str, email: str, country: str, channel: Channel) -> dict[str, Any]:
    if version == 1:
        return {"customer_id": customer_id, "email": email, "country": country, "referrer": channel.referrer_url}
    acquisition = {"source": channel.source, "medium": channel.medium, "campaign": channel.campaign}
    return {"customer_id": customer_id, "email": email, "country": country, "acquisition": acquisition}


def session_started(
    session_id: str, anonymous_id: str, customer_id: str | None, channel: Channel, device: str, landing_page: str
) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "anonymous_id": anonymous_id,
        "customer_id": customer_id,
        "source": channel.source,
        "medium": channel.medium,
        "campaign": channel.campaign,
        "device": device,
        "landing_page": landing_page,
    }


def cart_item_added(
    version: int,
    cart_id: str,
    session_id: str,
    customer_id: str | None,
    product: Product,
    quantity: int,
    currency: str,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "cart_id": cart_id,
        "session_id": session_id,
        "customer_id": customer_id,
        "product_id": product.product_id,
        "category": product.category,
        "quantity": quantity,
    }
    if version == 1:
        data["unit_price"] = major_units(product.price_eur_cents)
    else:
        data["unit_price_cents"] = product.price_cents
        data["currency"] = currency
    return data


def order_created(
    version: int,
    order_id: str,
    cart_id: str | None,
    customer_id: str,
    session_id: str | None,
    items: Sequence[LineItem],
    currency: str,
    order_source: str,
) -> dict[str, Any]:
    """The payload; its total is the sum of quantity x unit price of its items, in its version's units."""
    head = {"order_id": order_id, "cart_id": cart_id, "customer_id": customer_id, "session_id": session_id}
    if version == 1:
        lines_v1 = [
            {
                "product_id": item.product.product_id,
                "category": item.product.category,
                "quantity": item.quantity,
                "unit_price": major_units(item.product.price_eur_cents),
            }
            for item in items
        ]
        total_cents = sum(item.quantity * item.product.price_eur_cents for item in items)
        return {**head, "items": lines_v1, "total": major_units(total_cents)}
    lines = [
        {
            "product_id": item.product.product_id,
            "category": item.product.category,
            "quantity": item.quantity,
            "unit_price_cents": item.product.price_cents,
        }
        for item in items
    ]
    total_cents = sum(item.quantity * item.product.price_cents for item in items)
    data = {**head, "items": lines, "total_cents": total_cents, "currency": currency}
    if version >= 3:
        data["order_source"] = order_source
    return data


def order_total_cents(items: Sequence[LineItem], schema_version: int) -> int:
    return sum(item.quantity * unit_price_cents(item.product, schema_version) for item in items)
