"""Carts emptied by over-removal and filled again before checkout, the path that once ordered nothing.

A client bug removes more units than a cart line holds, leaving it below zero when adds and removals
are summed (marts.md, cart abandonment). A visitor who emptied the cart and puts the same product back
must still order at least one unit; an order of zero units with a promotion would carry a negative
discount, which the `orders` suite rejects. With one product per tenant and every cart over-removed,
every converted cart takes that path.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import pytest

from jobs.simulator import SimulatorSettings, simulate
from tests.simulator.test_simulator_export import Export, read_export

SETTINGS = {
    "events_per_tenant_per_day": 1500,
    "products_per_tenant": 1,
    "behaviour": {"order_rate": 0.5, "item_removal_rate": 1.0, "over_removal_share": 1.0, "promotion_rate": 1.0},
    # Every cart event in the files, in time and of a known version, so that sums are complete.
    "anomalies": {"late_event_rate": 0.0, "future_schema_version_rate": 0.0},
}


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    out_dir = tmp_path_factory.mktemp("over_removed_export")
    simulate(out_dir, days=3, tenants=1, seed=11, start_date=date(2026, 1, 5),
             settings=SimulatorSettings.from_mapping(SETTINGS))
    return read_export(out_dir)


def test_an_emptied_cart_filled_again_orders_what_is_left_in_it(export: Export) -> None:
    left: dict[str, Counter[str]] = defaultdict(Counter)
    for event in sorted(export.typed("CartItemAdded") + export.typed("CartItemRemoved"),
                        key=lambda event: event["stream_version"]):
        sign = 1 if event["event_type"] == "CartItemAdded" else -1
        left[event["data"]["cart_id"]][event["data"]["product_id"]] += sign * event["data"]["quantity"]
    refilled = [order for order in export.typed("OrderCreated") if order["data"]["cart_id"] is not None
                and sum(event["data"]["cart_id"] == order["data"]["cart_id"] for event in export.typed("CartItemRemoved"))]
    assert len(refilled) >= 20
    for order in refilled:
        ordered = {item["product_id"]: item["quantity"] for item in order["data"]["items"]}
        remaining = {product: quantity for product, quantity in left[order["data"]["cart_id"]].items() if quantity > 0}
        assert ordered == remaining and all(quantity >= 1 for quantity in ordered.values()), order["data"]["order_id"]


def test_every_promotion_discounts_something_but_never_the_whole_order(export: Export) -> None:
    gross: dict[str, int] = {}
    for order in export.typed("OrderCreated"):
        data = order["data"]
        gross[data["order_id"]] = data["total_cents"] if "total_cents" in data else round(data["total"] * 100)
    promotions = [p["data"] for p in export.typed("PromotionApplied") if p["data"]["order_id"] in gross]
    assert len(promotions) >= 20
    assert all(0 < promotion["discount_cents"] < gross[promotion["order_id"]] for promotion in promotions)
