"""Every mart the oracle computes, by name: what the cross-checks in the tests call."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Mapping

from tests.oracle import customers, marketing, orders, sales
from tests.oracle.events import Landed

# The marts whose metrics marts.md defines (customer_segments and segment_sizes_daily are the
# configured segments' expressions over customer_360, not a spec metric).
MARTS = (
    "orders", "basket_daily", "cart_abandonment_daily", "product_sales_daily", "funnel_daily",
    "campaign_performance", "marketing_kpis_daily", "customer_360", "experiment_results",
)


# The marts computed from the landed events and the as-of time alone.
_FROM_EVENTS = {
    "basket_daily": sales.basket_daily,
    "cart_abandonment_daily": sales.cart_abandonment_daily,
    "product_sales_daily": sales.product_sales_daily,
    "funnel_daily": marketing.funnel_daily,
    "campaign_performance": marketing.campaign_performance,
    "marketing_kpis_daily": marketing.marketing_kpis_daily,
    "customer_360": customers.customer_360,
}


def computed(mart: str, landed: Landed, as_of: datetime, splits: Mapping | None = None) -> list[dict[str, Any]]:
    """The mart's rows, one dict per row, keys = the columns the oracle computes. `splits`: the
    configured experiment splits (experiment_results' sample-ratio check; equal when None)."""
    if mart == "orders":
        return [dataclasses.asdict(order) for order in orders.orders(landed, as_of).values()]
    if mart == "experiment_results":
        return customers.experiment_results(landed, as_of, splits=dict(splits) if splits else None)
    if mart not in _FROM_EVENTS:
        raise ValueError(f"the oracle does not compute {mart}")
    return _FROM_EVENTS[mart](landed, as_of)
