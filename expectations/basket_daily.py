"""basket_daily, one row per tenant, order date, channel source and order source."""

from __future__ import annotations

import great_expectations.expectations as gxe
from great_expectations.expectations import Expectation

from expectations.common import rows_satisfy
from jobs.marts.contract import MartContract

# avg_basket_cents is a double computed by Spark's avg(); it may differ from net / orders in the
# last bits, never by more than this share of its value.
RELATIVE_TOLERANCE = 1e-9


def expectations(contract: MartContract) -> list[Expectation]:
    return [
        # A group with no valid order has no row.
        gxe.ExpectColumnValuesToBeBetween(column="valid_orders", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="discount_cents", min_value=0),
        gxe.ExpectColumnValuesToMatchRegex(column="currency", regex="^[A-Z]{3}$"),
        # The latest valid order names the currency: at most the others are in another one.
        rows_satisfy(
            contract,
            "amounts_in_other_currencies >= 0 AND amounts_in_other_currencies < valid_orders",
            shown=("currency", "valid_orders", "amounts_in_other_currencies"),
        ),
        # try_divide: a row with zero orders fails here instead of failing the query (ANSI mode).
        rows_satisfy(
            contract,
            "abs(avg_basket_cents - try_divide(net_cents, valid_orders))"
            f" <= {RELATIVE_TOLERANCE} * greatest(1, abs(avg_basket_cents))",
            shown=("net_cents", "valid_orders", "avg_basket_cents"),
        ),
    ]
