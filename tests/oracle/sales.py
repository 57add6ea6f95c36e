"""`basket_daily`, `product_sales_daily` and `cart_abandonment_daily`, from marts.md "Precise metrics".

Each function returns one dict per row of the mart's grain, keys = the mart's columns, sorted by the
grain's key; groups with nothing to count have no row. Rates and averages are floats, not rounded.
Amounts are added as recorded after upcasting (v1 amounts are EUR by contract), whatever their currency:
the spec converts nothing.

Spec choices made here:
- basket_daily: the group's `channel_source` is the order channel's source (`unknown` without a known
  session); `avg_units_per_order` = units of the group's valid orders / valid orders.
- product_sales_daily: `views`, `adds_to_cart`, `removes` count events (ProductViewed, CartItemAdded,
  CartItemRemoved), not quantities, each on the UTC date of its own occurred_at, whether or not its
  session is known (this mart is not session-based). `units_sold` / `revenue_cents` add up the item lines
  of valid orders (quantity, quantity x unit_price_cents) on the order date; several lines of one product
  in one order all count. A (tenant, date, product) has a row when at least one of those events or item
  lines falls on it.
- cart_abandonment_daily: a cart is a `cart-<cart_id>` stream with at least one visible CartItemAdded; its
  events are its visible CartItemAdded and CartItemRemoved. Its date is the UTC date of its first
  CartItemAdded in stream order, and "its last cart event" is the last in stream order (stream_version, not
  occurred_at, orders a stream); abandoned when as_of - that event's occurred_at > 24 hours exactly
  (24 hours to the microsecond is still open). Converted when any visible OrderCreated of the tenant names
  the cart_id, whatever the order's validity or time. The value left in a cart counts, per product,
  quantities added minus removed (at least 0) at the unit price of the product's last CartItemAdded in stream
  order.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from tests.oracle.events import Landed, resolve_as_of, streams, utc_date, visible
from tests.oracle.orders import Order, order_items, orders

ABANDONED_AFTER = timedelta(hours=24)


def _sort_key(row: dict[str, Any], columns: tuple[str, ...]) -> tuple:
    return tuple((row[column] is None, str(row[column])) for column in columns)


def basket_daily(landed: Landed, as_of: datetime | None = None) -> list[dict[str, Any]]:
    """tenant x order_date x channel_source x order_source, over valid orders."""
    found = orders(landed, as_of)
    groups: dict[tuple[str, date, str, str], list[Order]] = defaultdict(list)
    for order in found.values():
        if order.is_valid:
            groups[(order.tenant_id, order.order_date, order.channel_source, order.order_source)].append(order)
    rows = []
    for (tenant_id, order_date, channel_source, order_source), group in groups.items():
        count = len(group)
        net = sum(order.net_cents for order in group)
        rows.append({
            "tenant_id": tenant_id,
            "order_date": order_date,
            "channel_source": channel_source,
            "order_source": order_source,
            "valid_orders": count,
            "revenue_cents": sum(order.revenue_cents for order in group),
            "net_cents": net,
            "discount_cents": sum(order.discount_cents for order in group),
            "avg_basket_cents": net / count,  # mean net of valid orders: refunds do not lower it
            "avg_units_per_order": sum(order.units for order in group) / count,
        })
    return sorted(rows, key=lambda row: _sort_key(row, ("tenant_id", "order_date", "channel_source", "order_source")))


def product_sales_daily(landed: Landed, as_of: datetime | None = None) -> list[dict[str, Any]]:
    """tenant x activity_date x product_id: views, adds, removes on their own date; sales of valid orders."""
    counts: dict[tuple[str, date, Any], dict[str, int]] = defaultdict(
        lambda: {"views": 0, "adds_to_cart": 0, "removes": 0, "units_sold": 0, "revenue_cents": 0}
    )
    column = {"ProductViewed": "views", "CartItemAdded": "adds_to_cart", "CartItemRemoved": "removes"}
    for event in visible(landed, as_of):
        if event.event_type in column:
            key = (event.tenant_id, utc_date(event.occurred_at), event.data["product_id"])
            counts[key][column[event.event_type]] += 1
    found = orders(landed, as_of)
    items = order_items(landed, as_of)
    for key, order in found.items():
        if not order.is_valid:
            continue
        for item in items[key]:
            row = counts[(order.tenant_id, order.order_date, item["product_id"])]
            row["units_sold"] += item["quantity"]
            row["revenue_cents"] += item["quantity"] * item["unit_price_cents"]
    rows = []
    for (tenant_id, activity_date, product_id), row in counts.items():
        rows.append({
            "tenant_id": tenant_id,
            "activity_date": activity_date,
            "product_id": product_id,
            **row,
            "view_to_cart_rate": row["adds_to_cart"] / row["views"] if row["views"] else None,
        })
    return sorted(rows, key=lambda row: _sort_key(row, ("tenant_id", "activity_date", "product_id")))


def cart_abandonment_daily(landed: Landed, as_of: datetime | None = None) -> list[dict[str, Any]]:
    """tenant x date of the cart's first CartItemAdded: converted, abandoned, open carts."""
    cutoff = resolve_as_of(landed, as_of)
    events = visible(landed, cutoff)
    converted_carts = {
        (event.tenant_id, event.data["cart_id"])
        for event in events
        if event.event_type == "OrderCreated" and event.data["cart_id"] is not None
    }
    groups: dict[tuple[str, date], dict[str, int]] = defaultdict(
        lambda: {"carts": 0, "converted": 0, "abandoned": 0, "open": 0, "abandoned_value_cents": 0}
    )
    for (tenant_id, _stream_id), stream in streams(events, "cart").items():
        cart_events = [event for event in stream if event.event_type in ("CartItemAdded", "CartItemRemoved")]
        adds = [event for event in cart_events if event.event_type == "CartItemAdded"]
        if not adds:
            continue
        group = groups[(tenant_id, utc_date(adds[0].occurred_at))]
        group["carts"] += 1
        if (tenant_id, adds[0].stream_key) in converted_carts:
            group["converted"] += 1
        elif cutoff - cart_events[-1].occurred_at > ABANDONED_AFTER:
            group["abandoned"] += 1
            group["abandoned_value_cents"] += _value_left(cart_events)
        else:
            group["open"] += 1
    rows = []
    for (tenant_id, cart_date), group in groups.items():
        decided = group["abandoned"] + group["converted"]
        rows.append({
            "tenant_id": tenant_id,
            "cart_date": cart_date,
            "carts": group["carts"],
            "converted": group["converted"],
            "abandoned": group["abandoned"],
            "open": group["open"],
            "abandonment_rate": group["abandoned"] / decided if decided else None,
            "abandoned_value_cents": group["abandoned_value_cents"],
        })
    return sorted(rows, key=lambda row: _sort_key(row, ("tenant_id", "cart_date")))


def _value_left(cart_events: list[Any]) -> int:
    """Per product: (added - removed, at least 0) x unit price of its last add; cart events in stream order."""
    quantity: dict[Any, int] = defaultdict(int)
    price: dict[Any, int] = {}
    for event in cart_events:
        product_id = event.data["product_id"]
        if event.event_type == "CartItemAdded":
            quantity[product_id] += event.data["quantity"]
            price[product_id] = event.data["unit_price_cents"]
        else:
            quantity[product_id] -= event.data["quantity"]
    return sum(max(left, 0) * price[product_id] for product_id, left in quantity.items() if product_id in price)
