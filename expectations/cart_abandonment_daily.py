"""cart_abandonment_daily, one row per tenant and date of the cart's first add."""

from __future__ import annotations

import great_expectations.expectations as gxe
from great_expectations.expectations import Expectation

from expectations.common import rows_satisfy
from jobs.marts.contract import MartContract

# abandonment_rate is a double; it may differ from abandoned / (abandoned + converted) in the last bits.
TOLERANCE = 1e-9
COUNTS = ("converted", "abandoned", "open", "abandoned_value_cents")


def expectations(contract: MartContract) -> list[Expectation]:
    return [
        # A group has a row only when it has a cart.
        gxe.ExpectColumnValuesToBeBetween(column="carts", min_value=1),
        *(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0) for name in COUNTS),
        gxe.ExpectColumnValuesToBeBetween(column="abandonment_rate", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToMatchRegex(column="currency", regex="^[A-Z]{3}$"),
        # Every cart is exactly one of converted, abandoned or open.
        rows_satisfy(
            contract,
            "carts = converted + abandoned + open",
            shown=("carts", "converted", "abandoned", "open"),
        ),
        rows_satisfy(
            contract,
            "IF(abandoned + converted = 0, abandonment_rate IS NULL,"
            f" abs(abandonment_rate - abandoned / (abandoned + converted)) <= {TOLERANCE})",
            shown=("converted", "abandoned", "abandonment_rate"),
        ),
        # Value is what is left in abandoned carts: none without an abandoned cart.
        rows_satisfy(
            contract,
            "abandoned > 0 OR abandoned_value_cents = 0",
            shown=("abandoned", "abandoned_value_cents"),
        ),
        # Only abandoned carts carry an amount; those priced in another currency are counted.
        rows_satisfy(
            contract,
            "amounts_in_other_currencies >= 0 AND amounts_in_other_currencies <= abandoned",
            shown=("currency", "abandoned", "amounts_in_other_currencies"),
        ),
    ]
