"""product_sales_daily, one row per tenant, UTC date and product."""

from __future__ import annotations

import great_expectations.expectations as gxe
from great_expectations.expectations import Expectation

from expectations.common import rows_satisfy
from jobs.marts.contract import MartContract

# view_to_cart_rate is a double; it may differ from adds_to_cart / views in the last bits.
RELATIVE_TOLERANCE = 1e-9
NON_NEGATIVE = ("views", "adds_to_cart", "removes", "units_sold", "revenue_cents")


def expectations(contract: MartContract) -> list[Expectation]:
    return [
        *(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0) for name in NON_NEGATIVE),
        # Not capped at 1: a product can be added to carts more often than it is viewed.
        gxe.ExpectColumnValuesToBeBetween(column="view_to_cart_rate", min_value=0),
        gxe.ExpectColumnValuesToMatchRegex(column="currency", regex="^[A-Z]{3}$"),
        gxe.ExpectColumnValuesToBeBetween(column="amounts_in_other_currencies", min_value=0),
        rows_satisfy(
            contract,
            "IF(views = 0, view_to_cart_rate IS NULL,"
            f" abs(view_to_cart_rate - adds_to_cart / views) <= {RELATIVE_TOLERANCE} * greatest(1, view_to_cart_rate))",
            shown=("views", "adds_to_cart", "view_to_cart_rate"),
        ),
        # Rows exist only where something is counted (a row with sales has their currency, or units).
        rows_satisfy(
            contract,
            "views > 0 OR adds_to_cart > 0 OR removes > 0 OR units_sold > 0 OR currency IS NOT NULL",
            shown=("views", "adds_to_cart", "removes", "units_sold", "currency"),
        ),
        rows_satisfy(
            contract,
            "units_sold > 0 OR revenue_cents = 0",
            shown=("units_sold", "revenue_cents"),
        ),
    ]
